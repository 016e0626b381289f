import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { bearer, issueToken } from './helpers/app';
import { BACKENDS } from './helpers/env';
import { useRecordingsApp } from './helpers/recordings';

/** The recordings REST API: listing and paging, one recording, who may see what, and its documentation. */
describe.each(BACKENDS)('recordings REST: listing and permissions (%s)', (backend) => {
  const rest = useRecordingsApp(backend);
  const { get, del, post, makeRecording, walk } = rest;

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
        await rest.t.db.prisma.$executeRaw`UPDATE recordings SET started_at = ${at}::timestamp WHERE id = ${r.id}::uuid`;
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
      expect(all.ids.length).toBe(await rest.t.db.prisma.recording.count());
      // Newest first overall: these 2031 rows come before anything recorded now.
      expect(all.ids.slice(0, expected.length)).toEqual(expected);
    });

    it('has the documented item shape', async () => {
      const r = await makeRecording({ callId: rest.callA, segment: 2, mimeType: 'audio/webm' });
      const res = await get(`/recordings?call_id=${rest.callA}&limit=100`);
      expect(res.statusCode).toBe(200);
      const item = res.json().items.find((i: { id: string }) => i.id === r.id);
      expect(item).toEqual({
        id: r.id,
        call_id: rest.callA,
        session_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        participant_id: rest.participantA,
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
      const r = await makeRecording({ callId: rest.callA, kind: 'composite' });
      const res = await get(`/recordings/${r.id}`);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ id: r.id, call_id: rest.callA, kind: 'composite', participant_id: null, size_bytes: 1000 });
      const missing = await get(`/recordings/${randomUUID()}`);
      expect(missing.statusCode).toBe(404);
      expect(missing.json().error.code).toBe('RECORDING_NOT_FOUND');
      expect((await get('/recordings/not-a-uuid')).statusCode).toBe(400);
    });
  });

  describe('permissions', () => {
    let inA: { id: string; content: Buffer; abs: string };
    let inB: { id: string; abs: string };
    beforeAll(async () => {
      inA = await makeRecording({ callId: rest.callA });
      inB = await makeRecording({ callId: rest.callB });
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
      const host = bearer(await issueToken(rest.t, { user_id: 'h', room: 'rec-a', role: 'host' }));
      const { ids } = await walk('/recordings?limit=5', host);
      expect(ids).toContain(inA.id);
      expect(ids).not.toContain(inB.id);
      const rows = await rest.t.db.prisma.recording.findMany({ where: { call: { roomId: 'rec-a' } }, select: { id: true } });
      expect(new Set(ids)).toEqual(new Set(rows.map((r) => r.id)));
      // A filter naming another room's call finds nothing; naming another room is refused.
      expect((await get(`/recordings?call_id=${rest.callB}`, host)).json().items).toEqual([]);
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

      const mine = await makeRecording({ callId: rest.callA });
      expect((await del(`/recordings/${mine.id}`, host)).statusCode).toBe(204);
      expect(existsSync(mine.abs)).toBe(false);
    });

    it('refuses participants, moderators and unscoped tokens, even in the room', async () => {
      const tokens = [
        await issueToken(rest.t, { user_id: 'p', room: 'rec-a' }),
        await issueToken(rest.t, { user_id: 'm', room: 'rec-a', role: 'moderator' }),
        await issueToken(rest.t, { user_id: 'u' }),
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
      expect(await rest.t.db.prisma.recording.findUnique({ where: { id: inA.id } })).not.toBeNull();
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
