import { randomUUID } from 'node:crypto';
import type { AnyAck, Client } from './signaling';

/**
 * The bad-input battery's table (signaling-bad-input.test.ts): for each
 * malformed or unauthorised message, who sends it and the code it must get.
 * Payloads are functions of the room (Ctx) the battery sets up.
 */
export const ROOM = 'bad-input';
/** Sent as no payload at all (not even undefined). */
export const NONE = Symbol('no payload');

/** The room the battery runs in: its call, its three participants, and two tokens. */
export interface Ctx {
  call: string;
  H: string;
  V: string;
  M: string;
  otherUserToken: string;
  expiredToken: string;
}
type Who = 'V' | 'M';
export type Case = [name: string, who: Who, code: string, event: string, payload: (c: Ctx) => unknown];

/** Sends without an acknowledgement callback (the server must answer with a signaling-error event). */
export function emitNoAck(c: Client, event: string, payload: unknown): void {
  const emit = c.socket.emit as unknown as (...a: unknown[]) => void;
  if (payload === NONE) emit.call(c.socket, event);
  else emit.call(c.socket, event, payload);
}

/** Sends with an acknowledgement callback (NONE: without a payload). */
export function request(c: Client, event: string, payload: unknown): Promise<AnyAck> {
  return payload === NONE ? c.request(event) : c.request(event, payload);
}

/** A payload of `event` that is valid in shape (for the given context). */
export function validPayload(event: string, c: Ctx): Record<string, unknown> {
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

/** Every client event of the call protocol. */
export const ALL_EVENTS = [
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
] as const;
/** The events that name the call they are about. */
export const EVENTS_WITH_CALL_ID = ALL_EVENTS.filter((e) => e !== 'auth' && e !== 'join');
const NON_OBJECTS: Array<[string, unknown]> = [
  ['no payload', NONE],
  ['null', null],
  ['a string', 'offer'],
  ['a number', 42],
  ['a boolean', true],
  ['an array', []],
];
export const BIG_SDP = (max: number) => 'v'.repeat(max + 1);

/** Every case answered in the acknowledgement, for a server whose MAX_SDP_BYTES is `maxSdp`. */
export function cases(maxSdp: number): Case[] {
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
