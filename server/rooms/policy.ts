import { AppError } from '../errors';
import type { Role, Track } from '../protocol';

/**
 * The rules of a call, as plain logic without I/O (unit-tested in
 * test/signaling-policy.test.ts).
 *
 * Permission matrix:
 *
 * | action                                   | host | moderator | participant |
 * |------------------------------------------|------|-----------|-------------|
 * | own tracks: mute, unmute, hold, dtmf      | yes  | yes       | yes         |
 * | mute or unmute another participant        | yes  | yes (not a host) | no   |
 * | remove a participant                      | yes  | yes (not a host) | no   |
 * | end the call for everyone                 | yes  | yes       | no          |
 * | change a participant's role               | yes  | no        | no          |
 * | start and stop recording                  | yes  | yes       | no          |
 * | invite users to the call                  | yes  | yes       | no          |
 *
 * Moderation mute (the Janus videoroom and Zoom choice, not LiveKit's): a track
 * muted by a host or moderator is *locked*; its owner cannot unmute it
 * (MUTED_BY_MODERATOR). A host or moderator "unmuting" someone lifts the lock but
 * leaves the track muted: nobody can open another person's microphone or camera;
 * the owner's client, told by mute-changed (locked: false), unmutes when its user
 * chooses to.
 */
export type ModerationAction = 'mute-other' | 'remove' | 'end-call' | 'set-role' | 'record' | 'invite';

const ALLOWED: Record<Role, readonly ModerationAction[]> = {
  host: ['mute-other', 'remove', 'end-call', 'set-role', 'record', 'invite'],
  moderator: ['mute-other', 'remove', 'end-call', 'record', 'invite'],
  participant: [],
};

const RANK: Record<Role, number> = { host: 3, moderator: 2, participant: 1 };

/** Throws FORBIDDEN unless `actor` may perform `action` (on `target`, when it has one). */
export function authorize(actor: Role, action: ModerationAction, target?: Role): void {
  if (!ALLOWED[actor].includes(action)) {
    throw new AppError('FORBIDDEN', `a ${actor} may not ${action.replace('-', ' ')}`);
  }
  if (target && action !== 'set-role' && RANK[target] > RANK[actor]) {
    throw new AppError('FORBIDDEN', `a ${actor} may not ${action.replace('-', ' ')} a ${target}`);
  }
}

export interface TrackState {
  muted: Track[];
  locked: Track[];
}

const without = (list: Track[], t: Track) => list.filter((x) => x !== t);
const withT = (list: Track[], t: Track) => (list.includes(t) ? list : [...list, t]);

/**
 * The new mute state of `track` after `mute` (true) or unmute (false), by the
 * owner (`bySelf`) or by a host or moderator. Throws MUTED_BY_MODERATOR when the
 * owner tries to unmute a locked track.
 */
export function applyMute(state: TrackState, track: Track, mute: boolean, bySelf: boolean): TrackState {
  if (mute) {
    return { muted: withT(state.muted, track), locked: bySelf ? state.locked : withT(state.locked, track) };
  }
  if (bySelf) {
    if (state.locked.includes(track)) {
      throw new AppError('MUTED_BY_MODERATOR', `your ${track} was muted by a moderator; a host or moderator must lift it first`);
    }
    return { muted: without(state.muted, track), locked: state.locked };
  }
  // A moderator's unmute lifts the lock only; the owner decides to unmute.
  return { muted: state.muted, locked: without(state.locked, track) };
}

/** Tracks held after hold (true) or unhold (false) of one track, or of every track. */
export function applyHold(held: Track[], track: Track | undefined, hold: boolean, all: readonly Track[]): Track[] {
  const tracks = track ? [track] : all;
  return hold ? [...new Set([...held, ...tracks])] : held.filter((t) => !tracks.includes(t));
}

export const DTMF_MAX_TONES = 100;
const DTMF = /^[0-9A-D*#,]+$/;

/** RFC 4733 events plus ',' for a pause; upper-case A-D only. */
export function validateDtmf(tones: string): string {
  if (tones.length === 0 || tones.length > DTMF_MAX_TONES || !DTMF.test(tones)) {
    throw new AppError('INVALID_DTMF', `tones must be 1 to ${DTMF_MAX_TONES} of 0-9 * # A-D and , (pause)`);
  }
  return tones;
}

/** Whether a token of `role` may open a room that has no call, under AUTO_CREATE_ROOMS. */
export function mayCreateRoom(role: Role, setting: 'any' | 'host' | 'none'): boolean {
  if (setting === 'any') return true;
  if (setting === 'host') return role === 'host' || role === 'moderator';
  return false;
}
