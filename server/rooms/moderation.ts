import { AppError } from '../errors';
import { TRACKS, type AckResult, type Payload, type Track } from '../protocol';
import type { Session } from './clients';
import type { RoomContext } from './context';
import { applyHold, applyMute, authorize, validateDtmf } from './policy';
import type { Presence } from './presence';
import type { ParticipantRecord, RoomRecord } from './store';

/** How long ending a call waits for the call's queued rows before answering DATABASE_UNAVAILABLE. */
const END_CALL_FLUSH_MS = 5000;

type None = Record<string, never>;

/**
 * What participants do to their own media state and, as hosts and moderators,
 * to each other: mute (a moderator's is a lock), hold, DTMF, removal, ending
 * the call, roles; and the peer-to-peer relay of offers, answers and
 * candidates. The rules are policy.ts's pure functions; this applies them to
 * the room's current state, under its lock, and tells the room.
 */
export class Moderation {
  constructor(
    private readonly ctx: RoomContext,
    private readonly presence: Presence,
    /** Makes a participant's producers and consumers match its mute and hold state (MediaControl). */
    private readonly applyMedia: (room: RoomRecord, p: ParticipantRecord) => Promise<void>,
  ) {}

  /** mute and unmute (also pause-producer and resume-producer: the same rules, the same state). */
  async mute(session: Session, payload: Payload<'mute'>, mute: boolean): Promise<None> {
    const { room, me } = await this.ctx.joined(session, payload.call_id);
    const targetId = payload.participant_id ?? me.id;
    const bySelf = targetId === me.id;
    await this.ctx.locks.run(room.room, async () => {
      const [actor, target] = await this.ctx.actorAndTarget(room.room, me.id, targetId);
      if (!bySelf) authorize(actor.role, 'mute-other', target.role);
      const next = applyMute({ muted: target.mutedTracks, locked: target.lockedTracks }, payload.track, mute, bySelf);
      target.mutedTracks = next.muted;
      target.lockedTracks = next.locked;
      await this.ctx.store.putParticipant(target);
      await this.applyMedia(room, target);
      this.ctx.clients.send({ room: room.room }, 'mute-changed', {
        call_id: room.callId,
        participant_id: target.id,
        track: payload.track,
        muted: next.muted.includes(payload.track),
        locked: next.locked.includes(payload.track),
        by: actor.id,
      });
      if (!bySelf) this.ctx.recordEvent(room.callId, actor.id, mute ? 'mute' : 'unmute', { participant_id: target.id, track: payload.track });
    });
    return {};
  }

  async hold(session: Session, payload: Payload<'hold'>, hold: boolean): Promise<AckResult<'hold'>> {
    const { room, me } = await this.ctx.joined(session, payload.call_id);
    let held: Track[] = [];
    await this.ctx.locks.run(room.room, async () => {
      const current = await this.ctx.current(room.room, me.id);
      current.heldTracks = applyHold(current.heldTracks, payload.track, hold, TRACKS);
      held = current.heldTracks;
      await this.ctx.store.putParticipant(current);
      await this.applyMedia(room, current);
      this.ctx.clients.send({ room: room.room }, 'hold-changed', { call_id: room.callId, participant_id: me.id, held_tracks: current.heldTracks });
    });
    return { held_tracks: held };
  }

  async dtmf(session: Session, payload: Payload<'dtmf'>): Promise<None> {
    const { room, me } = await this.ctx.joined(session, payload.call_id);
    const tones = validateDtmf(payload.tones);
    this.ctx.clients.send({ room: room.room }, 'dtmf', { call_id: room.callId, from: me.id, tones }, { connection: session.id });
    this.ctx.recordEvent(room.callId, me.id, 'dtmf', { tones });
    return {};
  }

  async remove(session: Session, payload: Payload<'remove-participant'>): Promise<None> {
    const { room, me } = await this.ctx.joined(session, payload.call_id);
    if (payload.participant_id === me.id) throw new AppError('CANNOT_TARGET_SELF', 'use leave to leave the call');
    await this.ctx.locks.run(room.room, async () => {
      const { store } = this.ctx;
      const [[actor, target], current] = await Promise.all([this.ctx.actorAndTarget(room.room, me.id, payload.participant_id), store.getRoom(room.room)]);
      if (!current) throw new AppError('NOT_JOINED');
      authorize(actor.role, 'remove', target.role);
      current.removedUsers = [...current.removedUsers, target.userId];
      await store.putRoom(current);
      this.ctx.recordEvent(room.callId, actor.id, 'remove', { participant_id: target.id, user_id: target.userId, reason: payload.reason ?? null });
      await this.presence.removeLocked(current, target, 'removed', actor.id, payload.reason);
    });
    return {};
  }

