import { isDatabaseOutage } from '../lib/dbOutage';
import { isRedisOutage } from '../lib/redisOutage';
import type { ParticipantRecord, RoomLocks, RoomRecord, RoomStore, Rooms, Session } from '../rooms';
import type { Owned } from './ownedState';

/**
 * Redis came back EMPTY (restarted without persistence, flushed, failed over to
 * an empty replica): the rooms, participants and node registry it held are
 * gone, but the calls are not: every client is still connected to its node,
 * and media still flows through the media nodes. Each node then writes back
 * the state it owns, under each room's lock, before any request of its own may
 * read Redis again (RedisGate holds them):
 *
 * - its connected participants: every local connection joined to a room
 *   (socket.data: room, participant id), with its record as this node last
 *   knew it (OwnedState: its own writes, plus the heartbeat's snapshot of what
 *   other nodes changed: mutes, holds, roles). A connection whose participant
 *   this node does not know is not restored: its record was deleted (the call
 *   ended, it was removed), only its socket.data outlived it;
 * - its participants in their reconnection grace period, as they were;
 * - its participants whose connection closed while Redis was away (their
 *   disconnect could not be recorded then): as disconnected now, with a grace
 *   period from now, so that they resume or are announced as left, and their
 *   rows get their `left_at`, as after any dropped connection;
 * - the rooms of those participants, the rooms whose media it carries and the
 *   empty rooms whose end it times: callId, mode, media node, roles changed,
 *   users removed, recording, as it last knew them; a room this node knows
 *   only through its participants (opened elsewhere just before the loss) from
 *   the database's call row (mode, recording), its media where its SFU has it,
 *   or placed anew (media-reset); role changes of users not in the room that
 *   only another node saw are then lost (their token's role applies again).
 *
 * The database decides which call a room is in: when the room's open call is
 * no longer the one remembered (it was ended, over REST, while Redis was away),
 * the room is not restored: its participants here are told the call ended,
 * their rows closed. A node merges what another node restored before it (same
 * call): removed users and role changes are united, records already there are
 * kept (they are newer than this node's memory). So every participant keeps its
 * id, its place and the call_id; a newcomer joins the same call and sees them.
 *
 * Why restore rather than tell clients to reconnect and rejoin: a rejoin after
 * the loss would be a new participant (a new id and a new row, the old row
 * never closed), media would be negotiated again for everyone, and clients
 * without the SDK's reconnect logic would be stranded. Restoring needs nothing
 * from clients, and media is not interrupted at all.
 *
 * What cannot be restored: changes other nodes made to this node's records in
 * the last heartbeat (2 s) before the loss; the participants of a node that
 * died while Redis was away (nobody announces them as left; their rows keep no
 * `left_at`).
 */
export interface RestoreResult {
  rooms: number;
  participants: number;
  /** Participants whose connection closed while Redis was away: given a grace period now. */
  disconnected: number;
  /** Rooms whose call ended while Redis was away: their participants here were told. */
  ended: number;
}

type OpenCall = Awaited<ReturnType<Rooms['ctx']['deps']['calls']['findOpen']>>;

export class StateRestore {
  constructor(
    private readonly rooms: Rooms,
    /** A store and locks that do not wait for the gate (the gate waits for this). */
    private readonly raw: { store: RoomStore; locks: RoomLocks },
    /** This node's connections (the Socket.IO adapter). */
    private readonly sessions: () => Session[],
    /** Whether this node's SFU has routers for the room. */
    private readonly hasMedia: (room: string) => boolean,
  ) {}

  private get ctx() {
    return this.rooms.ctx;
  }

