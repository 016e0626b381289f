import { admin, issueToken } from './helpers/app';
import { recordEvents, useSignalingApp, type Client } from './helpers/signaling';
import { hold, sleep, until } from './helpers/wait';

/**
 * Lifecycle over real sockets, PostgreSQL backend: reconnection within the
 * grace period, replacement by a newer session, who may open a room, empty
 * rooms ending, and the metrics that show it.
 */
type State = { call_id: string; participants: Array<{ participant_id: string; user_id: string; connected: boolean }> };

describe('signaling lifecycle (PostgreSQL)', () => {
  describe('reconnection (RECONNECT_GRACE_SECONDS=1)', () => {
    const s = useSignalingApp('postgres', { RECONNECT_GRACE_SECONDS: '1' });
    /** Ana, then Ben, joined to `room`, once Ana has seen Ben join; and Ana's token, to come back with. */
    async function anaAndBen(room: string): Promise<{ aToken: string; A: Client; B: Client }> {
      const aToken = await issueToken(s.t, { user_id: 'ana', room });
      const A = await s.connect(aToken);
      await A.join(room);
      const B = await s.connect(await issueToken(s.t, { user_id: 'ben', room }));
      await B.join(room);
      await A.next('peer-joined');
      return { aToken, A, B };
    }

    it('resumes a participant that comes back within the grace period, unseen by the others; removes it when it does not', async () => {
      const room = 'reconnect';
      const { aToken, A, B } = await anaAndBen(room);
      const bSaw = recordEvents(B);

      A.close();
      await B.none('peer-left', 300);

      const A2 = await s.connect(aToken);
      const res = await A2.ok('join', { room });
      expect(res.resumed).toBe(true);
      expect(res.participant_id).toBe(A.participantId);
      const state = res.room_state as State;
      expect(state.call_id).toBe(A.callId);
      expect(state.participants.map((p) => [p.participant_id, p.connected])).toEqual([
        [A.participantId, true],
        [B.participantId, true],
      ]);
      expect((await A2.next('joined')).participant_id).toBe(A.participantId);

      // B saw nothing of it, and reaches A on its new socket.
      await B.ok('offer', { sdp: 'v=0 to the new socket', call_id: B.callId, to: A.participantId });
      expect(await A2.next('offer')).toEqual({ sdp: 'v=0 to the new socket', call_id: B.callId, from: B.participantId });
      await A2.ok('answer', { sdp: 'v=0 back', call_id: B.callId });
      expect((await B.next('answer')).from).toBe(A.participantId);
      expect(bSaw.map(([e]) => e)).toEqual(['answer']);

      // A drops again and stays away: after the grace period B is told.
      A2.close();
      const dropped = Date.now();
      const left = await B.next('peer-left', 4000);
      const after = Date.now() - dropped;
      expect(left).toEqual({ call_id: B.callId, participant_id: A.participantId, reason: 'disconnected' });
      expect(after).toBeGreaterThanOrEqual(900);
      expect(after).toBeLessThan(3000);
      await s.t.rooms.flushWrites();
      const row = await s.t.db.prisma.participant.findUniqueOrThrow({ where: { id: A.participantId } });
      expect(row.leftAt).not.toBeNull();
      expect(row.leftAt!.getTime()).toBeGreaterThan(row.joinedAt.getTime());
      // Its token now joins as a new participant.
      const A3 = await s.connect(aToken);
      const again = await A3.ok('join', { room });
      expect(again.resumed).toBe(false);
      expect(again.participant_id).not.toBe(A.participantId);
      expect((await B.next('peer-joined')).participant.participant_id).toBe(again.participant_id);
    });

    it('answers a relay to a participant within its grace period with TARGET_NOT_CONNECTED, and shows it as not connected', async () => {
      const room = 'grace';
      const { A, B } = await anaAndBen(room);

      A.close();
      await until(
        'relays to A to be refused',
        async () => (await B.request('offer', { sdp: 'v=0', call_id: B.callId, to: A.participantId })).error?.code === 'TARGET_NOT_CONNECTED',
        { timeoutMs: 1000 },
      );
      expect((await B.request('offer', { sdp: 'v=0', call_id: B.callId })).error?.code).toBe('TARGET_NOT_CONNECTED');
      expect((await B.request('ice-candidate', { candidate: 'c', to: A.participantId })).error?.code).toBe('TARGET_NOT_CONNECTED');

      const C = await s.connect(await issueToken(s.t, { user_id: 'cy', room }));
      const state = (await C.join(room)).room_state as State;
      expect(state.participants.map((p) => [p.user_id, p.connected])).toEqual([
        ['ana', false],
        ['ben', true],
        ['cy', true],
      ]);
      expect((await B.next('peer-joined')).participant).toMatchObject({ user_id: 'cy', connected: true });
      // The grace period ends for everyone.
      for (const c of [B, C]) expect(await c.next('peer-left', 3000)).toEqual({ call_id: B.callId, participant_id: A.participantId, reason: 'disconnected' });
    });

    it('replaces a connected session when the same user joins with another token', async () => {
      const room = 'replace';
      const { A, B } = await anaAndBen(room);
      const bSaw = recordEvents(B);

      const A2 = await s.connect(await issueToken(s.t, { user_id: 'ana', room }));
      const res = await A2.ok('join', { room });
      expect(res.resumed).toBe(false);
      expect(res.participant_id).not.toBe(A.participantId);
      expect(await A.next('removed')).toEqual({ call_id: A.callId, reason: 'replaced', by: null });
      expect(await A.next('disconnect')).toBe('io server disconnect');

      await B.next('peer-joined');
      expect(bSaw.map(([e]) => e)).toEqual(['peer-left', 'peer-joined']);
      expect(bSaw[0]![1]).toEqual({ call_id: B.callId, participant_id: A.participantId, reason: 'replaced' });
      expect(bSaw[1]![1].participant).toMatchObject({ participant_id: res.participant_id, user_id: 'ana', connected: true });
      expect((res.room_state as State).participants.map((p) => p.participant_id)).toEqual([B.participantId, res.participant_id]);

      // The new session works; the old one is gone for good, and recorded as left.
      await B.ok('offer', { sdp: 'v=0', call_id: B.callId });
      expect((await A2.next('offer')).from).toBe(B.participantId);
      await s.t.rooms.flushWrites();
      expect((await s.t.db.prisma.participant.findUniqueOrThrow({ where: { id: A.participantId } })).leftAt).not.toBeNull();
      expect((await s.t.db.prisma.participant.findUniqueOrThrow({ where: { id: res.participant_id as string } })).leftAt).toBeNull();
    });

    it('takes over silently when the same token connects again while the first connection is still up', async () => {
      const room = 'takeover';
      const { aToken, A, B } = await anaAndBen(room);

      const A2 = await s.connect(aToken);
      const res = await A2.ok('join', { room });
      expect(res).toMatchObject({ resumed: true, participant_id: A.participantId });
      expect(await A.next('removed')).toMatchObject({ reason: 'replaced' });
      expect(await A.next('disconnect')).toBe('io server disconnect');
      await B.none('peer-left', 100);
      await B.none('peer-joined', 0);
      await B.ok('offer', { sdp: 'v=0', call_id: B.callId });
      expect((await A2.next('offer')).from).toBe(B.participantId);
      // The old socket's disconnect did not start a grace period for the new one.
      await sleep(1200);
      await B.none('peer-left', 0);
      await B.ok('offer', { sdp: 'v=0 still', call_id: B.callId });
      expect((await A2.next('offer')).sdp).toBe('v=0 still');
    });

    it('does not leave a ghost behind when a socket disconnects while its join is in flight', async () => {
      const room = 'ghost';
      const X = await s.connect(await issueToken(s.t, { user_id: 'xan', room }));
      // Hold the join at its database step until the socket is gone.
      const joinStep = hold(s.t.calls, 'openForRoom');
      try {
        (X.socket.emit as unknown as (...a: unknown[]) => void)('join', { room }, () => undefined);
        await joinStep.entered;
        const id = X.socket.id!;
        X.close();
        await until('the socket to be gone', () => !s.t.signaling.io.sockets.sockets.has(id), { timeoutMs: 3000 });
      } finally {
        joinStep.restore();
        joinStep.release();
      }
      await sleep(50);

      const B = await s.connect(await issueToken(s.t, { user_id: 'ben', room }));
      const state = (await B.join(room)).room_state as State;
      const ghost = state.participants.find((p) => p.user_id === 'xan');
      // Either the join lost the race or it was admitted and then dropped: never "connected".
      if (ghost) {
        expect(ghost.connected).toBe(false);
        expect(await B.next('peer-left', 3000)).toEqual({ call_id: state.call_id, participant_id: ghost.participant_id, reason: 'disconnected' });
      }
      const C = await s.connect(await issueToken(s.t, { user_id: 'cy', room }));
      const later = (await C.join(room)).room_state as State;
      expect(later.participants.map((p) => p.user_id)).toEqual(['ben', 'cy']);
      await s.t.rooms.flushWrites();
      const rows = await s.t.db.prisma.participant.findMany({ where: { callId: state.call_id, userId: 'xan' } });
      expect(rows.every((r) => r.leftAt !== null)).toBe(true);
    });
  });

  describe('AUTO_CREATE_ROOMS=none', () => {
    const s = useSignalingApp('postgres', { AUTO_CREATE_ROOMS: 'none' });

    it('joins only rooms whose call was created over REST, and activates the call', async () => {
      const room = 'booked';
      const H = await s.connect(await issueToken(s.t, { user_id: 'hana', room, role: 'host' }));
      expect(await H.request('join', { room })).toEqual({ error: { code: 'CALL_NOT_FOUND', message: expect.any(String) } });
      expect(await s.t.db.prisma.call.count({ where: { roomId: room } })).toBe(0);

      const created = await s.t.app.inject({ method: 'POST', url: '/calls', headers: admin, payload: { room_id: room } });
      expect(created.statusCode).toBe(201);
      expect(created.json()).toMatchObject({ room_id: room, status: 'created', started_at: null });
      const callId = created.json().id as string;

      await H.join(room);
      expect(H.callId).toBe(callId);
      const call = await s.t.app.inject({ method: 'GET', url: `/calls/${callId}`, headers: admin });
      expect(call.statusCode).toBe(200);
      expect(call.json()).toMatchObject({ id: callId, status: 'active', started_at: expect.any(String), ended_at: null });
      expect(new Date(call.json().started_at).getTime()).toBeGreaterThanOrEqual(new Date(call.json().created_at).getTime());
      await s.t.rooms.flushWrites();
      expect((await s.t.app.inject({ method: 'GET', url: `/calls/${callId}`, headers: admin })).json().participants).toEqual([
        expect.objectContaining({ id: H.participantId, user_id: 'hana', left_at: null }),
      ]);
    });
  });

  describe('AUTO_CREATE_ROOMS=host', () => {
    const s = useSignalingApp('postgres', { AUTO_CREATE_ROOMS: 'host' });

    it('lets a host open a room but not a participant', async () => {
      const room = 'hosted';
      const P = await s.connect(await issueToken(s.t, { user_id: 'pia', room }));
      expect((await P.request('join', { room })).error?.code).toBe('CALL_NOT_FOUND');
      const U = await s.connect(await issueToken(s.t, { user_id: 'una' })); // not scoped to a room
      expect((await U.request('join', { room })).error?.code).toBe('CALL_NOT_FOUND');
      expect(await s.t.db.prisma.call.count({ where: { roomId: room } })).toBe(0);

      const H = await s.connect(await issueToken(s.t, { user_id: 'hana', room, role: 'host' }));
      await H.join(room);
      await P.join(room);
      expect(P.callId).toBe(H.callId);
      const call = await s.t.app.inject({ method: 'GET', url: `/calls/${H.callId}`, headers: admin });
      expect(call.json()).toMatchObject({ status: 'active', started_at: expect.any(String) });

      const M = await s.connect(await issueToken(s.t, { user_id: 'mo', room: 'moderated', role: 'moderator' }));
      await M.join('moderated');
    });
  });

  describe('EMPTY_ROOM_TIMEOUT_SECONDS=1', () => {
    const s = useSignalingApp('postgres', { EMPTY_ROOM_TIMEOUT_SECONDS: '1', RECONNECT_GRACE_SECONDS: '1' });
    const status = async (id: string) => (await s.t.db.prisma.call.findUniqueOrThrow({ where: { id } })).status;

    it('ends the call once the room has been empty for the timeout', async () => {
      const A = await s.connect(await issueToken(s.t, { user_id: 'ana' }));
      await A.join('emptying');
      const B = await s.connect(await issueToken(s.t, { user_id: 'ben' }));
      await B.join('emptying');
      await A.ok('leave', {});
      await sleep(1200);
      expect(await status(A.callId)).toBe('active'); // not empty yet
      await B.ok('leave', {});
      const emptied = Date.now();
      await until('the call to end', async () => (await status(A.callId)) === 'ended', { timeoutMs: 3000 });
      expect(Date.now() - emptied).toBeGreaterThanOrEqual(900);
      const call = await s.t.db.prisma.call.findUniqueOrThrow({ where: { id: A.callId }, include: { participants: true } });
      expect(call.endedAt).not.toBeNull();
      await s.t.rooms.flushWrites();
      expect((await s.t.db.prisma.participant.findMany({ where: { callId: A.callId } })).every((p) => p.leftAt !== null)).toBe(true);
      // Joining the room now opens a new call.
      await A.ok('join', { room: 'emptying' });
      const res = await A.ok('leave', {});
      expect(res.ok).toBe(true);
    });

    it('keeps the call when someone joins again within the timeout', async () => {
      const A = await s.connect(await issueToken(s.t, { user_id: 'ana' }));
      await A.join('rejoined');
      const callId = A.callId;
      await A.ok('leave', {});
      await sleep(500);
      const again = await A.ok('join', { room: 'rejoined' });
      expect((again.room_state as State).call_id).toBe(callId);
      await sleep(1000); // past the first timeout
      expect(await status(callId)).toBe('active');
      await A.ok('leave', {});
      await until('the call to end', async () => (await status(callId)) === 'ended', { timeoutMs: 3000 });
    });

    it('does not admit anyone to a call that the empty-room timeout is ending', async () => {
      const A = await s.connect(await issueToken(s.t, { user_id: 'ana' }));
      await A.join('boundary');
      const oldCall = A.callId;
      // Hold the timeout's end of the call in the database while someone joins.
      const ending = hold(s.t.calls, 'end');
      let B: Client;
      let joining: Promise<Record<string, unknown>>;
      try {
        await A.ok('leave', {});
        await ending.entered;
        B = await s.connect(await issueToken(s.t, { user_id: 'ben' }));
        joining = B.request('join', { room: 'boundary' });
        await sleep(50);
      } finally {
        ending.restore();
        ending.release();
      }
      const res = await joining;
      expect(res.ok).toBe(true);
      const state = res.room_state as State & { status: string };
      expect(state.call_id).not.toBe(oldCall);
      expect(state.status).toBe('active');
      await B.none('call-state-changed', 200);
      expect(await status(oldCall)).toBe('ended');
      expect(await status(state.call_id)).toBe('active');
      await B.ok('leave', {});
    });

    it('counts the grace period before the timeout when the last participant drops', async () => {
      const A = await s.connect(await issueToken(s.t, { user_id: 'ana' }));
      await A.join('dropped');
      A.close();
      const dropped = Date.now();
      await until('the call to end', async () => (await status(A.callId)) === 'ended', { timeoutMs: 4000, intervalMs: 50 });
      expect(Date.now() - dropped).toBeGreaterThanOrEqual(1800);
    });
  });

  describe('metrics', () => {
    const s = useSignalingApp('postgres');
    const metrics = async () => {
      const res = await s.t.app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      return res.body;
    };
    const value = (text: string, series: string): number | undefined => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };

    it('exposes connections, rooms, participants, messages by type and errors by code', async () => {
      const A = await s.connect(await issueToken(s.t, { user_id: 'ana' }));
      const B = await s.connect(await issueToken(s.t, { user_id: 'ben' }));
      const U = s.client();
      await U.connected();
      await A.join('metered');
      await B.join('metered');
      await A.join('metered').catch(() => undefined); // ALREADY_JOINED
      for (let i = 0; i < 3; i++) await A.ok('offer', { sdp: `v=0 ${i}`, call_id: A.callId });
      await B.ok('answer', { sdp: 'v=0', call_id: B.callId });
      for (let i = 0; i < 2; i++) expect((await A.request('mute', { call_id: 'not-this-call', track: 'audio' })).error?.code).toBe('CALL_ID_MISMATCH');
      expect((await U.request('join', { room: 'metered' })).error?.code).toBe('AUTH_REQUIRED');
      expect((await A.request('what', {})).error?.code).toBe('UNKNOWN_EVENT');
      const bad = s.client({ token: 'garbage' });
      await bad.next('connect_error');

      const text = await metrics();
      expect(value(text, 'switchboard_socket_connections')).toBe(3);
      expect(value(text, 'switchboard_rooms')).toBe(1);
      expect(value(text, 'switchboard_participants')).toBe(2);
      expect(value(text, 'switchboard_signaling_messages_total{type="join"}')).toBe(4);
      expect(value(text, 'switchboard_signaling_messages_total{type="offer"}')).toBe(3);
      expect(value(text, 'switchboard_signaling_messages_total{type="answer"}')).toBe(1);
      expect(value(text, 'switchboard_signaling_messages_total{type="mute"}')).toBe(2);
      expect(value(text, 'switchboard_signaling_messages_total{type="unknown"}')).toBe(1);
      expect(value(text, 'switchboard_signaling_errors_total{code="CALL_ID_MISMATCH"}')).toBe(2);
      expect(value(text, 'switchboard_signaling_errors_total{code="ALREADY_JOINED"}')).toBe(1);
      expect(value(text, 'switchboard_signaling_errors_total{code="AUTH_REQUIRED"}')).toBe(1);
      expect(value(text, 'switchboard_signaling_errors_total{code="UNKNOWN_EVENT"}')).toBe(1);
      expect(value(text, 'switchboard_signaling_errors_total{code="TOKEN_MALFORMED"}')).toBe(1);
      expect(text).toMatch(/^# TYPE switchboard_signaling_messages_total counter$/m);

      // Leaving and disconnecting move the gauges back.
      await B.ok('leave', {});
      U.close();
      await until('two connections', async () => value(await metrics(), 'switchboard_socket_connections') === 2, { timeoutMs: 3000 });
      const after = await metrics();
      expect(value(after, 'switchboard_participants')).toBe(1);
      expect(value(after, 'switchboard_rooms')).toBe(1);
      expect(value(after, 'switchboard_signaling_messages_total{type="leave"}')).toBe(1);
    });
  });
});
