import { admin, issueToken } from './helpers/app';
import { useSignalingApp } from './helpers/signaling';

/** The three-party call end to end, over real sockets, with the rows checked in PostgreSQL. */
describe('signaling: a three-party call (PostgreSQL)', () => {
  const app = useSignalingApp('postgres', { ICE_SERVERS: '[{"urls":"stun:127.0.0.1:3478"}]' });
  const client = app.client;

  it('runs join, relay, mute, hold, DTMF, roles, removal and end, and records them', async () => {
    const room = 'three-party';
    const hostToken = await issueToken(app.t, { user_id: 'hana', display_name: 'Hana', room, role: 'host' });
    const modToken = await issueToken(app.t, { user_id: 'mo', room, role: 'moderator' });
    const partToken = await issueToken(app.t, { user_id: 'pia', room });

    // Host authenticates in the handshake; the moderator with the auth message.
    const H = client({ token: hostToken });
    await H.connected();
    const hj = await H.join(room);
    const state = hj.room_state as {
      call_id: string;
      status: string;
      recording: boolean;
      participants: Array<{ user_id: string; display_name: string; role: string }>;
      ice_servers: unknown[];
    };
    expect(state.status).toBe('active');
    expect(state.recording).toBe(false);
    expect(state.participants).toEqual([expect.objectContaining({ user_id: 'hana', display_name: 'Hana', role: 'host', muted_tracks: [], connected: true })]);
    expect(state.ice_servers).toEqual([{ urls: 'stun:127.0.0.1:3478' }]);
    expect(hj.resumed).toBe(false);

    const M = client({});
    await M.connected();
    expect(await M.request('join', { room })).toEqual({ error: expect.objectContaining({ code: 'AUTH_REQUIRED' }) });
    expect(await M.ok('auth', { token: modToken })).toMatchObject({ user_id: 'mo', role: 'moderator', room });
    await M.join(room, 'Mo');
    expect((await H.next('peer-joined')).participant).toMatchObject({ participant_id: M.participantId, user_id: 'mo', display_name: 'Mo', role: 'moderator' });

    const P = client({ token: partToken });
    await P.connected();
    const pj = await P.join(room, 'Pia');
    expect((pj.room_state as { participants: unknown[] }).participants).toHaveLength(3);
    expect((await H.next('peer-joined')).participant.participant_id).toBe(P.participantId);
    expect((await M.next('peer-joined')).participant.participant_id).toBe(P.participantId);
    const callId = H.callId;
    expect(P.callId).toBe(callId);

    // Relay reaches only the target, with `from` added.
    await P.ok('offer', { sdp: 'v=0 offer-from-pia', call_id: callId, to: H.participantId });
    expect(await H.next('offer')).toEqual({ sdp: 'v=0 offer-from-pia', call_id: callId, from: P.participantId });
    await H.ok('answer', { sdp: 'v=0 answer-from-hana', call_id: callId, to: P.participantId });
    expect(await P.next('answer')).toEqual({ sdp: 'v=0 answer-from-hana', call_id: callId, from: H.participantId });
    await P.ok('ice-candidate', { candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0, to: H.participantId });
    expect(await H.next('ice-candidate')).toEqual({
      candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host',
      sdpMid: '0',
      sdpMLineIndex: 0,
      call_id: callId,
      from: P.participantId,
    });
    expect((await P.request('offer', { sdp: 'v=0', call_id: callId })).error?.code).toBe('TARGET_REQUIRED');
    await M.none('offer', 50);
    await M.none('answer', 0);
    await M.none('ice-candidate', 0);

    // Self mute, seen by everyone.
    await P.ok('mute', { call_id: callId, track: 'audio' });
    for (const c of [H, M, P])
      expect(await c.next('mute-changed')).toEqual({
        call_id: callId,
        participant_id: P.participantId,
        track: 'audio',
        muted: true,
        locked: false,
        by: P.participantId,
      });

    // Moderator mute locks the track; the participant cannot unmute it until a host lifts it.
    await M.ok('mute', { call_id: callId, track: 'video', participant_id: P.participantId });
    for (const c of [H, M, P])
      expect(await c.next('mute-changed')).toMatchObject({ participant_id: P.participantId, track: 'video', muted: true, locked: true, by: M.participantId });
    expect((await P.request('unmute', { call_id: callId, track: 'video' })).error?.code).toBe('MUTED_BY_MODERATOR');
    await H.ok('unmute', { call_id: callId, track: 'video', participant_id: P.participantId });
    for (const c of [H, M, P]) expect(await c.next('mute-changed')).toMatchObject({ track: 'video', muted: true, locked: false });
    await P.ok('unmute', { call_id: callId, track: 'video' });
    for (const c of [H, M, P]) expect(await c.next('mute-changed')).toMatchObject({ track: 'video', muted: false, locked: false });

    // A participant may not mute someone else.
    expect((await P.request('mute', { call_id: callId, track: 'audio', participant_id: H.participantId })).error?.code).toBe('FORBIDDEN');
    await H.none('mute-changed', 50);

    // Hold and its inverse.
    expect((await P.ok('hold', { call_id: callId })).held_tracks).toEqual(['audio', 'video', 'screen']);
    for (const c of [H, M, P])
      expect(await c.next('hold-changed')).toEqual({ call_id: callId, participant_id: P.participantId, held_tracks: ['audio', 'video', 'screen'] });
    await P.ok('unhold', { call_id: callId, track: 'audio' });
    for (const c of [H, M, P]) expect((await c.next('hold-changed')).held_tracks).toEqual(['video', 'screen']);

    // DTMF reaches the others.
    await P.ok('dtmf', { call_id: callId, tones: '12#,A*' });
    expect(await H.next('dtmf')).toEqual({ call_id: callId, from: P.participantId, tones: '12#,A*' });
    expect(await M.next('dtmf')).toEqual({ call_id: callId, from: P.participantId, tones: '12#,A*' });
    await P.none('dtmf', 50);

    // Only the host changes roles.
    expect((await M.request('set-role', { call_id: callId, participant_id: P.participantId, role: 'moderator' })).error?.code).toBe('FORBIDDEN');
    await H.ok('set-role', { call_id: callId, participant_id: P.participantId, role: 'moderator' });
    for (const c of [H, M, P])
      expect(await c.next('role-changed')).toEqual({ call_id: callId, participant_id: P.participantId, role: 'moderator', by: H.participantId });
    await H.ok('set-role', { call_id: callId, participant_id: P.participantId, role: 'participant' });
    for (const c of [H, M, P]) await c.next('role-changed');

    // A moderator removes the participant: it is told, disconnected, and cannot come back.
    await M.ok('remove-participant', { call_id: callId, participant_id: P.participantId, reason: 'spam' });
    expect(await P.next('removed')).toEqual({ call_id: callId, reason: 'spam', by: M.participantId });
    expect(await P.next('disconnect')).toBe('io server disconnect');
    expect(await H.next('peer-left')).toEqual({ call_id: callId, participant_id: P.participantId, reason: 'removed' });
    expect(await M.next('peer-left')).toEqual({ call_id: callId, participant_id: P.participantId, reason: 'removed' });
    const P2 = client({ token: partToken });
    await P2.connected();
    expect((await P2.request('join', { room })).error?.code).toBe('REMOVED_FROM_CALL');

    // A participant cannot end the call; the host can, for everyone.
    const P3 = client({ token: await issueToken(app.t, { user_id: 'quinn', room }) });
    await P3.connected();
    await P3.join(room);
    await H.next('peer-joined');
    await M.next('peer-joined');
    expect((await P3.request('end-call', { call_id: callId })).error?.code).toBe('FORBIDDEN');
    await H.ok('end-call', { call_id: callId });
    for (const c of [H, M, P3]) expect(await c.next('call-state-changed')).toEqual({ call_id: callId, room, status: 'ended', recording: false });
    expect((await H.request('offer', { sdp: 'v=0', call_id: callId, to: M.participantId })).error?.code).toBe('NOT_JOINED');

    // The database has it all.
    await app.t.rooms.flushWrites();
    const call = await app.t.db.prisma.call.findUniqueOrThrow({
      where: { id: callId },
      include: { participants: true, events: { orderBy: { createdAt: 'asc' } } },
    });
    expect(call.status).toBe('ended');
    expect(call.startedAt).not.toBeNull();
    expect(call.endedAt).not.toBeNull();
    const rows = Object.fromEntries(call.participants.map((p) => [p.userId, p]));
    expect(Object.keys(rows).sort()).toEqual(['hana', 'mo', 'pia', 'quinn']);
    expect(rows.hana).toMatchObject({ id: H.participantId, role: 'host', displayName: 'Hana', clientIp: '127.0.0.1' });
    expect(rows.mo).toMatchObject({ role: 'moderator', displayName: 'Mo' });
    expect(rows.pia).toMatchObject({ role: 'participant', displayName: 'Pia' });
    expect(call.participants.every((p) => p.leftAt !== null)).toBe(true);
    expect(call.events.map((e) => e.type).sort()).toEqual(['dtmf', 'end', 'mute', 'remove', 'set-role', 'set-role', 'unmute']);
    expect(call.events.at(-1)?.type).toBe('end');
    expect(call.events.find((e) => e.type === 'dtmf')).toMatchObject({ participantId: P.participantId, payload: { tones: '12#,A*' } });
  });

  it('relays without `to` in a two-party call, and tells the other party when one leaves', async () => {
    const room = 'two-party';
    const A = client({ token: await issueToken(app.t, { user_id: 'a', room }) });
    const B = client({ token: await issueToken(app.t, { user_id: 'b', room }) });
    await A.connected();
    await B.connected();
    await A.join(room);
    await B.join(room);
    await A.next('peer-joined');
    await A.ok('offer', { sdp: 'v=0 a', call_id: A.callId });
    expect(await B.next('offer')).toEqual({ sdp: 'v=0 a', call_id: A.callId, from: A.participantId });
    await B.ok('answer', { sdp: 'v=0 b', call_id: B.callId });
    expect((await A.next('answer')).from).toBe(B.participantId);
    await B.ok('leave', { call_id: B.callId });
    expect(await A.next('peer-left')).toEqual({ call_id: A.callId, participant_id: B.participantId, reason: 'left' });
    await app.t.rooms.flushWrites();
    const row = await app.t.db.prisma.participant.findUniqueOrThrow({ where: { id: B.participantId } });
    expect(row.leftAt).not.toBeNull();
  });

  it('ends the room for everyone when the call is ended over REST', async () => {
    const room = 'rest-ended';
    const A = client({ token: await issueToken(app.t, { user_id: 'a', room }) });
    await A.connected();
    await A.join(room);
    const res = await app.t.app.inject({ method: 'POST', url: `/calls/${A.callId}/end`, headers: admin });
    expect(res.statusCode).toBe(200);
    expect(await A.next('call-state-changed')).toMatchObject({ call_id: A.callId, status: 'ended' });
  });

  it('answers server-time with the server clock, to authenticated connections only', async () => {
    const anon = client({});
    await anon.connected();
    expect(await anon.request('server-time', {})).toEqual({ error: expect.objectContaining({ code: 'AUTH_REQUIRED' }) });
    const A = client({ token: await issueToken(app.t, { user_id: 'pinger' }) });
    await A.connected();
    const before = Date.now();
    const pong = await A.ok('server-time', {});
    expect(pong.server_time).toBeGreaterThanOrEqual(before - 1000);
    expect(pong.server_time).toBeLessThanOrEqual(Date.now() + 1000);
    expect(await A.request('server-time', { extra: 1 })).toEqual({ error: expect.objectContaining({ code: 'VALIDATION_FAILED' }) });
  });
});
