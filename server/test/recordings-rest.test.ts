import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { admin, bearer, issueToken, startTestApp, type TestApp } from './helpers/app';
import { BACKENDS, tempDir } from './helpers/env';

type Headers = Record<string, string>;

interface RecOpts {
  callId: string;
  content?: Buffer | null;
  status?: string;
  kind?: 'participant' | 'composite';
  participantId?: string | null;
  segment?: number;
  mimeType?: string;
  filePath?: string;
  sessionId?: string;
  startedAt?: Date;
}

describe.each(BACKENDS)('recordings REST (%s)', (backend) => {
  let t: TestApp;
  // RECORDINGS_DIR is a directory inside `base`, so `../secret.txt` from it names a real file outside it.
  const base = tempDir('sb-recrest-');
  const recordingsDir = path.join(base.dir, 'recordings');
  const secretPath = path.join(base.dir, 'secret.txt');
  const SECRET = 'do-not-serve-this-secret';

  let callA: string; // room rec-a
  let callB: string; // room rec-b
  let participantA: string;

  beforeAll(async () => {
    mkdirSync(recordingsDir, { recursive: true });
    writeFileSync(secretPath, SECRET);
    t = await startTestApp(backend, { RECORDINGS_DIR: recordingsDir });
    expect(t.config.recordingsDir).toBe(recordingsDir);
    callA = (await post('/calls', { room_id: 'rec-a' })).json().id;
    callB = (await post('/calls', { room_id: 'rec-b' })).json().id;
    participantA = (await t.db.prisma.participant.create({ data: { callId: callA, userId: 'alice', role: 'host' } })).id;
  });
  afterAll(async () => {
    await t?.close();
    base.remove();
  });

  const post = (url: string, payload: unknown, headers: Headers = admin) => t.app.inject({ method: 'POST', url, headers, payload: payload as object });
  const get = (url: string, headers: Headers = admin) => t.app.inject({ method: 'GET', url, headers });
  const del = (url: string, headers: Headers = admin) => t.app.inject({ method: 'DELETE', url, headers });

  /** A recording row, and its file (unless content is null) at recordingsDir/<call>/<id>.webm. */
  async function makeRecording(o: RecOpts): Promise<{ id: string; content: Buffer; filePath: string; abs: string }> {
    const id = randomUUID();
    const content = o.content === undefined ? randomBytes(1000) : (o.content ?? Buffer.alloc(0));
    const filePath = o.filePath ?? `${o.callId}/${id}.webm`;
    const abs = path.join(recordingsDir, filePath);
    if (o.content !== null && o.filePath === undefined) {
      mkdirSync(path.dirname(abs), { recursive: true });
      writeFileSync(abs, content);
    }
    await t.db.prisma.recording.create({
      data: {
        id,
        callId: o.callId,
        sessionId: o.sessionId ?? randomUUID(),
        participantId: o.kind === 'composite' ? null : o.participantId === undefined ? participantA : o.participantId,
        kind: o.kind ?? 'participant',
        segment: o.segment ?? 0,
        mimeType: o.mimeType ?? 'video/webm',
        filePath,
        codec: 'vp8+opus',
        sizeBytes: o.content === null ? null : BigInt(content.length),
        durationMs: 1234,
        status: o.status ?? 'completed',
        startedAt: o.startedAt,
        endedAt: o.status === 'recording' ? null : new Date(),
      },
    });
    return { id, content, filePath, abs };
  }

  /** Walks every page of `url` (a /recordings query) and returns the ids in order. */
  async function walk(url: string, headers: Headers = admin): Promise<{ ids: string[]; pages: number }> {
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const sep = url.includes('?') ? '&' : '?';
      const res = await get(`${url}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`, headers);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      ids.push(...body.items.map((r: { id: string }) => r.id));
      cursor = body.next_cursor;
      pages++;
    } while (cursor && pages < 100);
    return { ids, pages };
  }

  describe('listing', () => {
    it('pages newest first without gaps or repeats, also with microsecond timestamps and ties', async () => {
      const call = (await post('/calls', { room_id: 'rec-pages' })).json().id;
      // started_at values as the database would write them by default (microseconds), some in the same
      // millisecond, two identical (ordered by id then).
      const stamps = [
        '2031-05-01 10:00:00.000100',
        '2031-05-01 10:00:00.000200',
        '2031-05-01 10:00:00.000200',
        '2031-05-01 10:00:00.000999',
        '2031-05-01 10:00:00.001000',
        '2031-05-01 10:00:01.000000',
        '2031-05-01 09:59:59.999999',
      ];
      const rows: Array<{ id: string; at: string }> = [];
      for (const at of stamps) {
        const r = await makeRecording({ callId: call });
        await t.db.prisma.$executeRaw`UPDATE recordings SET started_at = ${at}::timestamp WHERE id = ${r.id}::uuid`;
        rows.push({ id: r.id, at });
      }
      const expected = [...rows].sort((a, b) => (a.at === b.at ? (a.id < b.id ? 1 : -1) : a.at < b.at ? 1 : -1)).map((r) => r.id);

      for (const limit of [1, 2, 3, 100]) {
        const { ids, pages } = await walk(`/recordings?call_id=${call}&limit=${limit}`);
        expect(ids).toEqual(expected);
        expect(pages).toBe(Math.max(1, Math.ceil(expected.length / limit)));
      }
      // Unfiltered: every row of the database once.
      const all = await walk('/recordings?limit=3');
      expect(new Set(all.ids).size).toBe(all.ids.length);
      expect(all.ids.length).toBe(await t.db.prisma.recording.count());
      // Newest first overall: these 2031 rows come before anything recorded now.
      expect(all.ids.slice(0, expected.length)).toEqual(expected);
    });

    it('has the documented item shape', async () => {
      const r = await makeRecording({ callId: callA, segment: 2, mimeType: 'audio/webm' });
      const res = await get(`/recordings?call_id=${callA}&limit=100`);
      expect(res.statusCode).toBe(200);
      const item = res.json().items.find((i: { id: string }) => i.id === r.id);
      expect(item).toEqual({
        id: r.id,
        call_id: callA,
        session_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        participant_id: participantA,
        kind: 'participant',
        segment: 2,
        status: 'completed',
        mime_type: 'audio/webm',
        codec: 'vp8+opus',
        size_bytes: 1000,
        duration_ms: 1234,
        started_at: expect.any(String),
        ended_at: expect.any(String),
        error: null,
        file_path: r.filePath,
        download_url: `/recordings/${r.id}/download`,
      });
      expect(Number.isNaN(Date.parse(item.started_at))).toBe(false);
    });

    it('filters by call, session, room, status and started_at range', async () => {
      const call = (await post('/calls', { room_id: 'rec-filter' })).json().id;
      const session = randomUUID();
      const a = await makeRecording({ callId: call, sessionId: session, startedAt: new Date('2020-03-01T10:00:00Z') });
      const b = await makeRecording({ callId: call, sessionId: session, status: 'failed', startedAt: new Date('2020-03-02T10:00:00Z') });
      const c = await makeRecording({ callId: call, status: 'interrupted', kind: 'composite', startedAt: new Date('2020-03-03T10:00:00Z') });
      const ids = async (q: string) => (await get(`/recordings?limit=100&${q}`)).json().items.map((r: { id: string }) => r.id);

      expect(await ids(`call_id=${call}`)).toEqual([c.id, b.id, a.id]);
      expect(await ids(`session_id=${session}`)).toEqual([b.id, a.id]);
      expect(await ids('room_id=rec-filter')).toEqual([c.id, b.id, a.id]);
      expect(await ids(`call_id=${call}&status=failed`)).toEqual([b.id]);
      expect(await ids(`call_id=${call}&status=interrupted`)).toEqual([c.id]);
      expect(await ids(`call_id=${call}&status=recording`)).toEqual([]);
      // from inclusive, to exclusive; offsets are honoured.
      expect(await ids(`call_id=${call}&from=2020-03-02T10:00:00Z`)).toEqual([c.id, b.id]);
      expect(await ids(`call_id=${call}&to=2020-03-02T10:00:00Z`)).toEqual([a.id]);
      expect(await ids(`call_id=${call}&from=2020-03-02T00:00:00Z&to=2020-03-03T00:00:00Z`)).toEqual([b.id]);
      expect(await ids(`call_id=${call}&from=${encodeURIComponent('2020-03-02T12:00:00+02:00')}`)).toEqual([c.id, b.id]);
      expect(await ids(`call_id=${call}&session_id=${session}&from=2020-03-02T00:00:00Z`)).toEqual([b.id]);
    });

    it('rejects bad queries with 400', async () => {
      for (const q of ['limit=0', 'limit=101', 'status=done', 'call_id=nope', 'from=yesterday', 'path=/etc/passwd']) {
        const res = await get(`/recordings?${q}`);
        expect(res.statusCode).toBe(400);
        expect(res.json().error.code).toBe('VALIDATION_FAILED');
      }
      for (const cursor of [
        'garbage',
        Buffer.from('["2020-01-01T00:00:00.000000","x"]').toString('base64url'),
        Buffer.from("['); DROP TABLE recordings;--").toString('base64url'),
      ]) {
        const res = await get(`/recordings?cursor=${cursor}`);
        expect(res.statusCode).toBe(400);
        expect(res.json().error.code).toBe('INVALID_CURSOR');
      }
    });
  });

  describe('one recording', () => {
    it('gets one, 404 for an unknown id, 400 for a malformed one', async () => {
      const r = await makeRecording({ callId: callA, kind: 'composite' });
      const res = await get(`/recordings/${r.id}`);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ id: r.id, call_id: callA, kind: 'composite', participant_id: null, size_bytes: 1000 });
      const missing = await get(`/recordings/${randomUUID()}`);
      expect(missing.statusCode).toBe(404);
      expect(missing.json().error.code).toBe('RECORDING_NOT_FOUND');
      expect((await get('/recordings/not-a-uuid')).statusCode).toBe(400);
    });
  });

  describe('download', () => {
    let rec: { id: string; content: Buffer };
    beforeAll(async () => {
      rec = await makeRecording({ callId: callA, segment: 3 });
    });
    const dl = (headers: Headers = {}, h: Headers = admin) => get(`/recordings/${rec.id}/download`, { ...h, ...headers });

    it('streams the whole file with its headers', async () => {
      const res = await dl();
      expect(res.statusCode).toBe(200);
      expect(res.rawPayload.equals(rec.content)).toBe(true);
      expect(res.headers['content-type']).toBe('video/webm');
      expect(res.headers['content-length']).toBe('1000');
      expect(res.headers['accept-ranges']).toBe('bytes');
      expect(res.headers['content-disposition']).toBe(`attachment; filename="${callA}-${participantA}-3.webm"`);
      expect(res.headers['content-range']).toBeUndefined();
      expect(res.headers.etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
      expect(res.headers['last-modified']).toEqual(expect.any(String));
    });

    it('names a composite file "composite" and uses the row\'s MIME type', async () => {
      const c = await makeRecording({ callId: callB, kind: 'composite', mimeType: 'audio/webm', content: Buffer.from('abc') });
      const res = await get(`/recordings/${c.id}/download`);
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe('abc');
      expect(res.headers['content-type']).toBe('audio/webm');
      expect(res.headers['content-disposition']).toBe(`attachment; filename="${callB}-composite-0.webm"`);
    });

    it.each([
      ['bytes=0-9', 0, 9],
      ['bytes=10-19', 10, 19],
      ['bytes=999-999', 999, 999],
      ['bytes=900-', 900, 999],
      ['bytes=0-', 0, 999],
      ['bytes=-100', 900, 999],
      ['bytes=-5000', 0, 999],
      ['bytes=990-5000', 990, 999],
    ])('answers %s with 206 and exactly those bytes', async (range, start, end) => {
      const res = await dl({ range });
      expect(res.statusCode).toBe(206);
      expect(res.rawPayload.equals(rec.content.subarray(start, end + 1))).toBe(true);
      expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/1000`);
      expect(res.headers['content-length']).toBe(String(end - start + 1));
      expect(res.headers['content-type']).toBe('video/webm');
      expect(res.headers['accept-ranges']).toBe('bytes');
    });

    it.each(['bytes=1000-', 'bytes=5000-6000', 'bytes=-0'])('answers %s with 416 and the size', async (range) => {
      const res = await dl({ range });
      expect(res.statusCode).toBe(416);
      expect(res.headers['content-range']).toBe('bytes */1000');
      expect(res.json().error.code).toBe('RANGE_NOT_SATISFIABLE');
    });

    it.each(['bytes=0-1,5-6', 'bytes=5-1', 'lines=1-2', 'bytes=abc'])('answers %s (several or invalid ranges) with the whole file', async (range) => {
      const res = await dl({ range });
      expect(res.statusCode).toBe(200);
      expect(res.rawPayload.equals(rec.content)).toBe(true);
    });

    it('honours If-Range: the current ETag gets the range, a stale one the whole file', async () => {
      const etag = (await dl()).headers.etag as string;
      const fresh = await dl({ range: 'bytes=0-1', 'if-range': etag });
      expect(fresh.statusCode).toBe(206);
      expect(fresh.rawPayload.equals(rec.content.subarray(0, 2))).toBe(true);
      const stale = await dl({ range: 'bytes=0-1', 'if-range': '"stale"' });
      expect(stale.statusCode).toBe(200);
      expect(stale.rawPayload.length).toBe(1000);
    });

    it('answers HEAD with the headers and no body', async () => {
      const res = await t.app.inject({ method: 'HEAD', url: `/recordings/${rec.id}/download`, headers: admin });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-length']).toBe('1000');
      expect(res.headers['accept-ranges']).toBe('bytes');
      expect(res.rawPayload.length).toBe(0);
      const partial = await t.app.inject({ method: 'HEAD', url: `/recordings/${rec.id}/download`, headers: { ...admin, range: 'bytes=-10' } });
      expect(partial.statusCode).toBe(206);
      expect(partial.headers['content-length']).toBe('10');
      expect(partial.headers['content-range']).toBe('bytes 990-999/1000');
    });

    it('serves an empty file as 200 with no bytes, and refuses any range of it', async () => {
      const e = await makeRecording({ callId: callA, status: 'empty', content: Buffer.alloc(0) });
      const res = await get(`/recordings/${e.id}/download`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-length']).toBe('0');
      expect(res.rawPayload.length).toBe(0);
      const ranged = await get(`/recordings/${e.id}/download`, { ...admin, range: 'bytes=0-' });
      expect(ranged.statusCode).toBe(416);
      expect(ranged.headers['content-range']).toBe('bytes */0');
    });

    it('refuses a recording still being written with 409', async () => {
      const live = await makeRecording({ callId: callA, status: 'recording' });
      const res = await get(`/recordings/${live.id}/download`);
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('RECORDING_IN_PROGRESS');
    });

    it('answers 410 FILE_MISSING when the file is gone', async () => {
      const gone = await makeRecording({ callId: callA, content: null });
      const res = await get(`/recordings/${gone.id}/download`);
      expect(res.statusCode).toBe(410);
      expect(res.json().error.code).toBe('FILE_MISSING');
      expect(res.headers['content-disposition']).toBeUndefined();
    });

    it('answers 404 for an unknown recording', async () => {
      const res = await get(`/recordings/${randomUUID()}/download`);
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('RECORDING_NOT_FOUND');
    });
  });

  describe('stored paths that leave RECORDINGS_DIR', () => {
    let escapes: Array<{ id: string; filePath: string }>;
    beforeAll(async () => {
      // A symlink inside the directory pointing at the secret outside it.
      mkdirSync(path.join(recordingsDir, callA), { recursive: true });
      symlinkSync(secretPath, path.join(recordingsDir, callA, 'link-out.webm'));
      escapes = [];
      for (const filePath of ['../secret.txt', '../../etc/passwd', secretPath, '/etc/passwd', `${callA}/../../secret.txt`, `${callA}/link-out.webm`]) {
        escapes.push({ id: (await makeRecording({ callId: callA, filePath })).id, filePath });
      }
    });

    it('never serves them', async () => {
      for (const e of escapes) {
        for (const range of [undefined, 'bytes=0-5']) {
          const res = await get(`/recordings/${e.id}/download`, range ? { ...admin, range } : admin);
          expect({ filePath: e.filePath, status: res.statusCode }).toEqual({ filePath: e.filePath, status: 500 });
          expect(res.json().error.code).toBe('RECORDING_PATH_INVALID');
          expect(res.body).not.toContain(SECRET);
          expect(res.body).not.toContain('root:');
        }
      }
    });

    it('deletes only the row, never the file outside', async () => {
      for (const e of escapes) {
        const res = await del(`/recordings/${e.id}`);
        expect(res.statusCode).toBe(204);
        expect(await t.db.prisma.recording.findUnique({ where: { id: e.id } })).toBeNull();
      }
      expect(readFileSync(secretPath, 'utf8')).toBe(SECRET);
      expect(existsSync('/etc/passwd')).toBe(true);
    });
  });

  describe('delete', () => {
    it('removes the file and the row; a second delete is 404', async () => {
      const r = await makeRecording({ callId: callA });
      expect(existsSync(r.abs)).toBe(true);
      const res = await del(`/recordings/${r.id}`);
      expect(res.statusCode).toBe(204);
      expect(res.body).toBe('');
      expect(existsSync(r.abs)).toBe(false);
      expect(await t.db.prisma.recording.findUnique({ where: { id: r.id } })).toBeNull();
      expect((await get(`/recordings/${r.id}`)).statusCode).toBe(404);
      const again = await del(`/recordings/${r.id}`);
      expect(again.statusCode).toBe(404);
      expect(again.json().error.code).toBe('RECORDING_NOT_FOUND');
    });

    it('deletes the row when the file is already gone', async () => {
      const r = await makeRecording({ callId: callA, content: null });
      expect((await del(`/recordings/${r.id}`)).statusCode).toBe(204);
      expect(await t.db.prisma.recording.findUnique({ where: { id: r.id } })).toBeNull();
    });

    it('refuses a recording still being written with 409 and keeps it', async () => {
      const r = await makeRecording({ callId: callA, status: 'recording' });
      const res = await del(`/recordings/${r.id}`);
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('RECORDING_IN_PROGRESS');
      expect(existsSync(r.abs)).toBe(true);
      expect(await t.db.prisma.recording.findUnique({ where: { id: r.id } })).not.toBeNull();
    });
  });

  describe('permissions', () => {
    let inA: { id: string; content: Buffer; abs: string };
    let inB: { id: string; abs: string };
    beforeAll(async () => {
      inA = await makeRecording({ callId: callA });
      inB = await makeRecording({ callId: callB });
    });

    it('requires authentication', async () => {
      for (const url of ['/recordings', `/recordings/${inA.id}`, `/recordings/${inA.id}/download`]) {
        const res = await get(url, {});
        expect(res.statusCode).toBe(401);
        expect(res.json().error.code).toBe('AUTH_REQUIRED');
      }
      expect((await del(`/recordings/${inA.id}`, {})).statusCode).toBe(401);
      expect((await get('/recordings', { 'x-api-key': 'wrong' })).json().error.code).toBe('API_KEY_INVALID');
    });

    it('lets a host of the room list, read, download and delete its recordings only', async () => {
      const host = bearer(await issueToken(t, { user_id: 'h', room: 'rec-a', role: 'host' }));
      const { ids } = await walk('/recordings?limit=5', host);
      expect(ids).toContain(inA.id);
      expect(ids).not.toContain(inB.id);
      const rows = await t.db.prisma.recording.findMany({ where: { call: { roomId: 'rec-a' } }, select: { id: true } });
      expect(new Set(ids)).toEqual(new Set(rows.map((r) => r.id)));
      // A filter naming another room's call finds nothing; naming another room is refused.
      expect((await get(`/recordings?call_id=${callB}`, host)).json().items).toEqual([]);
      const otherRoom = await get('/recordings?room_id=rec-b', host);
      expect(otherRoom.statusCode).toBe(403);
      expect(otherRoom.json().error.code).toBe('ROOM_SCOPE_MISMATCH');
      expect((await get('/recordings?room_id=rec-a', host)).statusCode).toBe(200);

      expect((await get(`/recordings/${inA.id}`, host)).statusCode).toBe(200);
      const dl = await get(`/recordings/${inA.id}/download`, { ...host, range: 'bytes=0-3' });
      expect(dl.statusCode).toBe(206);
      expect(dl.rawPayload.equals(inA.content.subarray(0, 4))).toBe(true);

      for (const res of [
        await get(`/recordings/${inB.id}`, host),
        await get(`/recordings/${inB.id}/download`, host),
        await del(`/recordings/${inB.id}`, host),
      ]) {
        expect(res.statusCode).toBe(403);
        expect(res.json().error.code).toBe('ROOM_SCOPE_MISMATCH');
      }
      expect(existsSync(inB.abs)).toBe(true);

      const mine = await makeRecording({ callId: callA });
      expect((await del(`/recordings/${mine.id}`, host)).statusCode).toBe(204);
      expect(existsSync(mine.abs)).toBe(false);
    });

    it('refuses participants, moderators and unscoped tokens, even in the room', async () => {
      const tokens = [
        await issueToken(t, { user_id: 'p', room: 'rec-a' }),
        await issueToken(t, { user_id: 'm', room: 'rec-a', role: 'moderator' }),
        await issueToken(t, { user_id: 'u' }),
      ];
      for (const token of tokens) {
        const h = bearer(token);
        for (const res of [
          await get('/recordings', h),
          await get(`/recordings/${inA.id}`, h),
          await get(`/recordings/${inA.id}/download`, h),
          await del(`/recordings/${inA.id}`, h),
          // No existence oracle: an unknown id is refused the same way.
          await get(`/recordings/${randomUUID()}`, h),
        ]) {
          expect(res.statusCode).toBe(403);
          expect(res.json().error.code).toBe('FORBIDDEN');
        }
      }
      expect(existsSync(inA.abs)).toBe(true);
      expect(await t.db.prisma.recording.findUnique({ where: { id: inA.id } })).not.toBeNull();
    });

    it('lets the API key do everything', async () => {
      expect((await get(`/recordings/${inB.id}`)).statusCode).toBe(200);
      expect((await get(`/recordings/${inB.id}/download`)).statusCode).toBe(200);
      expect((await del(`/recordings/${inB.id}`)).statusCode).toBe(204);
      expect(existsSync(inB.abs)).toBe(false);
    });
  });

  it('documents the endpoints in OpenAPI under the recordings tag', async () => {
    const doc = (await get('/docs/json', {})).json();
    for (const [p, m] of [
      ['/recordings', 'get'],
      ['/recordings/{id}', 'get'],
      ['/recordings/{id}', 'delete'],
      ['/recordings/{id}/download', 'get'],
    ] as const) {
      expect(doc.paths[p]?.[m]?.tags).toEqual(['recordings']);
    }
    expect(Object.keys(doc.paths['/recordings/{id}/download'].get.responses)).toEqual(expect.arrayContaining(['200', '206', '409', '410', '416']));
  });
});
