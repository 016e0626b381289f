import { ROLES, type Role } from '../auth/roles';
import { AppError } from '../errors';
import { applyHold, applyMute, authorize, mayCreateRoom, validateDtmf, type ModerationAction } from '../rooms/policy';
import { TRACKS } from '../protocol';
import { TokenBucket } from '../signaling/rateLimiter';
import { canTransition } from '../calls/policy';
import { compileValidators } from '../signaling/validate';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof AppError ? e.code : 'not an AppError';
  }
  return undefined;
};

describe('permission matrix', () => {
  const expected: Record<Role, Record<ModerationAction, boolean>> = {
    host: { 'mute-other': true, remove: true, 'end-call': true, 'set-role': true, record: true, invite: true },
    moderator: { 'mute-other': true, remove: true, 'end-call': true, 'set-role': false, record: true, invite: true },
    participant: { 'mute-other': false, remove: false, 'end-call': false, 'set-role': false, record: false, invite: false },
  };
  for (const role of ROLES) {
    for (const [action, allowed] of Object.entries(expected[role]) as Array<[ModerationAction, boolean]>) {
      it(`${role} ${allowed ? 'may' : 'may not'} ${action}`, () => {
        expect(codeOf(() => authorize(role, action))).toBe(allowed ? undefined : 'FORBIDDEN');
      });
    }
  }
  it('a moderator may not mute or remove a host, but may act on moderators and participants', () => {
    expect(codeOf(() => authorize('moderator', 'mute-other', 'host'))).toBe('FORBIDDEN');
    expect(codeOf(() => authorize('moderator', 'remove', 'host'))).toBe('FORBIDDEN');
    expect(codeOf(() => authorize('moderator', 'remove', 'moderator'))).toBeUndefined();
    expect(codeOf(() => authorize('moderator', 'mute-other', 'participant'))).toBeUndefined();
    expect(codeOf(() => authorize('host', 'remove', 'host'))).toBeUndefined();
  });
});

describe('mute rules', () => {
  const none = { muted: [], locked: [] };
  it('self mute and unmute', () => {
    const m = applyMute(none, 'audio', true, true);
    expect(m).toEqual({ muted: ['audio'], locked: [] });
    expect(applyMute(m, 'audio', false, true)).toEqual(none);
  });
  it('a moderator mute locks; the owner cannot unmute until lifted; lifting leaves it muted', () => {
    const locked = applyMute(none, 'video', true, false);
    expect(locked).toEqual({ muted: ['video'], locked: ['video'] });
    expect(codeOf(() => applyMute(locked, 'video', false, true))).toBe('MUTED_BY_MODERATOR');
    const lifted = applyMute(locked, 'video', false, false);
    expect(lifted).toEqual({ muted: ['video'], locked: [] });
    expect(applyMute(lifted, 'video', false, true)).toEqual(none);
  });
  it('is idempotent and per track', () => {
    const a = applyMute(applyMute(none, 'audio', true, true), 'audio', true, true);
    expect(a.muted).toEqual(['audio']);
    const locked = applyMute(a, 'video', true, false);
    expect(applyMute(locked, 'audio', false, true)).toEqual({ muted: ['video'], locked: ['video'] });
  });
});

describe('hold', () => {
  it('holds one or every track, and releases likewise', () => {
    expect(applyHold([], undefined, true, TRACKS)).toEqual(['audio', 'video', 'screen']);
    expect(applyHold([], 'audio', true, TRACKS)).toEqual(['audio']);
    expect(applyHold(['audio', 'video'], 'audio', false, TRACKS)).toEqual(['video']);
    expect(applyHold(['audio', 'video'], undefined, false, TRACKS)).toEqual([]);
    expect(applyHold(['audio'], 'audio', true, TRACKS)).toEqual(['audio']);
  });
});

describe('DTMF', () => {
  it.each(['0123456789', '*#', 'ABCD', '1,2,,3', '#'.repeat(100)])('accepts %s', (t) => expect(validateDtmf(t)).toBe(t));
  it.each(['', 'abcd', 'E', '1 2', '12;', '#'.repeat(101), '١'])('rejects %j', (t) => expect(codeOf(() => validateDtmf(t))).toBe('INVALID_DTMF'));
});

describe('room creation and call states', () => {
  it('follows AUTO_CREATE_ROOMS', () => {
    expect(ROLES.map((r) => mayCreateRoom(r, 'any'))).toEqual([true, true, true]);
    expect(ROLES.map((r) => mayCreateRoom(r, 'host'))).toEqual([true, true, false]);
    expect(ROLES.map((r) => mayCreateRoom(r, 'none'))).toEqual([false, false, false]);
  });
  it('allows created → active → ended, and nothing out of ended', () => {
    expect(canTransition('created', 'active')).toBe(true);
    expect(canTransition('created', 'ended')).toBe(true);
    expect(canTransition('active', 'ended')).toBe(true);
    expect(canTransition('active', 'created')).toBe(false);
    expect(canTransition('ended', 'active')).toBe(false);
  });
});

describe('token bucket', () => {
  it('allows the burst, then the sustained rate', () => {
    let now = 0;
    const b = new TokenBucket(10, 5, () => now);
    expect(Array.from({ length: 6 }, () => b.take())).toEqual([true, true, true, true, true, false]);
    now += 100; // 0.1 s at 10/s: one token
    expect([b.take(), b.take()]).toEqual([true, false]);
    now += 10_000; // refills only up to the burst
    expect(Array.from({ length: 6 }, () => b.take()).filter(Boolean)).toHaveLength(5);
  });
});

describe('payload validation', () => {
  const v = compileValidators({ maxSdpBytes: 1000 });
  it('bounds the SDP in bytes, not characters', () => {
    expect(codeOf(() => v.offer({ sdp: 'a'.repeat(1000), call_id: 'c' }))).toBeUndefined();
    expect(codeOf(() => v.offer({ sdp: 'a'.repeat(1001), call_id: 'c' }))).toBe('PAYLOAD_TOO_LARGE');
    expect(codeOf(() => v.answer({ sdp: '€'.repeat(400), call_id: 'c' }))).toBe('PAYLOAD_TOO_LARGE'); // 1200 bytes
  });
  it('bounds the size of capabilities', () => {
    expect(codeOf(() => v.join({ room: 'r', capabilities: { audio: true, video: true } }))).toBeUndefined();
    expect(codeOf(() => v.join({ room: 'r', capabilities: { blob: 'x'.repeat(5000) } }))).toBe('PAYLOAD_TOO_LARGE');
  });
});
