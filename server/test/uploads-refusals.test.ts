import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { bearer, issueToken } from './helpers/app';
import { signRs256 } from './helpers/jwt';
import { MB, sha, useUploadsApp } from './helpers/uploads';

/** Client-side recording uploads refused: offsets, sizes, types, declarations, who may upload, expired tokens, checksums; and their documentation. */
describe('client-side recording uploads refused (postgres)', () => {
  const u = useUploadsApp();
  const { api, create, declare, patch, head, absOf, row } = u;

  it('refuses a chunk at the wrong offset with 409 and the current offset', async () => {
    const file = randomBytes(2 * MB);
    const id = await create(u.callA, u.alice, file);
    expect((await patch(id, u.alice, 0, file.subarray(0, MB))).status).toBe(204);
    for (const wrong of [0, MB + 10]) {
      const res = await patch(id, u.alice, wrong, file.subarray(wrong, wrong + 1000));
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('UPLOAD_OFFSET_MISMATCH');
      expect(res.body.error.message).toContain(String(MB));
      expect(res.headers.get('upload-offset')).toBe(String(MB));
    }
    expect((await head(id, u.alice)).offset).toBe(MB);
    const bad = await patch(id, u.alice, 0, Buffer.alloc(1), { 'upload-offset': 'abc' });
    expect(bad.status).toBe(400);
  });

  it('refuses files above UPLOAD_MAX_BYTES and bytes beyond size_bytes with 413', async () => {
    const res = await api('POST', `/calls/${u.callA}/uploads`, {
      headers: bearer(u.alice),
      json: { file_name: 'huge.webm', mime_type: 'video/webm', size_bytes: u.t.config.uploads.maxBytes + 1, sha256: 'a'.repeat(64) },
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('UPLOAD_TOO_LARGE');

    const file = randomBytes(1000);
    const id = await create(u.callA, u.alice, file);
    const over = await patch(id, u.alice, 0, Buffer.concat([file, Buffer.alloc(10)]));
    expect(over.status).toBe(413);
    expect(over.body.error.code).toBe('UPLOAD_TOO_LARGE');
    expect((await head(id, u.alice)).offset).toBe(0);
    expect((await patch(id, u.alice, 0, file)).status).toBe(204);
  });

  it('refuses mime types outside UPLOAD_TYPES with 415, and chunks of another content type', async () => {
    const file = randomBytes(100);
    for (const mime of ['application/pdf', 'text/html', 'video/webm/evil', 'not a type']) {
      const res = await declare(u.callA, u.alice, file, { mime_type: mime });
      expect(res.status).toBe(415);
      expect(res.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    for (const mime of ['audio/ogg', 'audio/webm;codecs=opus', 'video/mp4; codecs="avc1.42E01E, mp4a.40.2"', 'AUDIO/MP4']) {
      expect((await declare(u.callA, u.alice, file, { mime_type: mime })).status).toBe(201);
    }
    const id = await create(u.callA, u.alice, file);
    const wrongType = await patch(id, u.alice, 0, file, { 'content-type': 'application/octet-stream' });
    expect(wrongType.status).toBe(415);
    expect(wrongType.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect((await head(id, u.alice)).offset).toBe(0);
  });

  it('validates the declaration: sha256 is 64 hex characters, the file name is sanitised', async () => {
    const file = randomBytes(100);
    for (const sha256 of ['abc', 'g'.repeat(64), `${'a'.repeat(64)}0`]) {
      const res = await declare(u.callA, u.alice, file, { sha256 });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    const id = await create(u.callA, u.alice, file, { file_name: '../../etc/pass<wd>\u0000 "x".webm' });
    const r = await row(id);
    expect(r.fileName).toBe('pass_wd_ _x_.webm');
    expect(r.filePath).toBe(`.uploads/${id}`);
    expect(existsSync(absOf(r.filePath))).toBe(true);
  });

  it('lets only participants of the call, with a token of its room, upload (403 otherwise)', async () => {
    const file = randomBytes(100);
    const otherRoom = await declare(u.callA, u.aliceOtherRoom, file);
    expect(otherRoom.status).toBe(403);
    expect(otherRoom.body.error.code).toBe('ROOM_SCOPE_MISMATCH');
    const stranger = await declare(u.callA, u.carol, file);
    expect(stranger.status).toBe(403);
    expect(stranger.body.error.code).toBe('UPLOAD_NOT_ALLOWED');
    const unscoped = await declare(u.callA, await issueToken(u.t, { user_id: 'alice' }), file);
    expect(unscoped.status).toBe(403);
    const noCall = await declare('00000000-0000-4000-8000-000000000000', u.alice, file);
    expect(noCall.status).toBe(404);
    expect(noCall.body.error.code).toBe('CALL_NOT_FOUND');
    const anonymous = await api('POST', `/calls/${u.callA}/uploads`, {
      json: { file_name: 'a', mime_type: 'video/webm', size_bytes: 1, sha256: sha(Buffer.alloc(1)) },
    });
    expect(anonymous.status).toBe(401);
  });

  it('answers 401 TOKEN_EXPIRED to an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = signRs256(
      { kid: u.t.keys.kid },
      { sub: 'alice', room: 'up-a', role: 'participant', iat: now - 100, exp: now - 10, jti: 'expired-upload', iss: 'switchboard', aud: 'switchboard' },
      u.t.keys.privateKeyPem,
    );
    const file = randomBytes(100);
    const res = await declare(u.callA, expired, file);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('TOKEN_EXPIRED');
    const id = await create(u.callA, u.alice, file);
    const p = await patch(id, expired, 0, file);
    expect(p.status).toBe(401);
    expect(p.body.error.code).toBe('TOKEN_EXPIRED');
    expect((await head(id, expired)).status).toBe(401);
    // A fresh token of the same user carries on.
    expect((await patch(id, await issueToken(u.t, { user_id: 'alice', room: 'up-a' }), 0, file)).status).toBe(204);
  });

  it('fails an upload whose SHA-256 differs with 422 and leaves no file', async () => {
    const file = randomBytes(MB + 100);
    const id = await create(u.callA, u.alice, file, { sha256: sha(Buffer.from('something else')) });
    const partAbs = absOf((await row(id)).filePath);
    expect((await patch(id, u.alice, 0, file.subarray(0, MB))).status).toBe(204);
    const res = await patch(id, u.alice, MB, file.subarray(MB));
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('CHECKSUM_MISMATCH');
    expect(existsSync(partAbs)).toBe(false);
    expect(existsSync(`${partAbs}.json`)).toBe(false);
    expect(existsSync(absOf(`${u.callA}/client-${id}.webm`))).toBe(false);
    expect(await row(id)).toMatchObject({ status: 'failed', recordingId: null });
    expect(await u.t.db.prisma.recording.count({ where: { sessionId: id } })).toBe(0);
    const again = await patch(id, u.alice, 0, file.subarray(0, 10));
    expect(again.status).toBe(410);
    expect(again.body.error.code).toBe('UPLOAD_GONE');
  });

  it("hides another user's upload (404), while the API key sees every upload", async () => {
    const file = randomBytes(1000);
    const id = await create(u.callA, u.alice, file);
    const h = await head(id, u.bob);
    expect(h.status).toBe(404);
    const g = await api('GET', `/uploads/${id}`, { headers: bearer(u.bob) });
    expect(g.status).toBe(404);
    expect(g.body.error.code).toBe('UPLOAD_NOT_FOUND');
    const p = await patch(id, u.bob, 0, file);
    expect(p.status).toBe(404);
    expect(p.body.error.code).toBe('UPLOAD_NOT_FOUND');
    // Same answer as for an upload that does not exist.
    const none = await api('GET', '/uploads/00000000-0000-4000-8000-000000000000', { headers: bearer(u.bob) });
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe('UPLOAD_NOT_FOUND');
    expect((await head(id, u.alice)).offset).toBe(0);
    expect((await head(id, null)).status).toBe(200);
  });

  it('documents the upload endpoints in OpenAPI', async () => {
    const doc = (await api('GET', '/docs/json')).body;
    for (const [p, m] of [
      ['/calls/{id}/uploads', 'post'],
      ['/calls/{id}/uploads', 'options'],
      ['/uploads/{id}', 'get'],
      ['/uploads/{id}', 'head'],
      ['/uploads/{id}', 'patch'],
      ['/uploads/{id}', 'delete'],
      ['/uploads/{id}', 'options'],
    ] as const) {
      expect(doc.paths[p]?.[m]?.tags).toEqual(['recordings']);
    }
    const patch = doc.paths['/uploads/{id}'].patch;
    expect(Object.keys(patch.responses)).toEqual(expect.arrayContaining(['204', '409', '412', '413', '422', '460']));
    expect(patch.parameters.filter((x: { in: string }) => x.in === 'header').map((x: { name: string }) => x.name)).toEqual(
      expect.arrayContaining(['tus-resumable', 'upload-offset', 'upload-checksum']),
    );
    expect(Object.keys(patch.requestBody.content)).toEqual(['application/offset+octet-stream']);
    expect(Object.keys(patch.responses['204'].headers)).toContain('upload-offset');
    expect(JSON.stringify(doc.components.schemas.Recording.properties.kind)).toContain('"client"');
  });
});
