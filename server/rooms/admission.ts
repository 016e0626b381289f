import { randomUUID } from 'node:crypto';
import { AppError } from '../errors';
import type { AckResult, IceServer, Payload, RoomState } from '../protocol';
import { turnCredentials } from '../media/turn';
import type { Session } from './clients';
import type { RoomContext } from './context';
import { mayCreateRoom } from './policy';
import type { Presence } from './presence';
import { participantState, type ParticipantRecord, type RoomRecord } from './store';

type User = ReturnType<RoomContext['user']>;

/**
 * Joining a room: opening its call (and placing its media) when it has none,
 * resuming a participant within its grace period, one identity per room, and
 * the limits (MAX_ROOMS, MAX_PARTICIPANTS_PER_ROOM).
 */
export class Admission {
  /** Rooms being opened right now (counted against MAX_ROOMS). */
  private opening = 0;
  /** Connections with a join in flight. */
  private readonly joining = new Set<string>();

  constructor(
    private readonly ctx: RoomContext,
    private readonly presence: Presence,
  ) {}

  async join(session: Session, payload: Payload<'join'>): Promise<AckResult<'join'>> {
    const principal = this.ctx.user(session);
    if (this.ctx.node.draining) throw new AppError('SERVER_DRAINING');
    // Past the write-behind bound (a long database outage) nobody new is seated: their rows could not be kept.
    this.ctx.writes.assertAccepting();
    // One join at a time per connection: two in flight (to different rooms'
    // locks) would both pass the check below and seat the connection in both rooms.
    if (this.joining.has(session.id)) throw new AppError('ALREADY_JOINED', 'this connection is joining a room already');
    this.joining.add(session.id);
    try {
      if (session.participantId) {
        const still = await this.ctx.joined(session).then(
          () => true,
          () => false,
        );
        if (still) throw new AppError('ALREADY_JOINED');
      }
      if (principal.room !== undefined && principal.room !== payload.room) throw new AppError('ROOM_SCOPE_MISMATCH');
      return await this.ctx.locks.run(payload.room, () => this.joinLocked(session, principal, payload));
    } finally {
      this.joining.delete(session.id);
    }
  }

  private async joinLocked(session: Session, principal: User, payload: Payload<'join'>): Promise<AckResult<'join'>> {
    const { store, deps, cfg } = this.ctx;
    const room = (await store.getRoom(payload.room)) ?? (await this.open(payload.room, principal, payload.mode ?? 'sfu'));
    if (room.removedUsers.includes(principal.userId)) throw new AppError('REMOVED_FROM_CALL');
    if (room.emptySince !== null) {
      // Its end was scheduled (here or on another node): someone is back.
      room.emptySince = null;
      await store.putRoom(room);
    }

    const participants = await store.listParticipants(room.room);
    const same = participants.find((p) => p.userId === principal.userId);
    if (same && (same.socketId === null || same.tokenId === principal.tokenId)) {
      // Reconnection (or a second connection with the same token): take over the
      // participant, its id and its place; the others see nothing.
      const previous = same.socketId;
      this.presence.cancelGrace(same.id);
      same.socketId = session.id;
      same.nodeId = this.ctx.nodeId;
      same.disconnectedAt = null;
      await store.putParticipant(same);
      if (previous && previous !== session.id) this.presence.kick(previous, room.callId, 'replaced', null);
      return this.admit(session, room, same, true);
    }
    if (participants.length - (same ? 1 : 0) >= cfg.maxParticipantsPerRoom) {
      throw new AppError('ROOM_FULL', `the room is full (${cfg.maxParticipantsPerRoom} participants)`);
    }
    // One identity per room (LiveKit's rule): a new session of the same user replaces the old one.
    if (same) await this.presence.removeLocked(room, same, 'replaced', null);

    const me: ParticipantRecord = {
      id: randomUUID(),
      room: room.room,
      userId: principal.userId,
      displayName: payload.display_name ?? principal.name ?? null,
      // A role a host changed in this call wins over the token's claim.
      role: room.roleChanges?.[principal.userId] ?? principal.role,
      tokenId: principal.tokenId,
      canPublish: principal.canPublish,
      socketId: session.id,
      capabilities: payload.capabilities ?? {},
      mutedTracks: [],
      lockedTracks: [],
      heldTracks: [],
      joinedAt: Date.now(),
      clientIp: session.clientIp,
      nodeId: this.ctx.nodeId,
      disconnectedAt: null,
    };
    await store.putParticipant(me);
    const callId = room.callId;
    this.ctx.writes.enqueue(me.id, 'participant joined', () =>
      deps.calls.recordJoin({
        id: me.id,
        callId,
        userId: me.userId,
        displayName: me.displayName,
        role: me.role,
        clientIp: me.clientIp,
        joinedAt: new Date(me.joinedAt),
        metadata: { capabilities: me.capabilities },
      }),
    );
    this.ctx.clients.send({ room: room.room }, 'peer-joined', { call_id: callId, participant: participantState(me) }, { connection: session.id });
    deps.events.emit('participant.joined', {
      call_id: callId,
      room: room.room,
      participant_id: me.id,
      user_id: me.userId,
      display_name: me.displayName,
      role: me.role,
      at: new Date(me.joinedAt).toISOString(),
    });
    return this.admit(session, room, me, false);
  }

