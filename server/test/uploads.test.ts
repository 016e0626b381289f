import { createHash, randomBytes, type Hash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { admin, bearer, issueToken, startTestApp, type TestApp } from './helpers/app';
import { signRs256 } from './helpers/jwt';
import { Client, listen } from './helpers/signaling';
import { until } from './helpers/wait';

/**
 * Uploads of client-side recordings over a real socket (streaming needs one,
 * not inject), on PostgreSQL.
 */
type Headers = Record<string, string>;
interface Res {
  status: number;
  headers: globalThis.Headers;
  body: any;
}

const OCTET = 'application/offset+octet-stream';
const MB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('client-side recording uploads (postgres)', () => {
  let t: TestApp;
  let base: string;
  let callA: string; // room up-a: alice and bob took part
  let aliceP: string;
  let alice: string;
  let bob: string;
  let carol: string; // room up-a, never in the call
  let aliceOtherRoom: string;

  beforeAll(async () => {
    t = await startTestApp('postgres');
    base = await listen(t);
    callA = (await api('POST', '/calls', { headers: admin, json: { room_id: 'up-a' } })).body.id;
    aliceP = (await t.db.prisma.participant.create({ data: { callId: callA, userId: 'alice', role: 'participant' } })).id;
    await t.db.prisma.participant.create({ data: { callId: callA, userId: 'bob', role: 'participant' } });
    alice = await issueToken(t, { user_id: 'alice', room: 'up-a' });
    bob = await issueToken(t, { user_id: 'bob', room: 'up-a' });
    carol = await issueToken(t, { user_id: 'carol', room: 'up-a' });
    aliceOtherRoom = await issueToken(t, { user_id: 'alice', room: 'up-b' });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function api(method: string, url: string, o: { headers?: Headers; json?: unknown; body?: Buffer } = {}): Promise<Res> {
    const headers: Headers = { ...(o.headers ?? {}) };
    let body: BodyInit | undefined;
    if (o.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(o.json);
    } else if (o.body !== undefined) body = new Uint8Array(o.body);
    const res = await fetch(base + url, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  const auth = (token: string | null): Headers => (token === null ? admin : bearer(token));

  function declare(callId: string, token: string | null, file: Buffer, extra: Record<string, unknown> = {}): Promise<Res> {
    return api('POST', `/calls/${callId}/uploads`, {
      headers: auth(token),
      json: { file_name: 'my-recording.webm', mime_type: 'video/webm;codecs=vp8,opus', size_bytes: file.length, sha256: sha(file), ...extra },
    });
  }

  async function create(callId: string, token: string | null, file: Buffer, extra: Record<string, unknown> = {}): Promise<string> {
    const res = await declare(callId, token, file, extra);
    expect(res.status).toBe(201);
    return res.body.upload_id as string;
  }

  const patch = (id: string, token: string | null, offset: number, chunk: Buffer, extra: Headers = {}) =>
    api('PATCH', `/uploads/${id}`, { headers: { ...auth(token), 'content-type': OCTET, 'upload-offset': String(offset), ...extra }, body: chunk });

  async function head(id: string, token: string | null): Promise<{ status: number; offset: number }> {
    const res = await fetch(`${base}/uploads/${id}`, { method: 'HEAD', headers: auth(token) });
    return { status: res.status, offset: Number(res.headers.get('upload-offset')) };
  }

  /** PATCHes `file` from `from` in chunks of `chunk` bytes; returns the last response. */
  async function sendAll(id: string, token: string | null, file: Buffer, from: number, chunk = MB): Promise<Res> {
    let offset = from;
    let last: Res | undefined;
    while (offset < file.length) {
      const piece = file.subarray(offset, Math.min(file.length, offset + chunk));
      last = await patch(id, token, offset, piece);
      if (offset + piece.length < file.length) {
        expect(last.status).toBe(204);
        expect(Number(last.headers.get('upload-offset'))).toBe(offset + piece.length);
      }
      offset += piece.length;
    }
    return last!;
  }

  const absOf = (rel: string) => path.join(t.config.recordingsDir, rel);
  const row = (id: string) => t.db.prisma.clientUpload.findUniqueOrThrow({ where: { id } });

  it('uploads a 3 MB file in 1 MB chunks, from a participant who joined over signaling, and it becomes a listed, downloadable recording', async () => {
    const room = 'up-live';
    const token = await issueToken(t, { user_id: 'dana', room });
    const c = new Client(base, { token });
    try {
      await c.connected();
      await c.join(room, 'Dana');
      const callId = c.callId;
      // Participant rows are written behind signaling.
      await until('the participant row', () => t.db.prisma.participant.findFirst({ where: { callId, userId: 'dana' } }));

      const finished: unknown[] = [];
      const onFinished = (e: unknown) => finished.push(e);
      t.events.on('recording.finished', onFinished);

      const file = randomBytes(3 * MB);
      const created = await declare(callId, token, file);
      expect(created.status).toBe(201);
      const id = created.body.upload_id as string;
      expect(created.body).toEqual({ upload_id: id, offset: 0, size_bytes: file.length, upload_url: `/uploads/${id}` });
      expect(created.headers.get('location')).toBe(`/uploads/${id}`);

      const status = await api('GET', `/uploads/${id}`, { headers: bearer(token) });
      expect(status.status).toBe(200);
      expect(status.body).toMatchObject({ upload_id: id, offset: 0, size_bytes: file.length, status: 'uploading', recording_id: null });
      expect(status.headers.get('upload-offset')).toBe('0');

      const done = await sendAll(id, token, file, 0);
      expect(done.status).toBe(200);
      expect(done.body).toEqual({ upload_id: id, offset: file.length, status: 'completed', recording_id: expect.any(String) });
      const recordingId = done.body.recording_id as string;

      const rec = await t.db.prisma.recording.findUniqueOrThrow({ where: { id: recordingId } });
      expect(rec).toMatchObject({
        kind: 'client',
        callId,
        sessionId: id,
        status: 'completed',
        mimeType: 'video/webm',
        codec: 'vp8,opus',
        sizeBytes: BigInt(file.length),
      });
      expect(rec.participantId).toBe(c.participantId);
      expect(rec.filePath).toBe(`${callId}/client-${id}.webm`);
      const stored = readFileSync(absOf(rec.filePath));
      expect(sha(stored)).toBe(sha(file));
      expect(existsSync(absOf(`${rec.filePath}.part`))).toBe(false);
      expect(await row(id)).toMatchObject({
        status: 'completed',
        recordingId,
        receivedBytes: BigInt(file.length),
        fileName: 'my-recording.webm',
        userId: 'dana',
      });

      const list = await api('GET', `/recordings?call_id=${callId}`, { headers: admin });
      expect(list.status).toBe(200);
      expect(list.body.items).toEqual([
        expect.objectContaining({ id: recordingId, kind: 'client', status: 'completed', size_bytes: file.length, session_id: id }),
      ]);
      const dl = await fetch(`${base}/recordings/${recordingId}/download`, { headers: admin });
      expect(dl.status).toBe(200);
      expect(dl.headers.get('content-type')).toMatch(/^video\/webm/);
      expect(sha(Buffer.from(await dl.arrayBuffer()))).toBe(sha(file));

      // Integrations hear of it as of a server recording: recording.finished with the file's metadata.
      await until('recording.finished', () => finished.length > 0);
      t.events.off('recording.finished', onFinished);
      expect(finished).toEqual([
        {
          call_id: callId,
          room,
          at: expect.any(String),
          recording: expect.objectContaining({
            recording_id: id,
            call_id: callId,
            status: 'completed',
            mode: 'client',
            files: [
              expect.objectContaining({
                id: recordingId,
                participant_id: c.participantId,
                user_id: 'dana',
                file_path: rec.filePath,
                size_bytes: file.length,
                sha256: sha(file),
                mime_type: 'video/webm',
              }),
            ],
          }),
        },
      ]);

      // Done is done: HEAD says so, and no more bytes are taken.
      expect(await head(id, token)).toEqual({ status: 200, offset: file.length });
      const more = await patch(id, token, file.length, Buffer.from('x'));
      expect(more.status).toBe(409);
      expect(more.body.error.code).toBe('UPLOAD_CLOSED');
    } finally {
      c.close();
    }
  });

  it('resumes an interrupted upload from the offset HEAD gives', async () => {
    const file = randomBytes(3 * MB);
    const id = await create(callA, alice, file);
    const first = await patch(id, alice, 0, file.subarray(0, MB));
    expect(first.status).toBe(204);
    const previous = MB;

    // Second chunk: announce 1 MB, send half of it, then cut the connection.
    const partAbs = absOf((await row(id)).filePath);
    const half = MB / 2;
    const req = http.request(`${base}/uploads/${id}`, {
      method: 'PATCH',
      headers: { ...bearer(alice), 'content-type': OCTET, 'upload-offset': String(previous), 'content-length': String(MB) },
    });
    req.on('error', () => undefined);
    req.write(file.subarray(previous, previous + half));
    await until('the first half on disk', () => statSync(partAbs).size >= previous + half);
    req.destroy();

    const resumed = await until('the offset to move', async () => {
      const h = await head(id, alice);
      return h.offset > previous ? h : undefined;
    });
    expect(resumed.status).toBe(200);
    expect(resumed.offset).toBeGreaterThan(previous);
    expect(resumed.offset).toBeLessThan(file.length);
    expect(resumed.offset).toBe(previous + half);

    const done = await sendAll(id, alice, file, resumed.offset);
    expect(done.status).toBe(200);
    expect(done.body.status).toBe('completed');
    const rec = await t.db.prisma.recording.findUniqueOrThrow({ where: { id: done.body.recording_id } });
    expect(rec.participantId).toBe(aliceP);
    expect(sha(readFileSync(absOf(rec.filePath)))).toBe(sha(file));
    const list = await api('GET', `/recordings?call_id=${callA}`, { headers: admin });
    expect(list.body.items.map((r: { id: string }) => r.id)).toContain(rec.id);
  });

  it('takes one chunk at a time per upload (409 UPLOAD_BUSY for a second one meanwhile)', async () => {
    const file = randomBytes(MB);
    const id = await create(callA, alice, file);
    const partAbs = absOf((await row(id)).filePath);
    const first = new Promise<number>((resolve, reject) => {
      const req = http.request(
        `${base}/uploads/${id}`,
        { method: 'PATCH', headers: { ...bearer(alice), 'content-type': OCTET, 'upload-offset': '0', 'content-length': String(MB) } },
        (r) => {
          r.resume();
          r.on('end', () => resolve(r.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.write(file.subarray(0, 1000));
      void until('the first bytes', () => statSync(partAbs).size >= 1000).then(async () => {
        const second = await patch(id, alice, 0, file.subarray(0, 10));
        expect(second.status).toBe(409);
        expect(second.body.error.code).toBe('UPLOAD_BUSY');
        req.end(file.subarray(1000));
      }, reject);
    });
    expect(await first).toBe(200);
    expect(sha(readFileSync(partAbs.replace(/\.part$/, '')))).toBe(sha(file));
  });

  it('refuses a chunk at the wrong offset with 409 and the current offset', async () => {
    const file = randomBytes(2 * MB);
    const id = await create(callA, alice, file);
    expect((await patch(id, alice, 0, file.subarray(0, MB))).status).toBe(204);
    for (const wrong of [0, MB + 10]) {
      const res = await patch(id, alice, wrong, file.subarray(wrong, wrong + 1000));
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('UPLOAD_OFFSET_MISMATCH');
      expect(res.body.error.message).toContain(String(MB));
      expect(res.headers.get('upload-offset')).toBe(String(MB));
    }
    expect((await head(id, alice)).offset).toBe(MB);
    const bad = await patch(id, alice, 0, Buffer.alloc(1), { 'upload-offset': 'abc' });
    expect(bad.status).toBe(400);
  });

  it('refuses files above UPLOAD_MAX_BYTES and bytes beyond size_bytes with 413', async () => {
    const res = await api('POST', `/calls/${callA}/uploads`, {
      headers: bearer(alice),
      json: { file_name: 'huge.webm', mime_type: 'video/webm', size_bytes: t.config.uploads.maxBytes + 1, sha256: 'a'.repeat(64) },
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('UPLOAD_TOO_LARGE');

    const file = randomBytes(1000);
    const id = await create(callA, alice, file);
    const over = await patch(id, alice, 0, Buffer.concat([file, Buffer.alloc(10)]));
    expect(over.status).toBe(413);
    expect(over.body.error.code).toBe('UPLOAD_TOO_LARGE');
    expect((await head(id, alice)).offset).toBe(0);
    expect((await patch(id, alice, 0, file)).status).toBe(200);
  });

  it('refuses mime types outside UPLOAD_TYPES with 415, and chunks of another content type', async () => {
    const file = randomBytes(100);
    for (const mime of ['application/pdf', 'text/html', 'video/webm/evil', 'not a type']) {
      const res = await declare(callA, alice, file, { mime_type: mime });
      expect(res.status).toBe(415);
      expect(res.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    for (const mime of ['audio/ogg', 'audio/webm;codecs=opus', 'video/mp4; codecs="avc1.42E01E, mp4a.40.2"', 'AUDIO/MP4']) {
      expect((await declare(callA, alice, file, { mime_type: mime })).status).toBe(201);
    }
    const id = await create(callA, alice, file);
    const wrongType = await patch(id, alice, 0, file, { 'content-type': 'application/octet-stream' });
    expect(wrongType.status).toBe(415);
    expect(wrongType.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect((await head(id, alice)).offset).toBe(0);
  });

  it('validates the declaration: sha256 is 64 hex characters, the file name is sanitised', async () => {
    const file = randomBytes(100);
    for (const sha256 of ['abc', 'g'.repeat(64), `${'a'.repeat(64)}0`]) {
      const res = await declare(callA, alice, file, { sha256 });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    const id = await create(callA, alice, file, { file_name: '../../etc/pass<wd>\u0000 "x".webm' });
    const r = await row(id);
    expect(r.fileName).toBe('pass_wd_ _x_.webm');
    expect(r.filePath).toBe(`${callA}/client-${id}.webm.part`);
    expect(existsSync(absOf(r.filePath))).toBe(true);
  });

  it('lets only participants of the call, with a token of its room, upload (403 otherwise)', async () => {
    const file = randomBytes(100);
    const otherRoom = await declare(callA, aliceOtherRoom, file);
    expect(otherRoom.status).toBe(403);
    expect(otherRoom.body.error.code).toBe('ROOM_SCOPE_MISMATCH');
    const stranger = await declare(callA, carol, file);
    expect(stranger.status).toBe(403);
    expect(stranger.body.error.code).toBe('UPLOAD_NOT_ALLOWED');
    const unscoped = await declare(callA, await issueToken(t, { user_id: 'alice' }), file);
    expect(unscoped.status).toBe(403);
    const noCall = await declare('00000000-0000-4000-8000-000000000000', alice, file);
    expect(noCall.status).toBe(404);
    expect(noCall.body.error.code).toBe('CALL_NOT_FOUND');
    const anonymous = await api('POST', `/calls/${callA}/uploads`, {
      json: { file_name: 'a', mime_type: 'video/webm', size_bytes: 1, sha256: sha(Buffer.alloc(1)) },
    });
    expect(anonymous.status).toBe(401);
  });

  it('answers 401 TOKEN_EXPIRED to an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = signRs256(
      { kid: t.keys.kid },
      { sub: 'alice', room: 'up-a', role: 'participant', iat: now - 100, exp: now - 10, jti: 'expired-upload', iss: 'switchboard', aud: 'switchboard' },
      t.keys.privateKeyPem,
    );
    const file = randomBytes(100);
    const res = await declare(callA, expired, file);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('TOKEN_EXPIRED');
    const id = await create(callA, alice, file);
    const p = await patch(id, expired, 0, file);
    expect(p.status).toBe(401);
    expect(p.body.error.code).toBe('TOKEN_EXPIRED');
    expect((await head(id, expired)).status).toBe(401);
    // A fresh token of the same user carries on.
    expect((await patch(id, await issueToken(t, { user_id: 'alice', room: 'up-a' }), 0, file)).status).toBe(200);
  });

  it('fails an upload whose SHA-256 differs with 422 and leaves no file', async () => {
    const file = randomBytes(MB + 100);
    const id = await create(callA, alice, file, { sha256: sha(Buffer.from('something else')) });
    const partAbs = absOf((await row(id)).filePath);
    expect((await patch(id, alice, 0, file.subarray(0, MB))).status).toBe(204);
    const res = await patch(id, alice, MB, file.subarray(MB));
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('CHECKSUM_MISMATCH');
    expect(existsSync(partAbs)).toBe(false);
    expect(existsSync(partAbs.replace(/\.part$/, ''))).toBe(false);
    expect(await row(id)).toMatchObject({ status: 'failed', recordingId: null });
    expect(await t.db.prisma.recording.count({ where: { sessionId: id } })).toBe(0);
    const again = await patch(id, alice, 0, file.subarray(0, 10));
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('UPLOAD_CLOSED');
  });

  it("hides another user's upload (404), while the API key sees every upload", async () => {
    const file = randomBytes(1000);
    const id = await create(callA, alice, file);
    const h = await head(id, bob);
    expect(h.status).toBe(404);
    const g = await api('GET', `/uploads/${id}`, { headers: bearer(bob) });
    expect(g.status).toBe(404);
    expect(g.body.error.code).toBe('UPLOAD_NOT_FOUND');
    const p = await patch(id, bob, 0, file);
    expect(p.status).toBe(404);
    expect(p.body.error.code).toBe('UPLOAD_NOT_FOUND');
    // Same answer as for an upload that does not exist.
    const none = await api('GET', '/uploads/00000000-0000-4000-8000-000000000000', { headers: bearer(bob) });
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe('UPLOAD_NOT_FOUND');
    expect((await head(id, alice)).offset).toBe(0);
    expect((await head(id, null)).status).toBe(200);
  });

  it('takes uploads with the API key (no participant)', async () => {
    const file = randomBytes(300_000);
    const id = await create(callA, null, file, { mime_type: 'audio/ogg', file_name: 'mix.ogg' });
    const done = await sendAll(id, null, file, 0, 100_000);
    expect(done.status).toBe(200);
    const rec = await t.db.prisma.recording.findUniqueOrThrow({ where: { id: done.body.recording_id } });
    expect(rec).toMatchObject({ participantId: null, kind: 'client', mimeType: 'audio/ogg', filePath: `${callA}/client-${id}.ogg` });
    // Not the users' upload.
    expect((await head(id, alice)).status).toBe(404);
    const dl = await fetch(`${base}/recordings/${rec.id}/download`, { headers: admin });
    expect(dl.headers.get('content-type')).toMatch(/^audio\/ogg/);
    expect(sha(Buffer.from(await dl.arrayBuffer()))).toBe(sha(file));
  });

  it('takes uploads to an ended call for 1 h after its end', async () => {
    const file = randomBytes(100);
    const call = (await api('POST', '/calls', { headers: admin, json: { room_id: 'up-ended' } })).body.id as string;
    await t.db.prisma.participant.create({ data: { callId: call, userId: 'erin', role: 'participant' } });
    const erin = await issueToken(t, { user_id: 'erin', room: 'up-ended' });
    await t.db.prisma.call.update({ where: { id: call }, data: { status: 'ended', endedAt: new Date(Date.now() - 10 * 60_000) } });
    const id = await create(call, erin, file);
    expect((await patch(id, erin, 0, file)).status).toBe(200);
    await t.db.prisma.call.update({ where: { id: call }, data: { endedAt: new Date(Date.now() - 61 * 60_000) } });
    const late = await declare(call, erin, file);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('CALL_ALREADY_ENDED');
  });

  it('sweeps uploads left uploading for more than 24 h: file deleted, status failed', async () => {
    const file = randomBytes(2000);
    const stale = await create(callA, alice, file);
    const fresh = await create(callA, alice, file);
    expect((await patch(stale, alice, 0, file.subarray(0, 500))).status).toBe(204);
    await t.db.prisma.clientUpload.update({ where: { id: stale }, data: { createdAt: new Date(Date.now() - 25 * 3600_000) } });
    const staleAbs = absOf((await row(stale)).filePath);
    expect(existsSync(staleAbs)).toBe(true);

    expect(await t.uploads.sweep()).toBeGreaterThanOrEqual(1);
    expect((await row(stale)).status).toBe('failed');
    expect(existsSync(staleAbs)).toBe(false);
    expect((await row(fresh)).status).toBe('uploading');
    expect(existsSync(absOf((await row(fresh)).filePath))).toBe(true);
    const res = await patch(stale, alice, 500, file.subarray(500));
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('UPLOAD_CLOSED');
  });

  it('documents the upload endpoints in OpenAPI', async () => {
    const doc = (await api('GET', '/docs/json')).body;
    for (const [p, m] of [
      ['/calls/{id}/uploads', 'post'],
      ['/uploads/{id}', 'get'],
      ['/uploads/{id}', 'patch'],
    ] as const) {
      expect(doc.paths[p]?.[m]?.tags).toEqual(['recordings']);
    }
    expect(Object.keys(doc.paths['/uploads/{id}'].patch.responses)).toEqual(expect.arrayContaining(['200', '204', '409', '413', '422']));
    expect(JSON.stringify(doc.components.schemas.Recording.properties.kind)).toContain('"client"');
  });

  it('streams a 64 MB chunk to disk without holding it in memory', async () => {
    const size = t.config.uploads.chunkMaxBytes;
    expect(size).toBe(64 * MB);
    // One 1 MB piece sent 64 times: the client side holds 1 MB, whatever the server does.
    const piece = randomBytes(MB);
    const hash: Hash = createHash('sha256');
    for (let i = 0; i < size / MB; i++) hash.update(piece);
    const id = await create(callA, alice, Buffer.alloc(0), { size_bytes: size, sha256: hash.digest('hex') });

    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // Live memory (after a collection) of this process, server included: the JS heap
    // plus Buffers. RSS is not used: freed Buffers stay in malloc's arenas.
    const live = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const before = live();
    let peak = before;
    // Each sample waits 100 ms after the previous one ended: a full collection in a jest
    // worker that already ran other files can take long, and back-to-back collections
    // would starve the upload itself.
    let sampler: NodeJS.Timeout;
    const sample = (): void => {
      peak = Math.max(peak, live());
      sampler = setTimeout(sample, 100);
    };
    sampler = setTimeout(sample, 100);
    let res: { status: number; body: string };
    try {
      res = await new Promise((resolve, reject) => {
        const req = http.request(
          `${base}/uploads/${id}`,
          { method: 'PATCH', headers: { ...bearer(alice), 'content-type': OCTET, 'upload-offset': '0', 'content-length': String(size) } },
          (r) => {
            let body = '';
            r.setEncoding('utf8');
            r.on('data', (d: string) => (body += d));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        let sent = 0;
        const pump = (): void => {
          while (sent < size) {
            sent += piece.length;
            if (!req.write(piece)) {
              req.once('drain', pump);
              return;
            }
          }
          req.end();
        };
        pump();
      });
    } finally {
      clearTimeout(sampler);
    }
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).status).toBe('completed');
    // Buffering the chunk keeps 64 MB live at once (measured: +63 MB); streaming about +16 MB at most.
    expect((peak - before) / MB).toBeLessThan(40);
    const rec = await t.db.prisma.recording.findFirstOrThrow({ where: { sessionId: id } });
    expect(statSync(absOf(rec.filePath)).size).toBe(size);
  }, 120_000);
});
