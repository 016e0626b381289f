import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { issueToken } from './helpers/app';
import { ALL_EVENTS, BIG_SDP, EVENTS_WITH_CALL_ID, NONE, ROOM, cases, emitNoAck, request, validPayload, type Ctx } from './helpers/badInputCases';
import { signHs256, signRs256, unsigned } from './helpers/jwt';
import { useSignalingApp, type Client } from './helpers/signaling';
import { sleep } from './helpers/wait';

/**
 * The bad-input battery: every malformed or unauthorised message is answered
 * with its documented code, and nobody else in the room notices. Real sockets,
 * PostgreSQL backend.
 *
 * Cast: H, the bystander (the room's host); V, the victim sending bad input (a
 * participant); M, a moderator also sending bad input (the moderation limits).
 */
describe('signaling: bad input (PostgreSQL)', () => {
  // The battery sends a few hundred messages from one socket within a second or two.
  const app = useSignalingApp('postgres', { SOCKET_RATE_LIMIT_BURST: '100000' });
  const client = app.client;
  let H: Client;
  let V: Client;
  let M: Client;
  let ctx: Ctx;
  /** Every event the bystander receives once the battery starts. */
  const bystanderSaw: Array<[string, unknown]> = [];
  const victimsSaw: Array<[string, string, unknown]> = [];

  beforeAll(async () => {
    H = client({ token: await issueToken(app.t, { user_id: 'hana', room: ROOM, role: 'host' }) });
    V = client({ token: await issueToken(app.t, { user_id: 'victor', room: ROOM }) });
    M = client({ token: await issueToken(app.t, { user_id: 'mo', room: ROOM, role: 'moderator' }) });
    await Promise.all([H.connected(), V.connected(), M.connected()]);
    await H.join(ROOM);
    await V.join(ROOM);
    await H.next('peer-joined');
    await M.join(ROOM);
    await H.next('peer-joined');
    await V.next('peer-joined');
    ctx = {
      call: H.callId,
      H: H.participantId,
      V: V.participantId,
      M: M.participantId,
      otherUserToken: await issueToken(app.t, { user_id: 'mallory', room: ROOM, role: 'host' }),
      expiredToken: signRs256(
        { kid: app.t.keys.kid },
        {
          sub: 'victor',
          room: ROOM,
          role: 'participant',
          iat: 1000,
          exp: 2000,
          jti: randomUUID(),
          iss: app.t.config.jwt.issuer,
          aud: app.t.config.jwt.audience,
        },
        app.t.keys.privateKeyPem,
      ),
    };
    H.socket.onAny((event: string, payload: unknown) => bystanderSaw.push([event, payload]));
    V.socket.onAny((event: string, payload: unknown) => victimsSaw.push(['V', event, payload]));
    M.socket.onAny((event: string, payload: unknown) => victimsSaw.push(['M', event, payload]));
  });

  describe('answered in the acknowledgement', () => {
    const table = cases(64 * 1024);
    it('the table covers every client event', () => {
      const events = new Set(table.map((c) => c[3]));
      for (const e of ALL_EVENTS) expect(events).toContain(e);
      expect(app.t.config.signaling.maxSdpBytes).toBe(64 * 1024);
    });
    it.each(table)('%s (sent by %s) → %s', async (_name, who, code, event, payload) => {
      const sender = who === 'V' ? V : M;
      const res = await request(sender, event, payload(ctx));
      expect(res).toEqual({ error: { code, message: expect.any(String) } });
      expect(res.error!.message.length).toBeLessThan(300);
    });
  });

  describe('answered with a signaling-error event when there is no acknowledgement', () => {
    const noAck: Array<[string, string, string, (c: Ctx) => unknown]> = [
      ['an unknown event', 'no-such-event', 'UNKNOWN_EVENT', () => ({})],
      ['an unknown event without a payload', 'ping', 'UNKNOWN_EVENT', () => NONE],
      ['an offer without a payload', 'offer', 'VALIDATION_FAILED', () => NONE],
      ['a join with a string payload', 'join', 'VALIDATION_FAILED', () => ROOM],
      ['an offer with an unknown field', 'offer', 'VALIDATION_FAILED', (c) => ({ ...validPayload('offer', c), extra: 1 })],
      ['an offer SDP over MAX_SDP_BYTES', 'offer', 'PAYLOAD_TOO_LARGE', (c) => ({ sdp: BIG_SDP(64 * 1024), call_id: c.call, to: c.H })],
      ['a mute of another call', 'mute', 'CALL_ID_MISMATCH', (_c) => ({ call_id: randomUUID(), track: 'audio' })],
      ['an answer to nobody', 'answer', 'PARTICIPANT_NOT_FOUND', (c) => ({ sdp: 'v=0', call_id: c.call, to: randomUUID() })],
      ['an ice-candidate to oneself', 'ice-candidate', 'CANNOT_TARGET_SELF', (c) => ({ candidate: 'c', call_id: c.call, to: c.V })],
      ['a participant ending the call', 'end-call', 'FORBIDDEN', (c) => ({ call_id: c.call })],
      ['a participant removing the host', 'remove-participant', 'FORBIDDEN', (c) => ({ call_id: c.call, participant_id: c.H })],
      ['invalid DTMF', 'dtmf', 'INVALID_DTMF', (c) => ({ call_id: c.call, tones: 'xyz' })],
      ['auth with a garbage token', 'auth', 'TOKEN_MALFORMED', () => ({ token: 'garbage' })],
      ['auth as another user', 'auth', 'ALREADY_AUTHENTICATED', (c) => ({ token: c.otherUserToken })],
      ['join again', 'join', 'ALREADY_JOINED', () => ({ room: ROOM })],
    ];
    it.each(noAck)('%s (%s) → %s', async (_name, event, code, payload) => {
      emitNoAck(V, event, payload(ctx));
      expect(await V.next('signaling-error')).toEqual({ code, message: expect.any(String), event });
    });

    it('names an oversized unknown event by at most 80 characters', async () => {
      emitNoAck(V, 'y'.repeat(5000), {});
      const e = await V.next('signaling-error');
      expect(e).toEqual({ code: 'UNKNOWN_EVENT', message: expect.any(String), event: 'y'.repeat(80) });
      expect(e.message.length).toBeLessThan(200);
    });

    it('answers a numeric event name (valid in the Socket.IO protocol) with UNKNOWN_EVENT', async () => {
      const N = client({ token: await issueToken(app.t, { user_id: 'numeric' }) });
      await N.connected();
      (N.socket.io.engine as unknown as { write(m: string): void }).write('2[123,{"a":1}]');
      expect(await N.next('signaling-error')).toEqual({ code: 'UNKNOWN_EVENT', message: expect.any(String), event: '123' });
      expect(N.socket.connected).toBe(true);
      expect(await N.request('hold', { call_id: ctx.call })).toEqual({ error: expect.objectContaining({ code: 'NOT_JOINED' }) });
      N.close();
    });
  });

  describe('on other connections', () => {
    it.each(ALL_EVENTS.filter((e) => e !== 'auth'))('%s before authenticating → AUTH_REQUIRED', async (event) => {
      const U = client();
      await U.connected();
      expect((await U.request(event, validPayload(event, ctx))).error?.code).toBe('AUTH_REQUIRED');
      // Before validation, too: nothing about the payload is revealed.
      expect((await U.request(event, 'garbage')).error?.code).toBe('AUTH_REQUIRED');
      emitNoAck(U, event, validPayload(event, ctx));
      expect(await U.next('signaling-error')).toMatchObject({ code: 'AUTH_REQUIRED', event });
      U.close();
    });

    it.each(EVENTS_WITH_CALL_ID)('%s before joining (with the right call_id) → NOT_JOINED', async (event) => {
      const O = client({ token: await issueToken(app.t, { user_id: `outsider-${event}`, room: ROOM, role: 'host' }) });
      await O.connected();
      expect((await O.request(event, validPayload(event, ctx))).error?.code).toBe('NOT_JOINED');
      O.close();
    });

    it('joins of two rooms at once from one socket → one joins, the other ALREADY_JOINED', async () => {
      const J = client({ token: await issueToken(app.t, { user_id: 'juggler' }) });
      await J.connected();
      const results = await Promise.all([J.request('join', { room: 'juggle-1' }), J.request('join', { room: 'juggle-2' })]);
      const codes = results.map((r) => (r.ok ? 'ok' : r.error!.code)).sort();
      expect(codes).toEqual(['ALREADY_JOINED', 'ok']);
      // Only that room holds it: the other room is not left with a participant that never leaves.
      const joinedRoom = (results.find((r) => r.ok)!.room_state as { room: string }).room;
      const otherRoom = joinedRoom === 'juggle-1' ? 'juggle-2' : 'juggle-1';
      const W = client({ token: await issueToken(app.t, { user_id: 'watcher' }) });
      await W.connected();
      expect(((await W.join(otherRoom)).room_state as { participants: Array<{ user_id: string }> }).participants.map((p) => p.user_id)).toEqual(['watcher']);
      // The same room twice at once: one participant, not a second "resumed" join.
      const K = client({ token: await issueToken(app.t, { user_id: 'twice' }) });
      await K.connected();
      const twice = await Promise.all([K.request('join', { room: 'juggle-3' }), K.request('join', { room: 'juggle-3' })]);
      expect(twice.map((r) => (r.ok ? 'ok' : r.error!.code)).sort()).toEqual(['ALREADY_JOINED', 'ok']);
      J.close();
      K.close();
      W.close();
    });

    it("join outside the token's room scope → ROOM_SCOPE_MISMATCH", async () => {
      const S = client({ token: await issueToken(app.t, { user_id: 'scoped', room: 'some-other-room' }) });
      await S.connected();
      expect((await S.request('join', { room: ROOM })).error?.code).toBe('ROOM_SCOPE_MISMATCH');
      S.close();
    });

    it('auth with a garbage token on an unauthenticated socket → TOKEN_MALFORMED, and it stays unauthenticated', async () => {
      const U = client();
      await U.connected();
      expect((await U.request('auth', { token: 'garbage' })).error?.code).toBe('TOKEN_MALFORMED');
      expect((await U.request('join', { room: ROOM })).error?.code).toBe('AUTH_REQUIRED');
      U.close();
    });

    const claims = (over: Record<string, unknown> = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return {
        sub: 'eve',
        room: ROOM,
        role: 'host',
        iat: now,
        exp: now + 600,
        jti: randomUUID(),
        iss: app.t.config.jwt.issuer,
        aud: app.t.config.jwt.audience,
        ...over,
      };
    };
    const handshakes: Array<[string, string, () => unknown]> = [
      ['an expired token', 'TOKEN_EXPIRED', () => signRs256({ kid: app.t.keys.kid }, claims({ iat: 1000, exp: 2000 }), app.t.keys.privateKeyPem)],
      [
        'a token signed by another key',
        'TOKEN_INVALID_SIGNATURE',
        () => signRs256({}, claims(), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
      ],
      ['an HS256 token signed with the public key', 'TOKEN_ALGORITHM_NOT_ALLOWED', () => signHs256(claims(), app.t.keys.publicKeyPem)],
      ['an unsigned (alg none) token', 'TOKEN_ALGORITHM_NOT_ALLOWED', () => unsigned(claims())],
      ['a token of another issuer', 'TOKEN_CLAIM_INVALID', () => signRs256({ kid: app.t.keys.kid }, claims({ iss: 'elsewhere' }), app.t.keys.privateKeyPem)],
      ['a garbage token', 'TOKEN_MALFORMED', () => 'garbage'],
      ['an empty token', 'TOKEN_MALFORMED', () => ''],
      ['a numeric token', 'TOKEN_MALFORMED', () => 42],
      ['an object token', 'TOKEN_MALFORMED', () => ({ sub: 'eve' })],
    ];
    it.each(handshakes)('a handshake with %s → connect_error %s', async (_name, code, make) => {
      const c = client({ auth: { token: make() } });
      const err = await c.next<Error & { data?: { code: string; message: string } }>('connect_error');
      expect(err.data).toEqual({ code, message: expect.any(String) });
      expect(c.socket.connected).toBe(false);
    });
  });

  it('leaves the bystander untouched, the server up, and the room working', async () => {
    await sleep(100);
    expect(bystanderSaw).toEqual([]);
    // The victims saw nothing but their own errors (signaling-errors were all taken above).
    expect(victimsSaw.filter(([, event]) => event !== 'signaling-error')).toEqual([]);
    expect(V.pending('signaling-error')).toEqual([]);
    expect(M.pending('signaling-error')).toEqual([]);
    for (const c of [H, V, M]) expect(c.socket.connected).toBe(true);

    const health = await fetch(`${app.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    // The SDP limit is inclusive: exactly MAX_SDP_BYTES is relayed.
    const sdp = 'v'.repeat(app.t.config.signaling.maxSdpBytes);
    await V.ok('offer', { sdp, call_id: ctx.call, to: ctx.H });
    expect(await H.next('offer')).toEqual({ sdp, call_id: ctx.call, from: ctx.V });
    await H.ok('answer', { sdp: 'v=0 answer', call_id: ctx.call, to: ctx.V });
    expect(await V.next('answer')).toEqual({ sdp: 'v=0 answer', call_id: ctx.call, from: ctx.H });

    // Nobody's state changed: the room is still the three of them, unmuted, with their roles.
    const E = client({ token: await issueToken(app.t, { user_id: 'eve', room: ROOM }) });
    await E.connected();
    const state = (await E.join(ROOM)).room_state as { call_id: string; status: string; participants: Array<Record<string, unknown>> };
    expect(state.call_id).toBe(ctx.call);
    expect(state.status).toBe('active');
    expect(state.participants.map((p) => [p.user_id, p.role, p.muted_tracks, p.locked_tracks, p.held_tracks, p.connected])).toEqual([
      ['hana', 'host', [], [], [], true],
      ['victor', 'participant', [], [], [], true],
      ['mo', 'moderator', [], [], [], true],
      ['eve', 'participant', [], [], [], true],
    ]);
    expect((await H.next('peer-joined')).participant.user_id).toBe('eve');
    bystanderSaw.length = 0;
    E.close();
  });

  it('refuses capabilities nested 20000 deep (they would break every room_state of the room)', async () => {
    const D = client({ token: await issueToken(app.t, { user_id: 'deep', room: ROOM }) });
    await D.connected();
    // socket.io-client's encoder cannot even send this (it recurses), so the packet is written raw.
    const deep = `${'['.repeat(20000)}${']'.repeat(20000)}`;
    (D.socket.io.engine as unknown as { write(m: string): void }).write(`2["join",{"room":"${ROOM}","capabilities":{"x":${deep}}}]`);
    expect(await D.next('signaling-error')).toMatchObject({ code: 'VALIDATION_FAILED', event: 'join' });
    await D.none('joined', 50);
    expect(bystanderSaw).toEqual([]);
    // Nesting up to the limit is fine, and the room still admits people.
    const nested = { codecs: [{ mime: 'audio/opus', params: { fec: [true, { x: 1 }] } }] };
    const res = await D.ok('join', { room: ROOM, capabilities: nested });
    expect(
      (res.room_state as { participants: Array<{ user_id: string; capabilities: unknown }> }).participants.find((p) => p.user_id === 'deep')?.capabilities,
    ).toEqual(nested);
    expect((await H.next('peer-joined')).participant.capabilities).toEqual(nested);
    await D.ok('leave', {});
    expect((await H.next('peer-left')).reason).toBe('left');
    bystanderSaw.length = 0;
  });

  it('a message over MAX_MESSAGE_BYTES closes only that connection', async () => {
    const O = client({ token: await issueToken(app.t, { user_id: 'oscar', room: ROOM }) });
    await O.connected();
    await O.join(ROOM);
    expect((await H.next('peer-joined')).participant.participant_id).toBe(O.participantId);
    bystanderSaw.length = 0;

    const big = 'v'.repeat(app.t.config.signaling.maxMessageBytes + 1024);
    emitNoAck(O, 'offer', { sdp: big, call_id: ctx.call, to: ctx.H });
    const reason = await O.next('disconnect');
    // engine.io (ws maxPayload) closes the transport; the server sends no error.
    expect(reason).toBe('transport close');
    expect(O.pending('signaling-error')).toEqual([]);

    await sleep(100);
    expect(bystanderSaw).toEqual([]); // within the reconnection grace period, not even a peer-left
    expect(H.socket.connected).toBe(true);
    expect((await fetch(`${app.url}/health`)).status).toBe(200);
    await V.ok('offer', { sdp: 'v=0 after', call_id: ctx.call, to: ctx.H });
    expect((await H.next('offer')).sdp).toBe('v=0 after');
    bystanderSaw.length = 0;
  });

  it('a malformed Socket.IO packet closes only that connection', async () => {
    const O = client({ token: await issueToken(app.t, { user_id: 'parse-error' }) });
    await O.connected();
    (O.socket.io.engine as unknown as { write(m: string): void }).write('2["offer",{"sdp":');
    expect(await O.next('disconnect')).toBe('transport close');
    expect(H.socket.connected).toBe(true);
    expect((await fetch(`${app.url}/health`)).status).toBe(200);
    await V.ok('offer', { sdp: 'v=0 again', call_id: ctx.call, to: ctx.H });
    expect((await H.next('offer')).sdp).toBe('v=0 again');
    await sleep(50);
    expect(bystanderSaw.filter(([event]) => event !== 'offer')).toEqual([]);
  });
});