  /**
   * Under the room's lock: opens the call of a room that has none (when the token may) and places its media.
   * MAX_ROOMS counts rooms being opened too: with only per-room locks, concurrent
   * openings of different rooms would all pass the check. Each opener takes a
   * ticket synchronously (the openings already in flight when it arrived) and
   * counts them with the rooms open; the database call stays outside any
   * node-wide lock, so openings run in parallel.
   */
  private async open(name: string, principal: User, mode: 'sfu' | 'p2p'): Promise<RoomRecord> {
    const { store, deps, cfg } = this.ctx;
    const mine = await this.roomsOpenedBy(principal.userId);
    // Past MAX_ROOMS_PER_USER a user may still join calls in progress, not create more. The
    // slot is taken synchronously after the check, so concurrent openings count.
    const underQuota = mine.size < cfg.maxRoomsPerUser;
    const mayCreate = mayCreateRoom(principal.role, cfg.autoCreateRooms);
    if (underQuota) this.take(principal.userId, name);
    let created = false;
    const ticket = this.opening++;
    this.inFlight.add(name);
    try {
      if ((await store.countRooms()) + ticket >= cfg.maxRooms) throw new AppError('TOO_MANY_ROOMS');
      const call = await deps.calls.openForRoom(name, mayCreate && underQuota, mode);
      if (!call && mayCreate) throw new AppError('ROOM_QUOTA_EXCEEDED');
      if (!call) throw new AppError('CALL_NOT_FOUND', 'this room has no call in progress, and this token may not start one');
      // Only a call this join created counts (one created over REST is the backend's).
      created = call.created;
      // The room's media goes to the least-loaded node, which may not be this one.
      const mediaNode = call.mode === 'sfu' ? await this.openMedia(name, []) : null;
      const room: RoomRecord = {
        room: name,
        callId: call.id,
        status: 'active',
        recording: call.recording,
        mode: call.mode,
        createdAt: Date.now(),
        removedUsers: [],
        mediaNode,
        emptySince: null,
      };
      await store.putRoom(room);
      return room;
    } finally {
      this.opening--;
      this.inFlight.delete(name);
      if (underQuota && !created) this.roomEnded(name);
    }
  }

  /** Rooms each user opened by joining on this node, and who opened each (MAX_ROOMS_PER_USER). */
  private readonly openedBy = new Map<string, Set<string>>();
  private readonly openerOf = new Map<string, string>();
  /** Rooms being opened (not in the store yet). */
  private readonly inFlight = new Set<string>();

