import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { issueToken, startTestApp, type TestApp } from './helpers/app';
import { signHs256, signRs256, unsigned } from './helpers/jwt';
import { Client, listen, type AnyAck } from './helpers/signaling';
import { sleep } from './helpers/wait';

/**
 * The bad-input battery: every malformed or unauthorised message is answered
 * with its documented code, and nobody else in the room notices. Real sockets,
 * PostgreSQL backend.
 *
 * Cast: H, the bystander (the room's host); V, the victim sending bad input (a
 * participant); M, a moderator also sending bad input (the moderation limits).
 */
const ROOM = 'bad-input';
const NONE = Symbol('no payload');

interface Ctx {
  call: string;
  H: string;
  V: string;
  M: string;
  otherUserToken: string;
  expiredToken: string;
}
type Who = 'V' | 'M';
type Case = [name: string, who: Who, code: string, event: string, payload: (c: Ctx) => unknown];

/** Sends without an acknowledgement callback (the server must answer with a signaling-error event). */
function emitNoAck(c: Client, event: string, payload: unknown): void {
  const emit = c.socket.emit as unknown as (...a: unknown[]) => void;
  if (payload === NONE) emit.call(c.socket, event);
  else emit.call(c.socket, event, payload);
}

function request(c: Client, event: string, payload: unknown): Promise<AnyAck> {
  return payload === NONE ? c.request(event) : c.request(event, payload);
}

const EVENTS_WITH_CALL_ID = [
  'offer',
  'answer',
  'ice-candidate',
  'mute',
  'unmute',
  'hold',
  'unhold',
  'dtmf',
  'remove-participant',
  'end-call',
  'set-role',
  'leave',
] as const;

/** A payload of `event` that is valid in shape (for the given context). */
function validPayload(event: string, c: Ctx): Record<string, unknown> {
  switch (event) {
    case 'auth':
      return { token: c.otherUserToken };
    case 'join':
      return { room: ROOM };
    case 'leave':
      return { call_id: c.call };
    case 'offer':
    case 'answer':
      return { sdp: 'v=0', call_id: c.call, to: c.H };
    case 'ice-candidate':
      return { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0, call_id: c.call, to: c.H };
    case 'mute':
    case 'unmute':
      return { call_id: c.call, track: 'audio' };
    case 'hold':
    case 'unhold':
      return { call_id: c.call, track: 'video' };
    case 'dtmf':
      return { call_id: c.call, tones: '1' };
    case 'remove-participant':
      return { call_id: c.call, participant_id: c.H };
    case 'end-call':
      return { call_id: c.call };
    case 'set-role':
      return { call_id: c.call, participant_id: c.H, role: 'participant' };
    default:
      throw new Error(event);
  }
}

const ALL_EVENTS = [
  'auth',
  'join',
  'leave',
  'offer',
  'answer',
  'ice-candidate',
  'mute',
  'unmute',
  'hold',
  'unhold',
  'dtmf',
  'remove-participant',
  'end-call',
  'set-role',
];
const NON_OBJECTS: Array<[string, unknown]> = [
  ['no payload', NONE],
  ['null', null],
  ['a string', 'offer'],
  ['a number', 42],
  ['a boolean', true],
  ['an array', []],
];
const BIG_SDP = (max: number) => 'v'.repeat(max + 1);

