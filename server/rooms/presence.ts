import { AppError } from '../errors';
import type { LeaveReason, Payload } from '../protocol';
import type { Session } from './clients';
import type { RoomContext } from './context';
import type { ParticipantRecord, RoomRecord } from './store';

/**
 * Who is in a room, and for how long: leaving, removal, a dropped connection
 * and its reconnection grace period, the end of an empty room, and the end of
 * a call. Every change runs under the room's lock.
 *
 * What runs by itself (a dropped connection, the end of a grace period or of an
 * empty room, a call ended elsewhere) and finds the room state unavailable
 * (CLUSTER_UNAVAILABLE: Redis is away) is tried again every RETRY_MS until it
 * goes through, rather than dropped: a participant whose connection closed
 * during a Redis outage still gets its grace period and its `left_at`.
 */
const RETRY_MS = 2000;
/** Rooms emptied at once at shutdown (each under its own lock). */
const SHUTDOWN_CONCURRENCY = 32;

const unavailable = (err: unknown): boolean => err instanceof AppError && err.code === 'CLUSTER_UNAVAILABLE';
export class Presence {
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();
  /** Empty rooms whose end this node times, with the room as it was and the stamp of its emptiness. */
  private readonly emptyTimers = new Map<string, { timer: NodeJS.Timeout; room: RoomRecord; stamp: number }>();

  constructor(private readonly ctx: RoomContext) {}

  /** leave: out of the call, the others are told. */
  async leave(session: Session, payload: Payload<'leave'>): Promise<Record<string, never>> {
    const { room, me } = await this.ctx.joined(session, payload.call_id);
    await this.ctx.locks.run(room.room, async () => {
      const current = await this.ctx.store.getParticipant(room.room, me.id);
      if (current) await this.removeLocked(room, current, 'left', null);
    });
    return {};
  }

  /** Under the room's lock: takes a participant out of its room and tells the others. */
  async removeLocked(room: RoomRecord, p: ParticipantRecord, reason: LeaveReason, by: string | null, message?: string): Promise<void> {
    const { store, clients, deps, node } = this.ctx;
    await store.deleteParticipant(room.room, p.id);
    this.cancelGrace(p.id);
    // The room as stored now (the caller's copy may predate a media move).
    room = (await store.getRoom(room.room)) ?? room;
    // Shutting down, another node's media is left to that node: its transports close by
    // themselves when the client goes (DTLS), and that node may be shutting down too.
    if (room.mediaNode && !(node.closing && room.mediaNode !== this.ctx.nodeId)) {
      // Its recording is finalised while its media still flows, then its media closes.
      const media = this.ctx.mediaOf(room);
      const warn = (err: unknown) => deps.log.warn({ err, room: room.room }, "closing a leaving participant's media failed");
      await media.participantLeaving(room.room, p.id).catch(warn);
      await media.closePeer(room.room, p.id).catch(warn);
    }
    // Stamped now: after a database outage the row says when they left, not when it was written.
    const leftAt = new Date();
    this.ctx.writes.enqueue(p.id, 'participant left', () => deps.calls.recordLeave(p.id, leftAt));
    clients.send({ room: room.room }, 'peer-left', { call_id: room.callId, participant_id: p.id, reason }, p.socketId ? { connection: p.socketId } : undefined);
    deps.events.emit('participant.left', {
      call_id: room.callId,
      room: room.room,
      participant_id: p.id,
      user_id: p.userId,
      reason,
      at: new Date().toISOString(),
    });
    if (p.socketId) {
      clients.leave(p.socketId, room.room);
      if (reason === 'removed' || reason === 'replaced') this.kick(p.socketId, room.callId, message ?? reason, by);
    }
    if ((await store.countParticipants(room.room)) === 0) await this.scheduleEmptyLocked(room);
    this.ctx.refreshGauges();
  }

  /** Tells a connection it was removed, then closes it (it does not reconnect by itself). */
  kick(connectionId: string, callId: string, reason: string, by: string | null): void {
    this.ctx.clients.send({ connection: connectionId }, 'removed', { call_id: callId, reason, by });
    this.ctx.clients.disconnect(connectionId);
  }

  /** A connection closed: if it was in a room, its participant keeps its place for the grace period. */
  disconnected(session: Session): void {
    const { room, participantId } = session;
    if (!room || !participantId) return;
    this.dropped(room, participantId, session.id);
  }