  /** Writes back what this node owns; throws when Redis failed meanwhile (the restore is then run again). */
  async restore(owned: Owned): Promise<RestoreResult> {
    const { nodeId, deps } = this.ctx;
    const result: RestoreResult = { rooms: 0, participants: 0, disconnected: 0, ended: 0 };
    const joined = this.sessions().filter((s) => s.room !== undefined && s.participantId !== undefined && !s.disconnected);
    const empty = new Map(this.rooms.presence.emptyRooms().map((e) => [e.room.room, e]));
    const names = new Set<string>([
      ...joined.map((s) => s.room!),
      ...[...owned.participants.values()].map((p) => p.room),
      ...[...owned.rooms.values()].filter((r) => r.mediaNode === nodeId).map((r) => r.room),
      ...empty.keys(),
    ]);
    let redisFailed: Error | undefined;
    for (const name of names) {
      const sessions = joined.filter((s) => s.room === name);
      await this.raw.locks
        .run(name, () => this.restoreRoom(name, owned, sessions, empty.get(name), result))
        .catch((err: unknown) => {
          if (isRedisOutage(err)) redisFailed ??= err as Error;
          deps.log.error({ err, room: name }, 'restoring a room after Redis lost it failed');
        });
    }
    if (redisFailed) throw redisFailed;
    this.ctx.refreshGauges();
    return result;
  }

  private async restoreRoom(
    name: string,
    owned: Owned,
    sessions: Session[],
    empty: { room: RoomRecord; stamp: number } | undefined,
    result: RestoreResult,
  ): Promise<void> {
    const { store } = this.raw;
    const { nodeId, deps, cfg } = this.ctx;
    const { presence } = this.rooms;
    const mine = [...owned.participants.values()].filter((p) => p.room === name);
    const remembered = owned.rooms.get(name) ?? empty?.room;
    // A connection whose participant is not known here is joined to nothing any more (see above).
    for (const s of sessions.filter((x) => owned.participants.get(x.participantId!)?.room !== name)) this.ctx.clients.leave(s.id, name);
    sessions = sessions.filter((x) => owned.participants.get(x.participantId!)?.room === name);
    if (sessions.length === 0 && mine.length === 0 && !remembered) return;
    const open = await this.openCall(name);
    const callId = remembered?.callId ?? open?.id;
    if (!callId) {
      deps.log.warn({ room: name, database: open === undefined ? 'unavailable' : 'no open call' }, 'cannot restore a room: its call is unknown');
      return;
    }
    const existing = await store.getRoom(name);
    if (open === null || (open && open.id !== callId) || (existing && existing.callId !== callId)) {
      await this.callOver(name, callId, sessions, mine, existing);
      result.ended++;
      return;
    }

    const room = await this.roomRecord(name, callId, remembered, existing, open);
    if (!existing || JSON.stringify(existing) !== JSON.stringify(room.record)) await store.putRoom(room.record);
    result.rooms++;

    for (const s of sessions) {
      const id = s.participantId!;
      if (await store.getParticipant(name, id)) continue;
      await store.putParticipant({ ...owned.participants.get(id)!, socketId: s.id, nodeId, disconnectedAt: null });
      result.participants++;
    }
    const connected = new Set(sessions.map((s) => s.participantId));
    for (const p of mine) {
      if (connected.has(p.id) || (await store.getParticipant(name, p.id))) continue;
      if (p.socketId === null && presence.graceRunning(p.id)) {
        // In its grace period, timed here: it ends as it would have.
        await store.putParticipant(p);
        result.participants++;
        continue;
      }
      // Its connection closed while Redis was away (its disconnect could not be recorded): its grace period starts now.
      const stamp = Date.now();
      await store.putParticipant({ ...p, socketId: null, disconnectedAt: stamp });
      presence.startGrace(name, p.id, stamp);
      result.disconnected++;
    }

    // Someone is in it (restored here or by another node): not empty. Nobody: its end is timed (here, unless it is already).
    const record = room.record;
    if ((await store.countParticipants(name)) > 0) {
      if (record.emptySince !== null) await store.putRoom({ ...record, emptySince: null });
      presence.clearEmptyTimer(name);
    } else {
      const stamp = record.emptySince ?? empty?.stamp ?? Date.now();
      if (record.emptySince !== stamp) await store.putRoom({ ...record, emptySince: stamp });
      if (!presence.hasEmptyTimer(name))
        presence.startEmptyTimer({ ...record, emptySince: stamp }, stamp, Math.max(0, stamp + cfg.emptyRoomTimeoutMs - Date.now()));
    }
    if (room.mediaReset) this.ctx.clients.send({ room: name }, 'media-reset', { call_id: callId, reason: 'state-lost' });
  }