function cases(maxSdp: number): Case[] {
  const out: Case[] = [];
  const add = (name: string, who: Who, event: string, payload: (c: Ctx) => unknown, code: string) => out.push([name, who, code, event, payload]);

  // Unknown events.
  add('an unknown event', 'V', 'no-such-event', () => ({}), 'UNKNOWN_EVENT');
  add('an event name in the wrong case', 'V', 'OFFER', (c) => validPayload('offer', c), 'UNKNOWN_EVENT');
  add('an event name with a trailing space', 'V', 'join ', () => ({ room: ROOM }), 'UNKNOWN_EVENT');
  add('an event named __proto__', 'V', '__proto__', () => ({}), 'UNKNOWN_EVENT');
  add('an event named constructor', 'V', 'constructor', () => ({}), 'UNKNOWN_EVENT');
  add('an event named hasOwnProperty', 'V', 'hasOwnProperty', () => ({}), 'UNKNOWN_EVENT');
  add('a 2000-character event name', 'V', 'x'.repeat(2000), () => ({}), 'UNKNOWN_EVENT');
  add('an unknown event without a payload', 'V', 'ping', () => NONE, 'UNKNOWN_EVENT');

  // Non-object payloads, for every event.
  for (const event of ALL_EVENTS) {
    for (const [what, value] of NON_OBJECTS) add(`${event} with ${what}`, 'V', event, () => value, 'VALIDATION_FAILED');
  }

  // Missing required fields.
  const missing: Array<[string, (c: Ctx) => unknown]> = [
    ['auth', () => ({})],
    ['join', () => ({})],
    ['join', () => ({ display_name: 'V' })],
    ['offer', (c) => ({ call_id: c.call, to: c.H })],
    ['offer', (c) => ({ sdp: 'v=0', to: c.H })],
    ['answer', (c) => ({ call_id: c.call, to: c.H })],
    ['answer', (c) => ({ sdp: 'v=0', to: c.H })],
    ['ice-candidate', (c) => ({ call_id: c.call, to: c.H })],
    ['mute', (c) => ({ call_id: c.call })],
    ['mute', () => ({ track: 'audio' })],
    ['unmute', (c) => ({ call_id: c.call })],
    ['unmute', () => ({ track: 'audio' })],
    ['hold', () => ({})],
    ['hold', () => ({ track: 'audio' })],
    ['unhold', () => ({})],
    ['dtmf', (c) => ({ call_id: c.call })],
    ['dtmf', () => ({ tones: '1' })],
    ['remove-participant', (c) => ({ call_id: c.call })],
    ['remove-participant', (c) => ({ participant_id: c.H })],
    ['end-call', () => ({})],
    ['set-role', (c) => ({ call_id: c.call, participant_id: c.H })],
    ['set-role', (c) => ({ call_id: c.call, role: 'host' })],
    ['set-role', (c) => ({ participant_id: c.H, role: 'host' })],
  ];
  missing.forEach(([event, p], i) => add(`${event} missing a required field (#${i})`, 'V', event, p, 'VALIDATION_FAILED'));

  // Wrong types and values.
  const wrong: Array<[string, string, (c: Ctx) => unknown]> = [
    ['auth', 'a numeric token', () => ({ token: 123 })],
    ['auth', 'an empty token', () => ({ token: '' })],
    ['auth', 'a 9000-character token', () => ({ token: 'x'.repeat(9000) })],
    ['join', 'a numeric room', () => ({ room: 7 })],
    ['join', 'a room with a path', () => ({ room: '../etc/passwd' })],
    ['join', 'an empty room', () => ({ room: '' })],
    ['join', 'an empty display_name', () => ({ room: ROOM, display_name: '' })],
    ['join', 'a numeric display_name', () => ({ room: ROOM, display_name: 5 })],
    ['join', 'capabilities that are an array', () => ({ room: ROOM, capabilities: [] })],
    ['join', 'capabilities nested 7 deep', () => ({ room: ROOM, capabilities: { x: [[[[[[['deep']]]]]]] } })],
    ['join', 'capabilities with 33 keys', () => ({ room: ROOM, capabilities: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])) })],
    ['leave', 'an empty call_id', () => ({ call_id: '' })],
    ['leave', 'a numeric call_id', () => ({ call_id: 1 })],
    ['offer', 'a numeric sdp', (c) => ({ sdp: 1, call_id: c.call, to: c.H })],
    ['offer', 'an empty sdp', (c) => ({ sdp: '', call_id: c.call, to: c.H })],
    ['offer', 'an object call_id', (c) => ({ sdp: 'v=0', call_id: { id: c.call }, to: c.H })],
    ['offer', 'a 65-character call_id', (c) => ({ sdp: 'v=0', call_id: 'c'.repeat(65), to: c.H })],
    ['offer', 'a null to', (c) => ({ sdp: 'v=0', call_id: c.call, to: null })],
    ['offer', 'an array to', (c) => ({ sdp: 'v=0', call_id: c.call, to: [c.H] })],
    ['answer', 'a boolean sdp', (c) => ({ sdp: true, call_id: c.call, to: c.H })],
    ['ice-candidate', 'a numeric candidate', (c) => ({ candidate: 1, call_id: c.call, to: c.H })],
    ['ice-candidate', 'a 2049-character candidate', (c) => ({ candidate: 'c'.repeat(2049), call_id: c.call, to: c.H })],
    ['ice-candidate', 'a negative sdpMLineIndex', (c) => ({ candidate: 'c', sdpMLineIndex: -1, call_id: c.call, to: c.H })],
    ['ice-candidate', 'a fractional sdpMLineIndex', (c) => ({ candidate: 'c', sdpMLineIndex: 0.5, call_id: c.call, to: c.H })],
    ['ice-candidate', 'a string sdpMLineIndex', (c) => ({ candidate: 'c', sdpMLineIndex: '0', call_id: c.call, to: c.H })],
    ['ice-candidate', 'a numeric sdpMid', (c) => ({ candidate: 'c', sdpMid: 0, call_id: c.call, to: c.H })],
    ['mute', 'an unknown track', (c) => ({ call_id: c.call, track: 'microphone' })],
    ['mute', 'a track in capitals', (c) => ({ call_id: c.call, track: 'AUDIO' })],
    ['unmute', 'an array of tracks', (c) => ({ call_id: c.call, track: ['audio'] })],
    ['mute', 'a numeric participant_id', (c) => ({ call_id: c.call, track: 'audio', participant_id: 1 })],
    ['hold', 'an unknown track', (c) => ({ call_id: c.call, track: 'all' })],
    ['unhold', 'a null track', (c) => ({ call_id: c.call, track: null })],
    ['dtmf', 'numeric tones', (c) => ({ call_id: c.call, tones: 123 })],
    ['dtmf', '1001 tones (over the schema limit)', (c) => ({ call_id: c.call, tones: '1'.repeat(1001) })],
    ['remove-participant', 'a numeric reason', (c) => ({ call_id: c.call, participant_id: c.H, reason: 1 })],
    ['remove-participant', 'a 201-character reason', (c) => ({ call_id: c.call, participant_id: c.H, reason: 'r'.repeat(201) })],
    ['end-call', 'a numeric call_id', () => ({ call_id: 1 })],
    ['set-role', 'an unknown role', (c) => ({ call_id: c.call, participant_id: c.H, role: 'admin' })],
    ['set-role', 'a role in capitals', (c) => ({ call_id: c.call, participant_id: c.H, role: 'Host' })],
  ];
  for (const [event, what, p] of wrong) add(`${event} with ${what}`, 'V', event, p, 'VALIDATION_FAILED');

  // Unknown extra fields, on otherwise valid payloads (had they been accepted, they would have had an effect).
  for (const event of ALL_EVENTS)
    add(`${event} with an unknown extra field`, 'V', event, (c) => ({ ...validPayload(event, c), extra: true }), 'VALIDATION_FAILED');
  add(
    'offer with an own __proto__ field',
    'V',
    'offer',
    (c) => Object.assign(JSON.parse('{"__proto__":{"polluted":true}}'), validPayload('offer', c)),
    'VALIDATION_FAILED',
  );
  add('mute with an own constructor field', 'V', 'mute', (c) => ({ ...validPayload('mute', c), constructor: 'x' }), 'VALIDATION_FAILED');

  // SDP over MAX_SDP_BYTES.
  add('an offer SDP over MAX_SDP_BYTES', 'V', 'offer', (c) => ({ sdp: BIG_SDP(maxSdp), call_id: c.call, to: c.H }), 'PAYLOAD_TOO_LARGE');
  add('an answer SDP over MAX_SDP_BYTES', 'V', 'answer', (c) => ({ sdp: BIG_SDP(maxSdp), call_id: c.call, to: c.H }), 'PAYLOAD_TOO_LARGE');

  // Another call's id.
  for (const event of EVENTS_WITH_CALL_ID) {
    add(`${event} with another call's id`, 'V', event, (c) => ({ ...validPayload(event, c), call_id: randomUUID() }), 'CALL_ID_MISMATCH');
  }

  // Targets.
  for (const event of ['offer', 'answer', 'ice-candidate']) {
    add(`${event} to an unknown participant`, 'V', event, (c) => ({ ...validPayload(event, c), to: randomUUID() }), 'PARTICIPANT_NOT_FOUND');
    add(`${event} to oneself`, 'V', event, (c) => ({ ...validPayload(event, c), to: c.V }), 'CANNOT_TARGET_SELF');
  }
  add('an offer without `to` in a three-party call', 'V', 'offer', (c) => ({ sdp: 'v=0', call_id: c.call }), 'TARGET_REQUIRED');
  add(
    'a moderator muting an unknown participant',
    'M',
    'mute',
    (c) => ({ call_id: c.call, track: 'audio', participant_id: randomUUID() }),
    'PARTICIPANT_NOT_FOUND',
  );
  add(
    'a moderator removing an unknown participant',
    'M',
    'remove-participant',
    (c) => ({ call_id: c.call, participant_id: randomUUID() }),
    'PARTICIPANT_NOT_FOUND',
  );

  // Permissions.
  add('a participant ending the call', 'V', 'end-call', (c) => ({ call_id: c.call }), 'FORBIDDEN');
  add('a participant removing the host', 'V', 'remove-participant', (c) => ({ call_id: c.call, participant_id: c.H }), 'FORBIDDEN');
  add('a participant removing a moderator', 'V', 'remove-participant', (c) => ({ call_id: c.call, participant_id: c.M }), 'FORBIDDEN');
  add('a participant making the host a participant', 'V', 'set-role', (c) => ({ call_id: c.call, participant_id: c.H, role: 'participant' }), 'FORBIDDEN');
  add('a participant making a moderator a host', 'V', 'set-role', (c) => ({ call_id: c.call, participant_id: c.M, role: 'host' }), 'FORBIDDEN');
  add('a participant muting the host', 'V', 'mute', (c) => ({ call_id: c.call, track: 'audio', participant_id: c.H }), 'FORBIDDEN');
  add('a participant unmuting a moderator', 'V', 'unmute', (c) => ({ call_id: c.call, track: 'video', participant_id: c.M }), 'FORBIDDEN');
  add('a moderator muting the host', 'M', 'mute', (c) => ({ call_id: c.call, track: 'audio', participant_id: c.H }), 'FORBIDDEN');
  add('a moderator unmuting the host', 'M', 'unmute', (c) => ({ call_id: c.call, track: 'audio', participant_id: c.H }), 'FORBIDDEN');
  add('a moderator removing the host', 'M', 'remove-participant', (c) => ({ call_id: c.call, participant_id: c.H }), 'FORBIDDEN');
  add('a moderator changing a role', 'M', 'set-role', (c) => ({ call_id: c.call, participant_id: c.V, role: 'moderator' }), 'FORBIDDEN');
  add('a participant setting its own role', 'V', 'set-role', (c) => ({ call_id: c.call, participant_id: c.V, role: 'host' }), 'CANNOT_TARGET_SELF');
  add('a moderator setting its own role', 'M', 'set-role', (c) => ({ call_id: c.call, participant_id: c.M, role: 'host' }), 'CANNOT_TARGET_SELF');
  add('a moderator removing itself', 'M', 'remove-participant', (c) => ({ call_id: c.call, participant_id: c.M }), 'CANNOT_TARGET_SELF');

  // DTMF.
  for (const [what, tones] of [
    ['a letter outside A-D', '12E'],
    ['lower-case letters', 'abc'],
    ['101 tones', '1'.repeat(101)],
    ['an empty string', ''],
    ['a space', '1 2'],
    ['a newline', '1\n2'],
    ['a non-ASCII digit', '\u0661'],
    ['an emoji', '1\u{1F600}'],
  ] as const) {
    add(`DTMF with ${what}`, 'V', 'dtmf', (c) => ({ call_id: c.call, tones }), 'INVALID_DTMF');
  }

  // Authentication on an authenticated (and joined) socket.
  add('auth with a garbage token', 'V', 'auth', () => ({ token: 'garbage' }), 'TOKEN_MALFORMED');
  add('auth with a token of three dots', 'V', 'auth', () => ({ token: 'a.b.c' }), 'TOKEN_MALFORMED');
  add('auth with an expired token', 'V', 'auth', (c) => ({ token: c.expiredToken }), 'TOKEN_EXPIRED');
  add('auth as another user', 'V', 'auth', (c) => ({ token: c.otherUserToken }), 'ALREADY_AUTHENTICATED');

  // Joining again.
  add('join of the same room again', 'V', 'join', () => ({ room: ROOM }), 'ALREADY_JOINED');
  add('join of another room while joined', 'V', 'join', () => ({ room: 'elsewhere' }), 'ALREADY_JOINED');
  add('a moderator joining again', 'M', 'join', () => ({ room: ROOM, display_name: 'again' }), 'ALREADY_JOINED');
  return out;
}