  async endCall(session: Session, payload: Payload<'end-call'>): Promise<None> {
    const { room, me } = await this.ctx.joined(session, payload.call_id);
    const actor = await this.ctx.current(room.room, me.id);
    authorize(actor.role, 'end-call');
    this.ctx.recordEvent(room.callId, me.id, 'end', {});
    // The call's rows first; during an outage, say so rather than wait for the database.
    if (!(await this.ctx.writes.flush(END_CALL_FLUSH_MS))) throw new AppError('DATABASE_UNAVAILABLE');
    await this.ctx.deps.calls.end(room.callId);
    await this.presence.endRoom(room.room, room.callId);
    return {};
  }

  async setRole(session: Session, payload: Payload<'set-role'>): Promise<None> {
    const { room, me } = await this.ctx.joined(session, payload.call_id);
    if (payload.participant_id === me.id) throw new AppError('CANNOT_TARGET_SELF', 'a host cannot change their own role');
    await this.ctx.locks.run(room.room, async () => {
      const [actor, target] = await this.ctx.actorAndTarget(room.room, me.id, payload.participant_id);
      authorize(actor.role, 'set-role', target.role);
      const current = await this.ctx.store.getRoom(room.room);
      if (!current) throw new AppError('NOT_JOINED');
      current.roleChanges = { ...current.roleChanges, [target.userId]: payload.role };
      await this.ctx.store.putRoom(current);
      target.role = payload.role;
      await this.ctx.store.putParticipant(target);
      this.ctx.writes.enqueue(target.id, 'role change', () => this.ctx.deps.calls.recordRole(target.id, payload.role));
      this.ctx.recordEvent(room.callId, actor.id, 'set-role', { participant_id: target.id, role: payload.role });
      this.ctx.clients.send({ room: room.room }, 'role-changed', { call_id: room.callId, participant_id: target.id, role: payload.role, by: actor.id });
    });
    return {};
  }

  /** The peer-to-peer relay: offer, answer, ice-candidate to `to`, or to the only other participant. No lock, no database. */
  async relay(session: Session, event: 'offer' | 'answer', payload: Payload<'offer'>): Promise<None>;
  async relay(session: Session, event: 'ice-candidate', payload: Payload<'ice-candidate'>): Promise<None>;
  async relay(session: Session, event: 'offer' | 'answer' | 'ice-candidate', payload: Payload<'offer'> | Payload<'ice-candidate'>): Promise<None> {
    const { room, me } = await this.ctx.joined(session, payload.call_id);
    let target: ParticipantRecord | undefined;
    if (payload.to !== undefined) {
      if (payload.to === me.id) throw new AppError('CANNOT_TARGET_SELF', 'cannot send to yourself');
      target = await this.ctx.store.getParticipant(room.room, payload.to);
      if (!target) throw new AppError('PARTICIPANT_NOT_FOUND', `no participant ${payload.to} in this room`);
    } else {
      const others = (await this.ctx.store.listParticipants(room.room)).filter((p) => p.id !== me.id);
      if (others.length !== 1) throw new AppError('TARGET_REQUIRED');
      target = others[0]!;
    }
    if (!target.socketId) throw new AppError('TARGET_NOT_CONNECTED');
    const to = { connection: target.socketId };
    if ('candidate' in payload) {
      this.ctx.clients.send(to, 'ice-candidate', {
        candidate: payload.candidate,
        sdpMid: payload.sdpMid ?? null,
        sdpMLineIndex: payload.sdpMLineIndex ?? null,
        call_id: room.callId,
        from: me.id,
      });
    } else {
      this.ctx.clients.send(to, event === 'answer' ? 'answer' : 'offer', { sdp: payload.sdp, call_id: room.callId, from: me.id });
    }
    return {};
  }
}