  private dropped(room: string, participantId: string, connectionId: string): void {
    this.ctx.locks
      .run(room, () => this.droppedLocked(room, participantId, connectionId))
      .catch((err: unknown) => {
        if (unavailable(err)) this.retryFor(participantId, () => this.dropped(room, participantId, connectionId));
        else this.ctx.deps.log.error({ err }, 'handling a disconnect failed');
      });
  }

  /** Tries a participant's background change again later; kept with its grace timer (cancelled with it). */
  private retryFor(participantId: string, again: () => void): void {
    clearTimeout(this.graceTimers.get(participantId));
    const timer = setTimeout(again, RETRY_MS);
    timer.unref();
    this.graceTimers.set(participantId, timer);
  }

  /** Under the room's lock: the participant's connection is gone; keep its place for the grace period, or remove it. */
  async droppedLocked(room: string, participantId: string, connectionId: string): Promise<void> {
    const { store, cfg, node } = this.ctx;
    const p = await store.getParticipant(room, participantId);
    if (!p || p.socketId !== connectionId) return; // replaced by a newer connection, or gone
    const r = await store.getRoom(room);
    if (!r) return;
    if (cfg.reconnectGraceMs === 0 || (node.draining && !node.handingOff)) return this.removeLocked(r, p, 'disconnected', null);
    const stamp = Date.now();
    p.socketId = null;
    p.disconnectedAt = stamp;
    await store.putParticipant(p);
    this.startGrace(room, participantId, stamp);
  }

  /** The grace period of a participant stored as disconnected at `stamp` (also: restored after Redis lost it, cluster/restore.ts). */
  startGrace(room: string, participantId: string, stamp: number): void {
    this.cancelGrace(participantId);
    const timer = setTimeout(() => void this.expireGrace(room, participantId, stamp), this.ctx.cfg.reconnectGraceMs);
    timer.unref();
    this.graceTimers.set(participantId, timer);
  }

  /** Whether this node times the grace period of that participant. */
  graceRunning(participantId: string): boolean {
    return this.graceTimers.has(participantId);
  }

  /** The grace period of one disconnection ends: still away (and not away again since, on another node's watch) means gone. */
  private expireGrace(room: string, participantId: string, stamp: number): Promise<void> {
    this.graceTimers.delete(participantId);
    return this.ctx.locks
      .run(room, async () => {
        const p = await this.ctx.store.getParticipant(room, participantId);
        const r = await this.ctx.store.getRoom(room);
        if (p && r && p.socketId === null && p.disconnectedAt === stamp) await this.removeLocked(r, p, 'disconnected', null);
      })
      .catch((err: unknown) => {
        if (unavailable(err)) this.retryFor(participantId, () => void this.expireGrace(room, participantId, stamp));
        else this.ctx.deps.log.error({ err }, 'ending a reconnection grace period failed');
      });
  }

  cancelGrace(participantId: string): void {
    clearTimeout(this.graceTimers.get(participantId));
    this.graceTimers.delete(participantId);
  }

  /** Under the room's lock: the room is empty; its call ends after EMPTY_ROOM_TIMEOUT unless someone comes back. */
  private async scheduleEmptyLocked(room: RoomRecord): Promise<void> {
    const stamp = Date.now();
    await this.ctx.store.putRoom({ ...room, emptySince: stamp });
    this.startEmptyTimer(room, stamp, this.ctx.cfg.emptyRoomTimeoutMs);
  }

  /** The stamp makes the timer specific to this emptiness: a later one (perhaps timed on another node) is not ended early. */
  startEmptyTimer(room: RoomRecord, stamp: number, delayMs: number): void {
    this.clearEmptyTimer(room.room);
    const timer = setTimeout(() => {
      this.emptyTimers.delete(room.room);
      this.ctx.locks
        .run(room.room, async () => {
          const { store, deps } = this.ctx;
          const current = await store.getRoom(room.room);
          if (current?.callId !== room.callId || current.emptySince !== stamp || (await store.countParticipants(room.room)) !== 0) return;
          // Ended and forgotten under the room's lock: a join meanwhile waits,
          // then opens a new call instead of entering the one being ended.
          await deps.calls.end(room.callId).catch((err: unknown) => {
            if (!(err instanceof AppError && err.code === 'CALL_ALREADY_ENDED')) throw err;
          });
          await this.endRoomLocked(room.room, room.callId);
        })
        .catch((err: unknown) => {
          if (unavailable(err) && !this.emptyTimers.has(room.room)) this.startEmptyTimer(room, stamp, RETRY_MS);
          else this.ctx.deps.log.error({ err }, 'ending an empty room failed');
        });
    }, delayMs);
    timer.unref();
    this.emptyTimers.set(room.room, { timer, room, stamp });
  }

