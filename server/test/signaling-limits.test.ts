import { issueToken, type TestApp } from './helpers/app';
import { useSignalingApp, type AnyAck, type Client } from './helpers/signaling';
import { sleep, until } from './helpers/wait';

/** The node's signaling limits, each with an app of its own configured small. PostgreSQL backend. */

async function gauge(t: TestApp, name: 'connections' | 'rooms' | 'participants'): Promise<number> {
  return (await t.metrics[name].get()).values[0]?.value ?? 0;
}

const connectOutcome = (c: Client): Promise<string> =>
  new Promise((resolve) => {
    c.socket.once('connect', () => resolve('connected'));
    c.socket.once('connect_error', (err: Error & { data?: { code: string } }) => resolve(err.data?.code ?? err.message));
  });

describe('signaling limits (PostgreSQL)', () => {
  describe('MAX_CONNECTIONS=3', () => {
    const s = useSignalingApp('postgres', { MAX_CONNECTIONS: '3' });

    it('refuses the 4th connection with SERVER_FULL, and accepts again once one closes', async () => {
      const token = await issueToken(s.t, { user_id: 'u' });
      const first = [s.client({ token }), s.client(), s.client({ token })]; // unauthenticated sockets count too
      await Promise.all(first.map((c) => c.connected()));
      expect(await gauge(s.t, 'connections')).toBe(3);

      const fourth = s.client({ token });
      const err = await fourth.next<Error & { data?: { code: string; message: string } }>('connect_error');
      expect(err.data).toEqual({ code: 'SERVER_FULL', message: expect.any(String) });
      expect(fourth.socket.connected).toBe(false);
      // A refused handshake is not counted, and neither is one with a bad token.
      const bad = s.client({ token: 'garbage' });
      expect((await bad.next<Error & { data?: { code: string } }>('connect_error')).data?.code).toBe('SERVER_FULL');
      expect(await gauge(s.t, 'connections')).toBe(3);
      // The full check runs first: a bad token on a full node hears SERVER_FULL, not a token code.
      expect(first.every((c) => c.socket.connected)).toBe(true);

      first[1]!.close();
      await until('two connections', async () => (await gauge(s.t, 'connections')) === 2, { timeoutMs: 3000 });
      const fifth = s.client({ token });
      await fifth.connected();
      expect(await fifth.request('hold', { call_id: 'x' })).toEqual({ error: expect.objectContaining({ code: 'NOT_JOINED' }) });
      expect(await gauge(s.t, 'connections')).toBe(3);
      for (const c of [first[0]!, first[2]!, fifth]) c.close();
      await until('no connections', async () => (await gauge(s.t, 'connections')) === 0, { timeoutMs: 3000 });
    });

    it('admits exactly MAX_CONNECTIONS of many simultaneous handshakes', async () => {
      const token = await issueToken(s.t, { user_id: 'u' });
      const many = Array.from({ length: 8 }, () => s.client({ token }));
      const outcomes = await Promise.all(many.map(connectOutcome));
      expect(outcomes.filter((o) => o === 'connected')).toHaveLength(3);
      expect(outcomes.filter((o) => o === 'SERVER_FULL')).toHaveLength(5);
      expect(await gauge(s.t, 'connections')).toBe(3);
      many.forEach((c) => c.close());
      await until('no connections', async () => (await gauge(s.t, 'connections')) === 0, { timeoutMs: 3000 });
    });
  });

  describe('MAX_PARTICIPANTS_PER_ROOM=2', () => {
    const s = useSignalingApp('postgres', { MAX_PARTICIPANTS_PER_ROOM: '2' });

    it('refuses a third participant with ROOM_FULL, counting those within the grace period, and not a reconnection', async () => {
      const room = 'small';
      const aToken = await issueToken(s.t, { user_id: 'a' });
      const A = s.client({ token: aToken });
      await A.connected();
      await A.join(room);
      const B = await s.join({ user_id: 'b' }, room);
      await A.next('peer-joined');

      const C = s.client({ token: await issueToken(s.t, { user_id: 'c' }) });
      await C.connected();
      expect(await C.request('join', { room })).toEqual({ error: { code: 'ROOM_FULL', message: expect.any(String) } });
      await A.none('peer-joined', 50);
      await B.none('peer-joined', 0);

      // A drops: its place is kept for the grace period, so the room is still full...
      A.close();
      await until('two connections', async () => (await gauge(s.t, 'connections')) === 2, { timeoutMs: 3000 });
      await sleep(50);
      expect((await C.request('join', { room })).error?.code).toBe('ROOM_FULL');
      // ...and A can take it back although the room is full.
      const A2 = s.client({ token: aToken });
      await A2.connected();
      const back = await A2.ok('join', { room });
      expect(back).toMatchObject({ participant_id: A.participantId, resumed: true });

      // The same user with another token replaces its own session, even in a full room.
      const A3 = s.client({ token: await issueToken(s.t, { user_id: 'a' }) });
      await A3.connected();
      expect((await A3.ok('join', { room })).resumed).toBe(false);
      expect(await A2.next('removed')).toMatchObject({ reason: 'replaced' });

      // Once someone leaves, C gets in; the room is only as full as it says.
      await B.ok('leave', {});
      const joined = await C.ok('join', { room });
      expect((joined.room_state as { participants: unknown[] }).participants).toHaveLength(2);
      const D = s.client({ token: await issueToken(s.t, { user_id: 'd' }) });
      await D.connected();
      expect((await D.request('join', { room })).error?.code).toBe('ROOM_FULL');
      // Another room is not affected.
      await D.ok('join', { room: 'other-small' });
    });
  });

  describe('MAX_ROOMS=1', () => {
    const s = useSignalingApp('postgres', { MAX_ROOMS: '1', EMPTY_ROOM_TIMEOUT_SECONDS: '0' });

    it('refuses to open a second room with TOO_MANY_ROOMS, still admits to the open one, and frees the slot when the room ends', async () => {
      const A = await s.join({ user_id: 'a' }, 'r1');
      const B = s.client({ token: await issueToken(s.t, { user_id: 'b' }) });
      await B.connected();
      expect(await B.request('join', { room: 'r2' })).toEqual({ error: { code: 'TOO_MANY_ROOMS', message: expect.any(String) } });
      // No call was opened for the refused room.
      expect(await s.t.db.prisma.call.count({ where: { roomId: 'r2' } })).toBe(0);
      await B.join('r1');
      expect(await gauge(s.t, 'rooms')).toBe(1);

      // Both leave; with EMPTY_ROOM_TIMEOUT_SECONDS=0 the call ends at once and the slot frees.
      await A.ok('leave', {});
      await B.ok('leave', {});
      await until('the call to end', async () => (await s.t.db.prisma.call.findUniqueOrThrow({ where: { id: A.callId } })).status === 'ended', {
        timeoutMs: 3000,
      });
      await until('no rooms', async () => (await gauge(s.t, 'rooms')) === 0, { timeoutMs: 3000 });
      await B.ok('join', { room: 'r2' });
      await B.ok('leave', {});
      await until('no rooms', async () => (await gauge(s.t, 'rooms')) === 0, { timeoutMs: 3000 });
    });

    it('opens exactly MAX_ROOMS rooms when several are opened at once', async () => {
      const clients = await Promise.all(
        ['r3', 'r4', 'r5', 'r6'].map(async (room, i) => {
          const c = s.client({ token: await issueToken(s.t, { user_id: `c${i}` }) });
          await c.connected();
          return { c, room };
        }),
      );
      const results = await Promise.all(clients.map(({ c, room }) => c.request('join', { room })));
      const codes = results.map((r: AnyAck) => (r.ok ? 'ok' : r.error!.code));
      expect(codes.filter((c) => c === 'ok')).toHaveLength(1);
      expect(codes.filter((c) => c === 'TOO_MANY_ROOMS')).toHaveLength(3);
      expect(await gauge(s.t, 'rooms')).toBe(1);
      const opened = await s.t.db.prisma.call.findMany({ where: { roomId: { in: ['r3', 'r4', 'r5', 'r6'] } } });
      expect(opened).toHaveLength(1);
    });
  });

  describe('SOCKET_RATE_LIMIT_PER_SECOND=5, SOCKET_RATE_LIMIT_BURST=5', () => {
    const s = useSignalingApp('postgres', { SOCKET_RATE_LIMIT_PER_SECOND: '5', SOCKET_RATE_LIMIT_BURST: '5' });

    it('answers a burst beyond the bucket with RATE_LIMITED, per socket, and recovers after a second', async () => {
      const A = await s.join({ user_id: 'a' }, 'busy');
      const B = await s.join({ user_id: 'b' }, 'busy');
      await A.next('peer-joined');
      await sleep(1000); // both buckets full again (5)

      const results = await Promise.all(Array.from({ length: 20 }, () => A.request('hold', { call_id: A.callId, track: 'audio' })));
      const ok = results.filter((r) => r.ok).length;
      const limited = results.filter((r) => r.error?.code === 'RATE_LIMITED').length;
      expect(ok + limited).toBe(20);
      expect(ok).toBeGreaterThanOrEqual(5);
      expect(ok).toBeLessThanOrEqual(7); // 5 at once, plus one per 200 ms while the burst is read
      expect(limited).toBeGreaterThanOrEqual(13);

      // Without an acknowledgement, the answer is a signaling-error.
      (A.socket.emit as unknown as (...a: unknown[]) => void)('hold', { call_id: A.callId });
      expect(await A.next('signaling-error')).toMatchObject({ code: 'RATE_LIMITED', event: 'hold' });

      // Unknown events are messages too: they take from the bucket.
      const unknown = await Promise.all(Array.from({ length: 20 }, () => A.request('no-such-event', {})));
      expect(unknown.filter((r) => r.error?.code === 'RATE_LIMITED').length).toBeGreaterThanOrEqual(17);
      expect(unknown.every((r) => ['RATE_LIMITED', 'UNKNOWN_EVENT'].includes(r.error?.code ?? ''))).toBe(true);

      // The other socket in the room is not limited.
      await B.ok('offer', { sdp: 'v=0 b', call_id: B.callId });
      expect((await A.next('offer')).sdp).toBe('v=0 b');

      // A second later the bucket has refilled.
      await sleep(1000);
      await A.ok('hold', { call_id: A.callId, track: 'video' });
      await A.ok('unhold', { call_id: A.callId });
      expect(A.socket.connected).toBe(true);
    });
  });
});