  private take(userId: string, room: string): void {
    const mine = this.openedBy.get(userId) ?? new Set<string>();
    mine.add(room);
    this.openedBy.set(userId, mine);
    this.openerOf.set(room, userId);
  }

  /** A room's call ended (or its opening failed): its slot is free again. */
  roomEnded(room: string): void {
    const userId = this.openerOf.get(room);
    if (userId === undefined) return;
    this.openerOf.delete(room);
    const mine = this.openedBy.get(userId);
    mine?.delete(room);
    if (mine?.size === 0) this.openedBy.delete(userId);
  }

  /** The rooms `userId` opened here that are still in progress. */
  private async roomsOpenedBy(userId: string): Promise<ReadonlySet<string>> {
    const mine = this.openedBy.get(userId);
    if (!mine || mine.size < this.ctx.cfg.maxRoomsPerUser) return mine ?? new Set();
    // A call can end on another node (REST, its empty-room timer): check the store when it matters.
    for (const room of [...mine]) {
      if (!this.inFlight.has(room) && !(await this.ctx.store.getRoom(room)) && this.openerOf.get(room) === userId) this.roomEnded(room);
    }
    return this.openedBy.get(userId) ?? new Set();
  }

  private async admit(session: Session, room: RoomRecord, me: ParticipantRecord, resumed: boolean): Promise<AckResult<'join'>> {
    session.room = room.room;
    session.participantId = me.id;
    if (session.disconnected) {
      // It went away while its join was in flight, when its disconnect had
      // nothing to clean up: handle that now (we hold the room's lock), or it
      // would stay in the room as connected for good. Nobody reads this ack.
      await this.presence.droppedLocked(room.room, me.id, session.id);
      return { participant_id: me.id, room_state: await this.roomState(room, me.userId), resumed };
    }
    await this.ctx.clients.enter(session, room.room, me.id);
    this.presence.clearEmptyTimer(room.room);
    const room_state = await this.roomState(room, me.userId);
    this.ctx.clients.send({ connection: session.id }, 'joined', { participant_id: me.id, room_state });
    this.ctx.refreshGauges();
    return { participant_id: me.id, room_state, resumed };
  }

  /** Places a room's media and opens it there; a node that turns out gone (its registry entry lagging) is skipped. */
  async openMedia(room: string, exclude: string[]): Promise<string> {
    const { topology, log } = this.ctx.deps;
    const tried = [...exclude];
    for (let attempt = 0; ; attempt++) {
      const node = await topology.placeRoom(tried);
      try {
        await topology.media(node).open(room);
        return node;
      } catch (err) {
        if (attempt >= 2 || !(err instanceof AppError && err.code === 'MEDIA_UNAVAILABLE')) throw err;
        log.warn({ room, node }, 'media node unavailable; placing the room elsewhere');
        tried.push(node);
      }
    }
  }

  /** The configured ICE servers, plus TURN with per-user time-limited credentials when TURN is set up. */
  private iceServersFor(userId: string): IceServer[] {
    const { turn, cfg } = this.ctx.deps;
    if (turn.urls.length === 0 || !turn.secret) return cfg.iceServers;
    return [...cfg.iceServers, { urls: turn.urls, ...turnCredentials(turn.secret, userId, turn.ttlSeconds) }];
  }

  private async roomState(room: RoomRecord, userId: string): Promise<RoomState> {
    const participants = await this.ctx.store.listParticipants(room.room);
    return {
      call_id: room.callId,
      room: room.room,
      status: room.status,
      recording: room.recording,
      mode: room.mode,
      participants: participants.sort((a, b) => a.joinedAt - b.joinedAt).map(participantState),
      producers:
        room.mode === 'sfu' && room.mediaNode
          ? await this.ctx
              .mediaOf(room)
              .producers(room.room)
              .catch(() => [])
          : [],
      ice_servers: this.iceServersFor(userId),
    };
  }
}
