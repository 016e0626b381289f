import type { CurrentRights, RoomRights } from '../calls/access';
import type { Sfu } from '../media/sfu';
import type { Recorder } from '../recording/recorder';
import { Admission } from './admission';
import { RoomContext, type RoomsDeps } from './context';
import { MediaControl } from './mediaControl';
import { Moderation } from './moderation';
import { Presence } from './presence';

export type { Audience, Clients, Session } from './clients';
export type { NodeState, RoomContext, RoomsDeps } from './context';
export { participantState, InMemoryRoomStore, type ParticipantRecord, type RoomRecord, type RoomStore } from './store';
export { SingleNode, type RoomLocks, type Topology } from './topology';

/**
 * The rooms of calls in progress, as domain services that signaling and REST
 * both call (the Socket.IO adapter in server/signaling is only a handler map
 * onto these):
 *
 * - admission: join (opening a call and placing its media), resume;
 * - presence: leave, removal, dropped connections and their grace period, empty rooms, the end of a call;
 * - moderation: mute, hold, DTMF, remove, end, roles, the p2p relay;
 * - media: SFU media requests and recording control.
 *
 * Room state is in a RoomStore (memory, or Redis in a cluster), changed under
 * per-room locks; the database is written behind (WriteBehind), never awaited
 * on the relay path.
 */
export class Rooms implements RoomRights {
  readonly ctx: RoomContext;
  readonly presence: Presence;
  readonly admission: Admission;
  readonly media: MediaControl;
  readonly moderation: Moderation;

  constructor(deps: RoomsDeps) {
    this.ctx = new RoomContext(deps);
    this.presence = new Presence(this.ctx);
    this.admission = new Admission(this.ctx, this.presence);
    this.media = new MediaControl(this.ctx);
    this.moderation = new Moderation(this.ctx, this.presence, (room, p) => this.media.applyMedia(room, p));
    this.media.moderation = this.moderation;
    this.followCalls();
  }

  /** What the live room says about a user (REST authorisation: calls/access.ts). */
  async currentRights(room: string, callId: string | null, userId: string): Promise<CurrentRights> {
    const record = await this.ctx.store.getRoom(room);
    if (!record || (callId !== null && record.callId !== callId)) return { removed: false, role: null };
    if (record.removedUsers.includes(userId)) return { removed: true, role: null };
    const present = (await this.ctx.store.listParticipants(room)).find((p) => p.userId === userId);
    return { removed: false, role: present?.role ?? record.roleChanges?.[userId] ?? null };
  }

  /** Tells rooms what this node's SFU and recorder do (each node listens to its own). */
  attachMedia(sfu: Sfu, recorder: Recorder): void {
    const { clients, events } = this.ctx.deps;
    sfu.on('to-participant', (_room, participantId, m) => clients.sendMessage({ participant: participantId }, m));
    sfu.on('to-room', (room, m) => clients.sendMessage({ room }, m));
    sfu.on('media-reset', (room) => {
      this.ctx.locks
        .run(room, async () => {
          const r = await this.ctx.store.getRoom(room);
          if (r) clients.send({ room }, 'media-reset', { call_id: r.callId, reason: 'worker-died' });
        })
        .catch((err: unknown) => this.ctx.deps.log.error({ err }, 'announcing a media reset failed'));
    });
    recorder.on('started', (room, e) => {
      clients.send({ room }, 'recording-started', e);
      events.emit('recording.started', { call_id: e.call_id, room, recording_id: e.recording_id, mode: e.mode, by: e.by, at: new Date().toISOString() });
    });
    recorder.on('finished', (room, e) => {
      clients.send({ room }, 'recording-finished', e);
      events.emit('recording.finished', { call_id: e.call_id, room, recording: e, at: new Date().toISOString() });
    });
  }

  /** A call's status changed (REST, signaling, an empty room): the room follows and is told. */
  private followCalls(): void {
    const { calls, log, clients } = this.ctx.deps;
    calls.on('call-state-changed', (c) => {
      if (c.status === 'ended') {
        this.admission.roomEnded(c.roomId);
        this.presence.endRoomSoon(c.roomId, c.id);
        return;
      }
      this.ctx.locks
        .run(c.roomId, async () => {
          const room = await this.ctx.store.getRoom(c.roomId);
          // Only real changes: a room is stored already active when its call opens.
          if (!room || room.callId !== c.id || (room.status === c.status && room.recording === c.recording)) return;
          await this.ctx.store.putRoom({ ...room, status: c.status, recording: c.recording });
          clients.send({ room: c.roomId }, 'call-state-changed', { call_id: c.id, room: c.roomId, status: c.status, recording: c.recording });
        })
        .catch((err: unknown) => log.error({ err }, 'announcing a call state failed'));
    });
  }

  /**
   * Pending database writes (tests and shutdown wait for them). With a
   * timeout (shutdown during an outage), false when some are left: they are
   * then logged as not written, one by one, rather than dropped silently.
   */
  async flushWrites(timeoutMs?: number): Promise<boolean> {
    const done = await this.ctx.writes.flush(timeoutMs);
    if (!done) {
      const left = this.ctx.writes.stop();
      this.ctx.deps.log.error({ pending: left }, 'shutting down with database writes not written (the database is unavailable or slow)');
      // A last short wait: failing writes now give up (each logged), the rest are counted above.
      await this.ctx.writes.flush(timeoutMs === undefined ? undefined : Math.min(1000, timeoutMs / 4));
    }
    return done;
  }
}
