import { admin, bearer, issueToken, startTestApp, type TestApp } from './helpers/app';
import { BACKENDS } from './helpers/env';

describe.each(BACKENDS)('calls REST (%s)', (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(backend, { BODY_LIMIT_BYTES: '2048' });
  });
  afterAll(() => t.close());

  const post = (url: string, payload: unknown, headers: Record<string, string> = admin) =>
    t.app.inject({ method: 'POST', url, headers, payload: payload as object });
  const get = (url: string, headers: Record<string, string> = admin) => t.app.inject({ method: 'GET', url, headers });

  describe('with the API key', () => {
    it('creates a call with a given room and metadata, and reads it back with participants', async () => {
      const res = await post('/calls', { room_id: 'standup', metadata: { topic: 'daily', n: 3 } });
      expect(res.statusCode).toBe(201);
      const call = res.json();
      expect(call).toMatchObject({
        room_id: 'standup',
        status: 'created',
        recording: false,
        metadata: { topic: 'daily', n: 3 },
        started_at: null,
        ended_at: null,
        participants: [],
      });
      expect(call.id).toMatch(/^[0-9a-f-]{36}$/);

      await t.db.prisma.participant.create({ data: { callId: call.id, userId: 'u1', displayName: 'One', role: 'host', clientIp: '10.1.2.3' } });
      const got = await get(`/calls/${call.id}`);
      expect(got.statusCode).toBe(200);
      expect(got.json().participants).toEqual([
        expect.objectContaining({ user_id: 'u1', display_name: 'One', role: 'host', client_ip: '10.1.2.3', left_at: null }),
      ]);
      const row = await t.db.prisma.call.findUniqueOrThrow({ where: { id: call.id } });
      expect(row.roomId).toBe('standup');
      expect(row.status).toBe('created');
    });

    it('generates a room id when none is given', async () => {
      const res = await post('/calls', {});
      expect(res.statusCode).toBe(201);
      expect(res.json().room_id).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('refuses a second open call in the same room with 409', async () => {
      expect((await post('/calls', { room_id: 'dup' })).statusCode).toBe(201);
      const res = await post('/calls', { room_id: 'dup' });
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('CALL_ALREADY_ACTIVE');
    });

    it('ends a call: status, ended_at, every participant left; a second end is 409; the room can open again', async () => {
      const call = (await post('/calls', { room_id: 'to-end' })).json();
      await t.db.prisma.participant.createMany({
        data: [
          { callId: call.id, userId: 'a' },
          { callId: call.id, userId: 'b' },
        ],
      });
      const res = await post(`/calls/${call.id}/end`, undefined);
      expect(res.statusCode).toBe(200);
      const ended = res.json();
      expect(ended.status).toBe('ended');
      expect(ended.ended_at).not.toBeNull();
      expect(ended.participants.every((p: { left_at: string | null }) => p.left_at !== null)).toBe(true);
      const again = await post(`/calls/${call.id}/end`, undefined);
      expect(again.statusCode).toBe(409);
      expect(again.json().error.code).toBe('CALL_ALREADY_ENDED');
      expect((await post('/calls', { room_id: 'to-end' })).statusCode).toBe(201);
    });

    it('emits call-state-changed for create and end', async () => {
      const seen: string[] = [];
      const listener = (c: { status: string; roomId: string }) => c.roomId === 'events' && seen.push(c.status);
      t.calls.on('call-state-changed', listener);
      const call = (await post('/calls', { room_id: 'events' })).json();
      await post(`/calls/${call.id}/end`, undefined);
      t.calls.off('call-state-changed', listener);
      expect(seen).toEqual(['created', 'ended']);
    });

    it('lists calls newest first, filtered and paginated without gaps or repeats', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await post('/calls', { room_id: `page-${i}`, metadata: { i } })).json().id);
      await post(`/calls/${ids[1]}/end`, undefined);

      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await get(`/calls?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.statusCode).toBe(200);
        const body = res.json();
        expect(body.items.length).toBeLessThanOrEqual(2);
        seen.push(...body.items.map((c: { id: string }) => c.id));
        cursor = body.next_cursor;
        pages++;
      } while (cursor && pages < 50);
      expect(new Set(seen).size).toBe(seen.length);
      const mine = seen.filter((id) => ids.includes(id));
      expect(mine).toEqual([...ids].reverse());

      const ended = (await get('/calls?status=ended&limit=100')).json().items.map((c: { id: string }) => c.id);
      expect(ended).toContain(ids[1]);
      expect(ended).not.toContain(ids[0]);
      const byRoom = (await get('/calls?room_id=page-3')).json();
      expect(byRoom.items.map((c: { id: string }) => c.id)).toEqual([ids[3]]);
      expect(byRoom.items[0]).toMatchObject({ participant_count: 0, metadata: { i: 3 } });
    });
  });

  describe('with user tokens', () => {
    it('lets a host create the call of its own room, defaulting room_id to the token room', async () => {
      const host = await issueToken(t, { user_id: 'h', room: 'host-room', role: 'host' });
      const res = await post('/calls', {}, bearer(host));
      expect(res.statusCode).toBe(201);
      expect(res.json().room_id).toBe('host-room');
    });

    it('refuses a host creating a call in another room, and a participant creating one', async () => {
      const host = await issueToken(t, { user_id: 'h', room: 'room-a', role: 'host' });
      const other = await post('/calls', { room_id: 'room-b' }, bearer(host));
      expect(other.statusCode).toBe(403);
      expect(other.json().error.code).toBe('ROOM_SCOPE_MISMATCH');
      const participant = await issueToken(t, { user_id: 'p', room: 'room-a' });
      const res = await post('/calls', {}, bearer(participant));
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('FORBIDDEN');
    });

    it('lets any role of the room read its call (without client IPs), and nobody from another room', async () => {
      const call = (await post('/calls', { room_id: 'read-room' })).json();
      await t.db.prisma.participant.create({ data: { callId: call.id, userId: 'x', clientIp: '192.0.2.1' } });
      const p = await issueToken(t, { user_id: 'p', room: 'read-room' });
      const res = await get(`/calls/${call.id}`, bearer(p));
      expect(res.statusCode).toBe(200);
      expect(res.json().participants[0].client_ip).toBeNull();
      const stranger = await issueToken(t, { user_id: 's', room: 'elsewhere' });
      expect((await get(`/calls/${call.id}`, bearer(stranger))).json().error.code).toBe('ROOM_SCOPE_MISMATCH');
      const unscoped = await issueToken(t, { user_id: 'u' });
      const r2 = await get(`/calls/${call.id}`, bearer(unscoped));
      expect(r2.statusCode).toBe(403);
      expect(r2.json().error.code).toBe('FORBIDDEN');
    });

    it('restricts a token listing calls to its own room', async () => {
      await post('/calls', { room_id: 'list-mine' });
      const p = await issueToken(t, { user_id: 'p', room: 'list-mine' });
      const res = await get('/calls', bearer(p));
      expect(res.statusCode).toBe(200);
      expect(res.json().items.map((c: { room_id: string }) => c.room_id)).toEqual(['list-mine']);
      expect((await get('/calls?room_id=page-1', bearer(p))).json().error.code).toBe('ROOM_SCOPE_MISMATCH');
    });

    it('lets a host or moderator end the call of its room, not a participant', async () => {
      const call = (await post('/calls', { room_id: 'end-room' })).json();
      const p = await issueToken(t, { user_id: 'p', room: 'end-room' });
      const refused = await post(`/calls/${call.id}/end`, undefined, bearer(p));
      expect(refused.statusCode).toBe(403);
      const m = await issueToken(t, { user_id: 'm', room: 'end-room', role: 'moderator' });
      expect((await post(`/calls/${call.id}/end`, undefined, bearer(m))).statusCode).toBe(200);
    });
  });

  describe('bad input gets a 4xx with a code', () => {
    it.each([
      ['bad JSON', { 'content-type': 'application/json' }, '{"room_id": ', 400, 'INVALID_JSON'],
      ['a wrong type', { 'content-type': 'application/json' }, JSON.stringify({ room_id: 42 }), 400, 'VALIDATION_FAILED'],
      ['metadata that is not an object', { 'content-type': 'application/json' }, JSON.stringify({ metadata: [1, 2] }), 400, 'VALIDATION_FAILED'],
      ['an unknown field', { 'content-type': 'application/json' }, JSON.stringify({ room_id: 'r', owner: 'me' }), 400, 'VALIDATION_FAILED'],
      ['an oversize body', { 'content-type': 'application/json' }, JSON.stringify({ metadata: { blob: 'x'.repeat(5000) } }), 413, 'BODY_TOO_LARGE'],
      ['an unsupported content type', { 'content-type': 'application/xml' }, '<call/>', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ])('%s', async (_name, headers, payload, status, code) => {
      const res = await t.app.inject({ method: 'POST', url: '/calls', headers: { ...admin, ...headers }, payload });
      expect(res.statusCode).toBe(status);
      expect(res.headers['content-type']).toMatch(/application\/json/);
      expect(res.json().error.code).toBe(code);
    });

    it('names the unknown field', async () => {
      const res = await post('/calls', { room_id: 'r', owner: 'me' });
      expect(res.json().error.details).toEqual([expect.objectContaining({ field: 'owner' })]);
    });

    it.each([
      ['a non-UUID id', '/calls/not-a-uuid', 400, 'VALIDATION_FAILED'],
      ['an unknown call', '/calls/00000000-0000-4000-8000-000000000000', 404, 'CALL_NOT_FOUND'],
      ['a limit out of range', '/calls?limit=1000', 400, 'VALIDATION_FAILED'],
      ['an unknown status', '/calls?status=paused', 400, 'VALIDATION_FAILED'],
      ['an unknown query parameter', '/calls?sort=asc', 400, 'VALIDATION_FAILED'],
      ['a forged cursor', '/calls?cursor=bm9wZQ', 400, 'INVALID_CURSOR'],
      ['an unknown route', '/nope', 404, 'ROUTE_NOT_FOUND'],
    ])('%s', async (_name, url, status, code) => {
      const res = await get(url);
      expect(res.statusCode).toBe(status);
      expect(res.json().error.code).toBe(code);
    });

    it('ending an unknown call is 404', async () => {
      const res = await post('/calls/00000000-0000-4000-8000-000000000000/end', undefined);
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('CALL_NOT_FOUND');
    });

    it('echoes a sane request id and replaces an unsafe one', async () => {
      const a = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'abc-123' } });
      expect(a.headers['x-request-id']).toBe('abc-123');
      const b = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'bad id\n' } });
      expect(b.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });
  });
});