describe('signaling: bad input (PostgreSQL)', () => {
  let t: TestApp;
  let url: string;
  let H: Client;
  let V: Client;
  let M: Client;
  let ctx: Ctx;
  const clients: Client[] = [];
  const client = (opts: ConstructorParameters<typeof Client>[1] = {}) => {
    const c = new Client(url, opts);
    clients.push(c);
    return c;
  };
  /** Every event the bystander receives once the battery starts. */
  const bystanderSaw: Array<[string, unknown]> = [];
  const victimsSaw: Array<[string, string, unknown]> = [];

  beforeAll(async () => {
    // The battery sends a few hundred messages from one socket within a second or two.
    t = await startTestApp('postgres', { SOCKET_RATE_LIMIT_BURST: '100000' });
    url = await listen(t);
    H = client({ token: await issueToken(t, { user_id: 'hana', room: ROOM, role: 'host' }) });
    V = client({ token: await issueToken(t, { user_id: 'victor', room: ROOM }) });
    M = client({ token: await issueToken(t, { user_id: 'mo', room: ROOM, role: 'moderator' }) });
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
      otherUserToken: await issueToken(t, { user_id: 'mallory', room: ROOM, role: 'host' }),
      expiredToken: signRs256(
        { kid: t.keys.kid },
        { sub: 'victor', room: ROOM, role: 'participant', iat: 1000, exp: 2000, jti: randomUUID(), iss: t.config.jwt.issuer, aud: t.config.jwt.audience },
        t.keys.privateKeyPem,
      ),
    };
    H.socket.onAny((event: string, payload: unknown) => bystanderSaw.push([event, payload]));
    V.socket.onAny((event: string, payload: unknown) => victimsSaw.push(['V', event, payload]));
    M.socket.onAny((event: string, payload: unknown) => victimsSaw.push(['M', event, payload]));
  });
  afterAll(async () => {
    clients.forEach((c) => c.close());
    await t.close();
  });

  describe('answered in the acknowledgement', () => {
    const table = cases(64 * 1024);
    it('the table covers every client event', () => {
      const events = new Set(table.map((c) => c[3]));
      for (const e of ALL_EVENTS) expect(events).toContain(e);
      expect(t.config.signaling.maxSdpBytes).toBe(64 * 1024);
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
      const N = client({ token: await issueToken(t, { user_id: 'numeric' }) });
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
      const O = client({ token: await issueToken(t, { user_id: `outsider-${event}`, room: ROOM, role: 'host' }) });
      await O.connected();
      expect((await O.request(event, validPayload(event, ctx))).error?.code).toBe('NOT_JOINED');
      O.close();
    });

    it('joins of two rooms at once from one socket → one joins, the other ALREADY_JOINED', async () => {
      const J = client({ token: await issueToken(t, { user_id: 'juggler' }) });
      await J.connected();
      const results = await Promise.all([J.request('join', { room: 'juggle-1' }), J.request('join', { room: 'juggle-2' })]);
      const codes = results.map((r) => (r.ok ? 'ok' : r.error!.code)).sort();
      expect(codes).toEqual(['ALREADY_JOINED', 'ok']);
      // Only that room holds it: the other room is not left with a participant that never leaves.
      const joinedRoom = (results.find((r) => r.ok)!.room_state as { room: string }).room;
      const otherRoom = joinedRoom === 'juggle-1' ? 'juggle-2' : 'juggle-1';
      const W = client({ token: await issueToken(t, { user_id: 'watcher' }) });
      await W.connected();
      expect(((await W.join(otherRoom)).room_state as { participants: Array<{ user_id: string }> }).participants.map((p) => p.user_id)).toEqual(['watcher']);
      // The same room twice at once: one participant, not a second "resumed" join.
      const K = client({ token: await issueToken(t, { user_id: 'twice' }) });
      await K.connected();
      const twice = await Promise.all([K.request('join', { room: 'juggle-3' }), K.request('join', { room: 'juggle-3' })]);
      expect(twice.map((r) => (r.ok ? 'ok' : r.error!.code)).sort()).toEqual(['ALREADY_JOINED', 'ok']);
      J.close();
      K.close();
      W.close();
    });

    it("join outside the token's room scope → ROOM_SCOPE_MISMATCH", async () => {
      const S = client({ token: await issueToken(t, { user_id: 'scoped', room: 'some-other-room' }) });
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
        iss: t.config.jwt.issuer,
        aud: t.config.jwt.audience,
        ...over,
      };
    };
    const handshakes: Array<[string, string, () => unknown]> = [
      ['an expired token', 'TOKEN_EXPIRED', () => signRs256({ kid: t.keys.kid }, claims({ iat: 1000, exp: 2000 }), t.keys.privateKeyPem)],
      [
        'a token signed by another key',
        'TOKEN_INVALID_SIGNATURE',
        () => signRs256({}, claims(), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
      ],
      ['an HS256 token signed with the public key', 'TOKEN_ALGORITHM_NOT_ALLOWED', () => signHs256(claims(), t.keys.publicKeyPem)],
      ['an unsigned (alg none) token', 'TOKEN_ALGORITHM_NOT_ALLOWED', () => unsigned(claims())],
      ['a token of another issuer', 'TOKEN_CLAIM_INVALID', () => signRs256({ kid: t.keys.kid }, claims({ iss: 'elsewhere' }), t.keys.privateKeyPem)],
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

    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    // The SDP limit is inclusive: exactly MAX_SDP_BYTES is relayed.
    const sdp = 'v'.repeat(t.config.signaling.maxSdpBytes);
    await V.ok('offer', { sdp, call_id: ctx.call, to: ctx.H });
    expect(await H.next('offer')).toEqual({ sdp, call_id: ctx.call, from: ctx.V });
    await H.ok('answer', { sdp: 'v=0 answer', call_id: ctx.call, to: ctx.V });
    expect(await V.next('answer')).toEqual({ sdp: 'v=0 answer', call_id: ctx.call, from: ctx.H });

    // Nobody's state changed: the room is still the three of them, unmuted, with their roles.
    const E = client({ token: await issueToken(t, { user_id: 'eve', room: ROOM }) });
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
    const D = client({ token: await issueToken(t, { user_id: 'deep', room: ROOM }) });
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
    const O = client({ token: await issueToken(t, { user_id: 'oscar', room: ROOM }) });
    await O.connected();
    await O.join(ROOM);
    expect((await H.next('peer-joined')).participant.participant_id).toBe(O.participantId);
    bystanderSaw.length = 0;

    const big = 'v'.repeat(t.config.signaling.maxMessageBytes + 1024);
    emitNoAck(O, 'offer', { sdp: big, call_id: ctx.call, to: ctx.H });
    const reason = await O.next('disconnect');
    // engine.io (ws maxPayload) closes the transport; the server sends no error.
    expect(reason).toBe('transport close');
    expect(O.pending('signaling-error')).toEqual([]);

    await sleep(100);
    expect(bystanderSaw).toEqual([]); // within the reconnection grace period, not even a peer-left
    expect(H.socket.connected).toBe(true);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    await V.ok('offer', { sdp: 'v=0 after', call_id: ctx.call, to: ctx.H });
    expect((await H.next('offer')).sdp).toBe('v=0 after');
    bystanderSaw.length = 0;
  });

  it('a malformed Socket.IO packet closes only that connection', async () => {
    const O = client({ token: await issueToken(t, { user_id: 'parse-error' }) });
    await O.connected();
    (O.socket.io.engine as unknown as { write(m: string): void }).write('2["offer",{"sdp":');
    expect(await O.next('disconnect')).toBe('transport close');
    expect(H.socket.connected).toBe(true);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    await V.ok('offer', { sdp: 'v=0 again', call_id: ctx.call, to: ctx.H });
    expect((await H.next('offer')).sdp).toBe('v=0 again');
    await sleep(50);
    expect(bystanderSaw.filter(([event]) => event !== 'offer')).toEqual([]);
  });
});

describe('signaling: AUTH_TIMEOUT (PostgreSQL)', () => {
  let t: TestApp;
  let url: string;
  const clients: Client[] = [];
  beforeAll(async () => {
    t = await startTestApp('postgres', { AUTH_TIMEOUT_MS: '300' });
    url = await listen(t);
  });
  afterAll(async () => {
    clients.forEach((c) => c.close());
    await t.close();
  });

  it('disconnects a socket that has not authenticated in time, after telling it why', async () => {
    const U = new Client(url);
    clients.push(U);
    await U.connected();
    const started = Date.now();
    expect(await U.next('signaling-error', 3000)).toEqual({ code: 'AUTH_TIMEOUT', message: expect.any(String) });
    expect(await U.next('disconnect', 3000)).toBe('io server disconnect');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('keeps sockets that authenticated in the handshake or by message, and not a failed auth', async () => {
    const A = new Client(url, { token: await issueToken(t, { user_id: 'a' }) });
    const B = new Client(url);
    const C = new Client(url);
    clients.push(A, B, C);
    await Promise.all([A.connected(), B.connected(), C.connected()]);
    await B.ok('auth', { token: await issueToken(t, { user_id: 'b' }) });
    expect((await C.request('auth', { token: 'garbage' })).error?.code).toBe('TOKEN_MALFORMED');
    expect(await C.next('signaling-error', 3000)).toMatchObject({ code: 'AUTH_TIMEOUT' });
    await C.next('disconnect');
    await A.none('signaling-error', 100);
    await B.none('signaling-error', 0);
    expect(A.socket.connected && B.socket.connected).toBe(true);
  });
});