  /**
   * The room's record: what another node restored already (newer), united with what this node
   * remembers, or else the database's call. Its media stays where this node last saw it; when
   * nobody knows where that is, it is this node's if its SFU has the room, or placed anew (the
   * room then negotiates again: mediaReset).
   */
  private async roomRecord(
    name: string,
    callId: string,
    remembered: RoomRecord | undefined,
    existing: RoomRecord | undefined,
    open: OpenCall | undefined,
  ): Promise<{ record: RoomRecord; mediaReset: boolean }> {
    const { nodeId, deps } = this.ctx;
    const mode = existing?.mode ?? remembered?.mode ?? open?.mode ?? 'sfu';
    let mediaNode = remembered?.mediaNode ?? existing?.mediaNode ?? null;
    let mediaReset = false;
    if (existing?.mediaNode && mediaNode && existing.mediaNode !== mediaNode) {
      // A newcomer opened the room anew before its owners restored it: its media goes back to where the others' is.
      await deps.topology
        .media(existing.mediaNode)
        .close(name)
        .catch((err: unknown) => deps.log.warn({ err, room: name }, 'closing the media of a room opened twice failed'));
      mediaReset = true;
    }
    if (mode === 'sfu' && !mediaNode) {
      if (this.hasMedia(name)) mediaNode = nodeId;
      else {
        mediaNode = await this.rooms.admission.openMedia(name, []);
        mediaReset = true;
      }
    }
    const base = existing ?? remembered;
    const roleChanges = { ...remembered?.roleChanges, ...existing?.roleChanges };
    const record: RoomRecord = {
      room: name,
      callId,
      status: base?.status ?? 'active',
      recording: existing?.recording ?? remembered?.recording ?? open?.recording ?? false,
      mode,
      createdAt: base?.createdAt ?? Date.now(),
      removedUsers: [...new Set([...(remembered?.removedUsers ?? []), ...(existing?.removedUsers ?? [])])],
      ...(Object.keys(roleChanges).length > 0 ? { roleChanges } : {}),
      mediaNode,
      emptySince: existing ? existing.emptySince : (remembered?.emptySince ?? null),
    };
    return { record, mediaReset };
  }

  /** The room's open call in the database; undefined when the database does not answer (then this node's memory decides). */
  private async openCall(name: string): Promise<OpenCall | undefined> {
    try {
      return await this.ctx.deps.calls.findOpen(name);
    } catch (err) {
      if (!isDatabaseOutage(err)) throw err;
      this.ctx.deps.log.warn({ room: name }, 'restoring a room while the database is unavailable: from what this node remembers');
      return undefined;
    }
  }

  /** The call of these participants ended while Redis was away: they are told, their rows closed, its media here closed. */
  private async callOver(name: string, callId: string, sessions: Session[], mine: ParticipantRecord[], existing: RoomRecord | undefined): Promise<void> {
    const { clients, deps, nodeId, writes } = this.ctx;
    const gone = new Map<string, string>(mine.map((p) => [p.id, p.userId]));
    for (const s of sessions) {
      clients.send({ connection: s.id }, 'call-state-changed', { call_id: callId, room: name, status: 'ended', recording: false });
      clients.leave(s.id, name);
      const p = s.principal;
      if (s.participantId && p?.kind === 'user') gone.set(s.participantId, p.userId);
    }
    for (const [id, userId] of gone) {
      this.rooms.presence.cancelGrace(id);
      const leftAt = new Date();
      writes.enqueue(id, 'participant left', () => deps.calls.recordLeave(id, leftAt));
      deps.events.emit('participant.left', {
        call_id: callId,
        room: name,
        participant_id: id,
        user_id: userId,
        reason: 'call-ended',
        at: leftAt.toISOString(),
      });
    }
    // Not the timer, the opener's slot or the media of a newer call of the same room.
    if (!existing) {
      this.rooms.presence.clearEmptyTimer(name);
      this.rooms.admission.roomEnded(name);
    }
    if (this.hasMedia(name) && existing?.mediaNode !== nodeId) await deps.topology.media(nodeId).close(name);
    deps.log.info({ room: name, call: callId, participants: gone.size }, 'the call ended while Redis was away: not restored');
  }
}