  hasEmptyTimer(room: string): boolean {
    return this.emptyTimers.has(room);
  }

  /** The empty rooms whose end this node times: the room as it was when it emptied, and that moment. */
  emptyRooms(): Array<{ room: RoomRecord; stamp: number }> {
    return [...this.emptyTimers.values()].map(({ room, stamp }) => ({ room, stamp }));
  }

  clearEmptyTimer(room: string): void {
    clearTimeout(this.emptyTimers.get(room)?.timer);
    this.emptyTimers.delete(room);
  }

  /** The call ended (by signaling, REST or an empty room): tell everyone and forget the room. */
  endRoom(roomName: string, callId: string): Promise<void> {
    return this.ctx.locks.run(roomName, () => this.endRoomLocked(roomName, callId));
  }

  /** The same, in the background (a call ended elsewhere): tried again while the room state is unavailable. */
  endRoomSoon(roomName: string, callId: string): void {
    this.endRoom(roomName, callId).catch((err: unknown) => {
      if (!unavailable(err)) return this.ctx.deps.log.error({ err }, 'ending room failed');
      const timer = setTimeout(() => this.endRoomSoon(roomName, callId), RETRY_MS);
      timer.unref();
    });
  }

  private async endRoomLocked(roomName: string, callId: string): Promise<void> {
    const { store, clients, deps } = this.ctx;
    const room = await store.getRoom(roomName);
    if (!room || room.callId !== callId) return;
    // First the recording, while media still flows and everyone can still be told.
    const media = this.ctx.mediaOf(room);
    await media
      .stopRecording(roomName, 'call-ended')
      .catch((err: unknown) => deps.log.warn({ err, room: roomName }, 'stopping the recording of an ended call failed'));
    const participants = await store.listParticipants(roomName);
    clients.send({ room: roomName }, 'call-state-changed', { call_id: callId, room: roomName, status: 'ended', recording: false });
    clients.clear(roomName);
    for (const p of participants) {
      deps.events.emit('participant.left', {
        call_id: callId,
        room: roomName,
        participant_id: p.id,
        user_id: p.userId,
        reason: 'call-ended',
        at: new Date().toISOString(),
      });
      this.cancelGrace(p.id);
      const leftAt = new Date();
      this.ctx.writes.enqueue(p.id, 'participant left', () => deps.calls.recordLeave(p.id, leftAt));
    }
    this.clearEmptyTimer(roomName);
    if (room.mediaNode)
      await media.close(roomName).catch((err: unknown) => deps.log.warn({ err, room: roomName }, 'closing the media of an ended call failed'));
    await store.deleteRoom(roomName);
    this.ctx.refreshGauges();
  }

  /** Shutdown: every participant still on this node is recorded as left; no timer outlives the node. */
  async removeAllOnNode(): Promise<void> {
    const { store, locks, nodeId, deps } = this.ctx;
    for (const t of [...this.graceTimers.values(), ...[...this.emptyTimers.values()].map((e) => e.timer)]) clearTimeout(t);
    // One lock per room for all its participants here, rooms in parallel (a bounded number at a
    // time): one by one, 10,000 connections took longer than SHUTDOWN_TIMEOUT_MS.
    const byRoom = new Map<string, string[]>();
    for (const { room, id } of await store.participantsOnNode(nodeId).catch(() => [])) byRoom.set(room, [...(byRoom.get(room) ?? []), id]);
    const rooms = [...byRoom];
    const worker = async (): Promise<void> => {
      for (let next = rooms.shift(); next; next = rooms.shift()) {
        const [room, ids] = next;
        await locks
          .run(room, async () => {
            for (const id of ids) {
              const [p, r] = await Promise.all([store.getParticipant(room, id), store.getRoom(room)]);
              if (p && r && p.nodeId === nodeId) await this.removeLocked(r, p, 'disconnected', null);
            }
          })
          .catch((err: unknown) => deps.log.warn({ err, room }, 'removing participants at shutdown failed'));
      }
    };
    await Promise.all(Array.from({ length: Math.min(SHUTDOWN_CONCURRENCY, rooms.length) }, worker));
    for (const e of this.emptyTimers.values()) clearTimeout(e.timer);
  }
}
