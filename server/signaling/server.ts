import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { Server, type ServerOptions, type Socket } from 'socket.io';
import type { Principal } from '../auth/roles';
import type { TokenService } from '../auth/tokens';
import type { CallService } from '../calls/service';
import type { DomainEvents } from '../events';
import type { InboxEntry, InvitationRow, InvitationService } from '../calls/invitations';
import type { Config } from '../config/config';
import { AppError } from '../errors';
import type { Metrics } from '../metrics/metrics';
import { compileTrust, forwardedClientIp, unmapIp, type TrustFn } from '../http/trustProxy';
import type { RoomLocks } from './keyedMutex';
import type { Topology } from './topology';
import { applyHold, applyMute, authorize, callIdMismatch, mayCreateRoom, validateDtmf } from './policy';
import {
  CLIENT_EVENTS,
  SOURCE_TRACK,
  TRACKS,
  type ClientEvent,
  type ClientToServerEvents,
  type LeaveReason,
  type ParticipantState,
  type Payload,
  type RoomState,
  type Sender,
  type ServerToClientEvents,
} from '../protocol';
import { TokenBucket } from './rateLimiter';
import type { ParticipantRecord, RoomRecord, RoomStore } from './roomStore';
import { compileValidators, type PayloadValidators } from './validate';
import { WriteBehind } from './writeBehind';
import type { Sfu } from '../media/sfu';
import type { MediaService } from '../media/mediaService';
import { turnCredentials } from '../media/turn';
import type { RecordingMode } from '../protocol';
import type { FinishedRecording, Recorder } from '../recording/recorder';

/**
 * The signaling server: Socket.IO on the HTTP server's port, speaking the
 * protocol of server/protocol. Room state lives behind RoomStore; room changes run
 * under a per-room lock; the database is written behind (WriteBehind) and never
 * awaited on the relay path (offer, answer, ice-candidate).
 */
interface SocketData {
  principal?: Principal;
  room?: string;
  participantId?: string;
}
type IO = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type Sock = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type User = Extract<Principal, { kind: 'user' }>;
type Handler = (socket: Sock, payload: never) => Promise<object>;

export interface SignalingDeps {
  httpServer: HttpServer;
  sfu: Sfu;
  recorder: Recorder;
  config: Config;
  tokens: TokenService;
  calls: CallService;
  store: RoomStore;
  metrics: Metrics;
  log: FastifyBaseLogger;
  /** One node, or a cluster sharing Redis. */
  topology: Topology;
  invitations: InvitationService;
  /** Integrations (webhooks) listen here. */
  events?: DomainEvents;
  /** The Socket.IO adapter (Redis in a cluster); unset: in memory. */
  adapter?: ServerOptions['adapter'];
}

const roomKey = (room: string) => `room:${room}`;
/** Every socket of a participant joins this Socket.IO room, so media notifications find its current socket. */
const participantKey = (participantId: string) => `p:${participantId}`;
/** Every connection of a user joins this Socket.IO room: invitations and the inbox reach all its devices, on any node. */
const userKey = (userId: string) => `u:${userId}`;
const KNOWN = new Set<string>(CLIENT_EVENTS);

function connectError(code: string, message: string): Error {
  return Object.assign(new Error(message), { data: { code, message } });
}

function normaliseIp(ip: string | undefined): string | null {
  return ip ? unmapIp(ip) : null;
}

export function participantState(p: ParticipantRecord): ParticipantState {
  return {
    participant_id: p.id,
    user_id: p.userId,
    display_name: p.displayName,
    role: p.role,
    muted_tracks: p.mutedTracks,
    locked_tracks: p.lockedTracks,
    held_tracks: p.heldTracks,
    connected: p.socketId !== null,
    capabilities: p.capabilities,
    joined_at: new Date(p.joinedAt).toISOString(),
  };
}

export class SignalingServer {
  readonly io: IO;
  private readonly cfg: Config['signaling'];
  private get locks(): RoomLocks {
    return this.deps.topology.locks;
  }
  private get nodeId(): string {
    return this.deps.topology.nodeId;
  }
  /** Draining with another node to take over: dropped sessions keep their place (they resume elsewhere). */
  private handingOff = false;
  private closing = false;
  /** Rooms being opened right now (counted against MAX_ROOMS). */
  private opening = 0;
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();
  private readonly emptyTimers = new Map<string, NodeJS.Timeout>();
  private readonly authTimers = new Map<string, NodeJS.Timeout>();
  /** Ringing invitations timed on this node. */
  private readonly inviteTimers = new Map<string, NodeJS.Timeout>();
  private readonly purgeTimer: NodeJS.Timeout;
  /** Sockets with a join in flight. */
  private readonly joining = new Set<string>();
  private readonly writes: WriteBehind;
  private readonly validate: PayloadValidators;
  private readonly handlers: Record<ClientEvent, Handler>;
  private connections = 0;
  private draining = false;
  /** TRUST_PROXY: which peers' X-Forwarded-For is believed (Fastify's request.ip uses the same rule). */
  private readonly trustProxy: TrustFn;
  /** This node's SFU (the rooms whose media it carries). */
  get sfu(): Sfu {
    return this.deps.sfu;
  }

  /** The media service of a room's media node (this node's for a p2p room: nothing there). */
  private mediaOf(room: RoomRecord): MediaService {
    return this.deps.topology.media(room.mediaNode ?? this.nodeId);
  }

  constructor(private readonly deps: SignalingDeps) {
    const { config } = deps;
    this.cfg = config.signaling;
    this.trustProxy = compileTrust(config.trustProxy);
    this.validate = compileValidators({ maxSdpBytes: this.cfg.maxSdpBytes });
    this.writes = new WriteBehind(deps.log, () => deps.metrics.dbWriteFailures.inc());
    this.io = new Server(deps.httpServer, {
      serveClient: false,
      ...(deps.adapter ? { adapter: deps.adapter } : {}),
      maxHttpBufferSize: this.cfg.maxMessageBytes,
      cors: config.corsOrigins === '*' ? { origin: true } : config.corsOrigins.length ? { origin: config.corsOrigins } : undefined,
    });
    this.handlers = {
      auth: (s, p) => this.onAuth(s, p),
      join: (s, p) => this.onJoin(s, p),
      leave: (s, p) => this.onLeave(s, p),
      offer: (s, p) => this.relay(s, 'offer', p),
      answer: (s, p) => this.relay(s, 'answer', p),
      'ice-candidate': (s, p) => this.relay(s, 'ice-candidate', p),
      mute: (s, p) => this.onMute(s, p, true),
      unmute: (s, p) => this.onMute(s, p, false),
      hold: (s, p) => this.onHold(s, p, true),
      unhold: (s, p) => this.onHold(s, p, false),
      dtmf: (s, p) => this.onDtmf(s, p),
      'remove-participant': (s, p) => this.onRemove(s, p),
      'end-call': (s, p) => this.onEndCall(s, p),
      'set-role': (s, p) => this.onSetRole(s, p),
      'get-router-rtp-capabilities': async (s) => {
        const { room, media } = await this.sfuRoom(s);
        return { rtp_capabilities: await media.rtpCapabilities(room.room) };
      },
      'create-transport': async (s, p: Payload<'create-transport'>) => {
        const { room, media, me } = await this.sfuRoom(s);
        return media.createTransport(room.room, me.id, p.direction);
      },
      'connect-transport': async (s, p: Payload<'connect-transport'>) => {
        const { room, media, me } = await this.sfuRoom(s);
        await media.connectTransport(room.room, me.id, p.transport_id, p.dtls_parameters);
        return {};
      },
      'restart-ice': async (s, p: Payload<'restart-ice'>) => {
        const { room, media, me } = await this.sfuRoom(s);
        return { ice_parameters: await media.restartIce(room.room, me.id, p.transport_id) };
      },
      produce: (s, p) => this.onProduce(s, p),
      consume: async (s, p: Payload<'consume'>) => {
        const { room, media, me } = await this.sfuRoom(s);
        return media.consume(room.room, me.id, { transportId: p.transport_id, producerId: p.producer_id, rtpCapabilities: p.rtp_capabilities });
      },
      'resume-consumer': async (s, p: Payload<'resume-consumer'>) => {
        const { room, media, me } = await this.sfuRoom(s);
        await media.resumeConsumer(room.room, me.id, p.consumer_id, me.heldTracks);
        return {};
      },
      'pause-producer': (s, p) => this.onProducerPause(s, p, true),
      'resume-producer': (s, p) => this.onProducerPause(s, p, false),
      'close-producer': async (s, p: Payload<'close-producer'>) => {
        const { room, media, me } = await this.sfuRoom(s);
        await media.closeProducer(room.room, me.id, p.producer_id);
        return {};
      },
      'set-preferred-layers': async (s, p: Payload<'set-preferred-layers'>) => {
        const { room, media, me } = await this.sfuRoom(s);
        await media.setPreferredLayers(room.room, me.id, p.consumer_id, p.spatial_layer, p.temporal_layer);
        return {};
      },
      'start-recording': async (s, p: { call_id: string; mode?: RecordingMode }) => {
        const { room, me } = await this.joined(s, p.call_id);
        authorize((await this.current(room.room, me.id)).role, 'record');
        return this.mediaOf(room).startRecording(room.room, room.callId, me.id, p.mode);
      },
      invite: async (s, p: Payload<'invite'>) => {
        const { room, me } = await this.joined(s, p.call_id);
        authorize((await this.current(room.room, me.id)).role, 'invite');
        if (p.user_ids.includes(me.userId)) throw new AppError('CANNOT_TARGET_SELF', 'you cannot invite yourself');
        return this.invite(room.callId, room.room, p.user_ids, { user_id: me.userId, display_name: me.displayName }, p.timeout_seconds);
      },
      accept: (s, p: { invitation_id: string }) => this.answer(s, p.invitation_id, 'accepted'),
      decline: (s, p: { invitation_id: string; reason?: string }) => this.answer(s, p.invitation_id, 'declined', p.reason),
      'ack-inbox': async (s, p: { ids: string[] }) => ({ acked: await this.deps.invitations.ack(this.user(s).userId, p.ids) }),
      message: (s, p: Payload<'message'>) => this.onMessage(s, p),
      'stop-recording': async (s, p: { call_id: string }) => {
        const { room, me } = await this.joined(s, p.call_id);
        authorize((await this.current(room.room, me.id)).role, 'record');
        const finished = await this.mediaOf(room).stopRecording(room.room, 'stopped');
        return finished ? { stopped: true, recording: finished } : { stopped: false };
      },
    };
    deps.sfu.notifier = {
      toParticipant: (_room, participantId, event, payload) => this.io.to(participantKey(participantId)).emit(event as 'transport-state', payload as never),
      toRoom: (room, event, payload, except) => {
        const to = this.io.to(roomKey(room));
        (except ? to.except(participantKey(except)) : to).emit(event as 'new-producer', payload as never);
      },
      mediaReset: (room) => {
        void this.locks
          .run(room, async () => {
            const r = await deps.store.getRoom(room);
            if (r) this.io.to(roomKey(room)).emit('media-reset', { call_id: r.callId, reason: 'worker-died' });
          })
          .catch((err: unknown) => deps.log.error({ err }, 'announcing a media reset failed'));
      },
    };
    // Acknowledged and expired inbox items are purged hourly.
    this.purgeTimer = setInterval(() => void deps.invitations.purge().catch((err: unknown) => deps.log.warn({ err }, 'purging inboxes failed')), 3_600_000);
    this.purgeTimer.unref();
    this.io.use((socket, next) => this.handshake(socket, next));
    this.io.on('connection', (socket) => this.onConnection(socket));
    deps.calls.on('call-state-changed', (c) => {
      if (c.status === 'ended') void this.endRoom(c.roomId, c.id).catch((err: unknown) => deps.log.error({ err }, 'ending room failed'));
      else {
        void this.locks
          .run(c.roomId, async () => {
            const room = await deps.store.getRoom(c.roomId);
            // Only real changes: a room is stored already active when its call opens.
            if (!room || room.callId !== c.id || (room.status === c.status && room.recording === c.recording)) return;
            await deps.store.putRoom({ ...room, status: c.status, recording: c.recording });
            this.io.to(roomKey(c.roomId)).emit('call-state-changed', { call_id: c.id, room: c.roomId, status: c.status, recording: c.recording });
          })
          .catch((err: unknown) => deps.log.error({ err }, 'announcing a call state failed'));
      }
    });
  }

  // ---- connection ------------------------------------------------------------------
  private handshake(socket: Sock, next: (err?: Error) => void): void {
    if (this.draining) return next(connectError('SERVER_DRAINING', 'this node is shutting down; connect again'));
    if (this.connections >= this.cfg.maxConnections) return next(connectError('SERVER_FULL', 'this node has reached MAX_CONNECTIONS'));
    const token: unknown = (socket.handshake.auth as Record<string, unknown> | undefined)?.token;
    if (token !== undefined) {
      if (typeof token !== 'string') return next(connectError('TOKEN_MALFORMED', 'auth.token must be a string'));
      try {
        socket.data.principal = this.deps.tokens.principal(token);
      } catch (err) {
        const e = err instanceof AppError ? err : new AppError('TOKEN_MALFORMED');
        this.deps.metrics.errors.inc({ code: e.code });
        return next(connectError(e.code, e.message));
      }
    }
    next();
  }

  private onConnection(socket: Sock): void {
    this.connections++;
    this.deps.metrics.connections.inc();
    if (socket.data.principal) void this.reachable(socket);
    const bucket = new TokenBucket(this.cfg.rateLimitPerSecond, this.cfg.rateLimitBurst);
    if (!socket.data.principal) {
      const timer = setTimeout(() => {
        if (socket.data.principal) return;
        this.deps.metrics.errors.inc({ code: 'AUTH_TIMEOUT' });
        socket.emit('signaling-error', { code: 'AUTH_TIMEOUT', message: `not authenticated within ${this.cfg.authTimeoutMs} ms` });
        socket.disconnect(true);
      }, this.cfg.authTimeoutMs);
      this.authTimers.set(socket.id, timer);
    }
    for (const event of CLIENT_EVENTS) {
      socket.on(event, (...args: unknown[]) => void this.dispatch(socket, bucket, event, args));
    }
    socket.onAny((raw: unknown, ...args: unknown[]) => {
      // The Socket.IO protocol also allows numeric event names: a string from here on.
      const event = String(raw);
      if (typeof raw === 'string' && KNOWN.has(event)) return;
      this.deps.metrics.messages.inc({ type: 'unknown' });
      // Unknown events are messages too: they take from the socket's bucket.
      const err = bucket.take()
        ? new AppError('UNKNOWN_EVENT', `unknown event ${JSON.stringify(event).slice(0, 80)}`)
        : new AppError('RATE_LIMITED');
      this.fail(socket, event, args.at(-1), err);
    });
    socket.on('disconnect', () => {
      this.connections--;
      this.deps.metrics.connections.dec();
      clearTimeout(this.authTimers.get(socket.id));
      this.authTimers.delete(socket.id);
      this.onDisconnect(socket);
    });
  }

  private async dispatch(socket: Sock, bucket: TokenBucket, event: ClientEvent, args: unknown[]): Promise<void> {
    const ack = typeof args.at(-1) === 'function' ? (args.pop() as (r: unknown) => void) : undefined;
    this.deps.metrics.messages.inc({ type: event });
    try {
      if (!bucket.take()) throw new AppError('RATE_LIMITED');
      if (event !== 'auth' && !socket.data.principal) throw new AppError('AUTH_REQUIRED', 'authenticate first (auth.token in the handshake, or the auth message)');
      const payload = args[0];
      this.validate[event](payload);
      const result = await this.handlers[event](socket, payload as never);
      ack?.({ ok: true, ...result });
    } catch (err) {
      this.fail(socket, event, ack, err);
    }
  }

  private fail(socket: Sock, event: string, ack: unknown, err: unknown): void {
    let e: AppError;
    if (err instanceof AppError) e = err;
    else {
      this.deps.log.error({ err, event }, 'signaling handler failed');
      e = new AppError('INTERNAL_ERROR');
    }
    this.deps.metrics.errors.inc({ code: e.code });
    if (typeof ack === 'function') (ack as (r: unknown) => void)({ error: { code: e.code, message: e.message } });
    else socket.emit('signaling-error', { code: e.code, message: e.message, event: event.slice(0, 80) });
  }

  private user(socket: Sock): User {
    const p = socket.data.principal;
    if (!p || p.kind !== 'user') throw new AppError('AUTH_REQUIRED');
    return p;
  }

  /** The room and participant this socket is joined as; NOT_JOINED when it is not (any more). */
  private async joined(socket: Sock, callId?: string): Promise<{ room: RoomRecord; me: ParticipantRecord }> {
    const { room, participantId } = socket.data;
    if (room && participantId) {
      const [r, me] = await Promise.all([this.deps.store.getRoom(room), this.deps.store.getParticipant(room, participantId)]);
      if (r && me && me.socketId === socket.id) {
        if (callId !== undefined && callId !== r.callId) throw callIdMismatch();
        return { room: r, me };
      }
      socket.data.room = undefined;
      socket.data.participantId = undefined;
    }
    throw new AppError('NOT_JOINED');
  }

  /** Under the room's lock: the acting participant, as stored now (its role may have changed). */
  private async current(room: string, participantId: string): Promise<ParticipantRecord> {
    const p = await this.deps.store.getParticipant(room, participantId);
    if (!p) throw new AppError('NOT_JOINED');
    return p;
  }

  /** Under the room's lock: the acting participant and the one it acts on. */
  private async actorAndTarget(room: string, actorId: string, targetId: string): Promise<[ParticipantRecord, ParticipantRecord]> {
    const [actor, target] = await Promise.all([this.current(room, actorId), this.deps.store.getParticipant(room, targetId)]);
    if (!target) throw new AppError('PARTICIPANT_NOT_FOUND', `no participant ${targetId} in this room`);
    return [actor, target];
  }

  private async refreshGauges(): Promise<void> {
    this.deps.metrics.rooms.set(await this.deps.store.countRooms());
    this.deps.metrics.participants.set(await this.deps.store.countAllParticipants());
  }

  // ---- auth and join ----------------------------------------------------------------------
  private async onAuth(socket: Sock, { token }: { token: string }): Promise<object> {
    const principal = this.deps.tokens.principal(token);
    if (principal.kind !== 'user') throw new AppError('TOKEN_CLAIM_INVALID', 'not a user token');
    const current = socket.data.principal;
    // Re-authenticating refreshes the token of the same user; it cannot switch users.
    if (current && current.kind === 'user' && current.userId !== principal.userId) {
      throw new AppError('ALREADY_AUTHENTICATED');
    }
    const first = !current;
    socket.data.principal = principal;
    clearTimeout(this.authTimers.get(socket.id));
    this.authTimers.delete(socket.id);
    if (first) void this.reachable(socket);
    return { user_id: principal.userId, role: principal.role, room: principal.room ?? null };
  }

  private async onJoin(socket: Sock, payload: Payload<'join'>): Promise<object> {
    const principal = this.user(socket);
    if (this.draining) throw new AppError('SERVER_DRAINING');
    // One join at a time per connection: two in flight (to different rooms'
    // locks) would both pass the check below and seat the socket in both rooms.
    if (this.joining.has(socket.id)) throw new AppError('ALREADY_JOINED', 'this connection is joining a room already');
    this.joining.add(socket.id);
    try {
      if (socket.data.participantId) {
        const still = await this.joined(socket).then(() => true, () => false);
        if (still) throw new AppError('ALREADY_JOINED');
      }
      if (principal.room !== undefined && principal.room !== payload.room) {
        throw new AppError('ROOM_SCOPE_MISMATCH');
      }
      return await this.locks.run(payload.room, () => this.joinLocked(socket, principal, payload));
    } finally {
      this.joining.delete(socket.id);
    }
  }

  private async joinLocked(socket: Sock, principal: User, payload: Payload<'join'>): Promise<object> {
    const { store, calls } = this.deps;
    let room = await store.getRoom(payload.room);
    if (!room) {
      // MAX_ROOMS counts rooms being opened too: with only per-room locks,
      // concurrent openings of different rooms would all pass the check. Each
      // opener takes a ticket synchronously (the openings already in flight
      // when it arrived) and counts them with the rooms open; the database
      // call stays outside any node-wide lock, so openings run in parallel.
      const ticket = this.opening++;
      try {
        if ((await store.countRooms()) + ticket >= this.cfg.maxRooms) throw new AppError('TOO_MANY_ROOMS');
        const call = await calls.openForRoom(payload.room, mayCreateRoom(principal.role, this.cfg.autoCreateRooms), payload.mode ?? 'sfu');
        if (!call) throw new AppError('CALL_NOT_FOUND', 'this room has no call in progress, and this token may not start one');
        // The room's media goes to the least-loaded node, which may not be this one.
        let mediaNode: string | null = null;
        if (call.mode === 'sfu') mediaNode = await this.openMedia(payload.room, []);
        room = { room: payload.room, callId: call.id, status: 'active', recording: call.recording, mode: call.mode, createdAt: Date.now(), removedUsers: [], mediaNode, emptySince: null };
        await store.putRoom(room);
      } finally {
        this.opening--;
      }
    }
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
      const previousSocket = same.socketId;
      this.cancelGrace(same.id);
      same.socketId = socket.id;
      same.nodeId = this.nodeId;
      same.disconnectedAt = null;
      await store.putParticipant(same);
      if (previousSocket && previousSocket !== socket.id) this.kick(previousSocket, room.callId, 'replaced', null);
      return this.admit(socket, room, same, true);
    }
    if (participants.length - (same ? 1 : 0) >= this.cfg.maxParticipantsPerRoom) {
      throw new AppError('ROOM_FULL', `the room is full (${this.cfg.maxParticipantsPerRoom} participants)`);
    }
    // One identity per room (LiveKit's rule): a new session of the same user replaces the old one.
    if (same) await this.removeLocked(room, same, 'replaced', null);

    const me: ParticipantRecord = {
      id: randomUUID(),
      room: room.room,
      userId: principal.userId,
      displayName: payload.display_name ?? principal.name ?? null,
      role: principal.role,
      tokenId: principal.tokenId,
      canPublish: principal.canPublish,
      socketId: socket.id,
      capabilities: payload.capabilities ?? {},
      mutedTracks: [],
      lockedTracks: [],
      heldTracks: [],
      joinedAt: Date.now(),
      clientIp: this.clientIp(socket),
      nodeId: this.nodeId,
      disconnectedAt: null,
    };
    await store.putParticipant(me);
    const callId = room.callId;
    this.writes.enqueue(me.id, 'participant joined', () =>
      calls.recordJoin({ id: me.id, callId, userId: me.userId, displayName: me.displayName, role: me.role, clientIp: me.clientIp, joinedAt: new Date(me.joinedAt), metadata: { capabilities: me.capabilities } }),
    );
    socket.to(roomKey(room.room)).emit('peer-joined', { call_id: callId, participant: participantState(me) });
    this.deps.events?.emit('participant.joined', { call_id: callId, room: room.room, participant_id: me.id, user_id: me.userId, display_name: me.displayName, role: me.role, at: new Date(me.joinedAt).toISOString() });
    return this.admit(socket, room, me, false);
  }

  private async admit(socket: Sock, room: RoomRecord, me: ParticipantRecord, resumed: boolean): Promise<object> {
    socket.data.room = room.room;
    socket.data.participantId = me.id;
    if (socket.disconnected) {
      // It went away while its join was in flight, when its disconnect had
      // nothing to clean up: handle that now (we hold the room's lock), or it
      // would stay in the room as connected for good.
      await this.droppedLocked(room.room, me.id, socket.id);
      return { participant_id: me.id, resumed };
    }
    await socket.join([roomKey(room.room), participantKey(me.id)]);
    this.clearEmptyTimer(room.room);
    const room_state = await this.roomState(room, me.userId);
    socket.emit('joined', { participant_id: me.id, room_state });
    void this.refreshGauges();
    return { participant_id: me.id, room_state, resumed };
  }

  /** Places a room's media and opens it there; a node that turns out gone (its registry entry lagging) is skipped. */
  private async openMedia(room: string, exclude: string[]): Promise<string> {
    const tried = [...exclude];
    for (let attempt = 0; ; attempt++) {
      const node = await this.deps.topology.placeRoom(tried);
      try {
        await this.deps.topology.media(node).open(room);
        return node;
      } catch (err) {
        if (attempt >= 2 || !(err instanceof AppError && err.code === 'MEDIA_UNAVAILABLE')) throw err;
        this.deps.log.warn({ room, node }, 'media node unavailable; placing the room elsewhere');
        tried.push(node);
      }
    }
  }

  /** The configured ICE servers, plus TURN with per-user time-limited credentials when TURN is set up. */
  private iceServersFor(userId: string): RoomState['ice_servers'] {
    const { turn } = this.deps.config;
    if (turn.urls.length === 0 || !turn.secret) return this.cfg.iceServers;
    return [...this.cfg.iceServers, { urls: turn.urls, ...turnCredentials(turn.secret, userId, turn.ttlSeconds) }];
  }

  private async roomState(room: RoomRecord, userId: string): Promise<RoomState> {
    const participants = await this.deps.store.listParticipants(room.room);
    return {
      call_id: room.callId,
      room: room.room,
      status: room.status,
      recording: room.recording,
      mode: room.mode,
      participants: participants.sort((a, b) => a.joinedAt - b.joinedAt).map(participantState),
      producers: room.mode === 'sfu' && room.mediaNode ? await this.mediaOf(room).producers(room.room).catch(() => []) : [],
      ice_servers: this.iceServersFor(userId),
    };
  }

  /** The socket's peer, or the client a trusted proxy names in X-Forwarded-For (server/http/trustProxy.ts). */
  private clientIp(socket: Sock): string | null {
    const forwarded = normaliseIp(forwardedClientIp(socket.handshake.address, socket.handshake.headers['x-forwarded-for'], this.trustProxy));
    // Not an address (a proxy passed on garbage): the peer's, since client_ip is an inet column.
    return forwarded && isIP(forwarded) ? forwarded : normaliseIp(socket.handshake.address);
  }

  // ---- leaving ---------------------------------------------------------------------------------
  private async onLeave(socket: Sock, payload: Payload<'leave'>): Promise<object> {
    const { room, me } = await this.joined(socket, payload.call_id);
    await this.locks.run(room.room, async () => {
      const current = await this.deps.store.getParticipant(room.room, me.id);
      if (current) await this.removeLocked(room, current, 'left', null);
    });
    return {};
  }

  /** Takes a participant out of its room (under the room's lock) and tells the others. */
  private async removeLocked(room: RoomRecord, p: ParticipantRecord, reason: LeaveReason, by: string | null, message?: string): Promise<void> {
    const { store, calls } = this.deps;
    await store.deleteParticipant(room.room, p.id);
    this.cancelGrace(p.id);
    // The room as stored now (the caller's copy may predate a media move).
    room = (await store.getRoom(room.room)) ?? room;
    // Shutting down, another node's media is left to that node: its transports close by
    // themselves when the client goes (DTLS), and that node may be shutting down too.
    if (room.mediaNode && !(this.closing && room.mediaNode !== this.nodeId)) {
      // Its recording is finalised while its media still flows, then its media closes.
      const media = this.mediaOf(room);
      const warn = (err: unknown) => this.deps.log.warn({ err, room: room.room }, 'closing a leaving participant\'s media failed');
      await media.participantLeaving(room.room, p.id).catch(warn);
      await media.closePeer(room.room, p.id).catch(warn);
    }
    this.writes.enqueue(p.id, 'participant left', () => calls.recordLeave(p.id, new Date()));
    const others = this.io.to(roomKey(room.room));
    (p.socketId ? others.except(p.socketId) : others).emit('peer-left', { call_id: room.callId, participant_id: p.id, reason });
    this.deps.events?.emit('participant.left', { call_id: room.callId, room: room.room, participant_id: p.id, user_id: p.userId, reason, at: new Date().toISOString() });
    if (p.socketId) {
      this.io.in(p.socketId).socketsLeave(roomKey(room.room));
      const local = this.io.sockets.sockets.get(p.socketId);
      if (local) {
        local.data.room = undefined;
        local.data.participantId = undefined;
      }
      if (reason === 'removed' || reason === 'replaced') this.kick(p.socketId, room.callId, message ?? reason, by);
    }
    if ((await store.countParticipants(room.room)) === 0) await this.scheduleEmptyLocked(room);
    void this.refreshGauges();
  }

  /** Tells a socket it was removed, then disconnects it (it does not reconnect by itself). */
  private kick(socketId: string, callId: string, reason: string, by: string | null): void {
    this.io.to(socketId).emit('removed', { call_id: callId, reason, by });
    this.io.in(socketId).disconnectSockets(false);
  }

  private onDisconnect(socket: Sock): void {
    const { room, participantId } = socket.data;
    if (!room || !participantId) return;
    void this.locks
      .run(room, () => this.droppedLocked(room, participantId, socket.id))
      .catch((err: unknown) => this.deps.log.error({ err }, 'handling a disconnect failed'));
  }

  /** Under the room's lock: the participant's socket is gone; keep its place for the grace period, or remove it. */
  private async droppedLocked(room: string, participantId: string, socketId: string): Promise<void> {
    const { store } = this.deps;
    const p = await store.getParticipant(room, participantId);
    if (!p || p.socketId !== socketId) return; // replaced by a newer connection, or gone
    const r = await store.getRoom(room);
    if (!r) return;
    if (this.cfg.reconnectGraceMs === 0 || (this.draining && !this.handingOff)) return this.removeLocked(r, p, 'disconnected', null);
    const stamp = Date.now();
    p.socketId = null;
    p.disconnectedAt = stamp;
    await store.putParticipant(p);
    const timer = setTimeout(() => void this.expireGrace(room, participantId, stamp), this.cfg.reconnectGraceMs);
    timer.unref();
    this.graceTimers.set(participantId, timer);
  }

  /** The grace period of one disconnection ends: still away (and not away again since, on another node's watch) means gone. */
  private expireGrace(room: string, participantId: string, stamp: number): Promise<void> {
    this.graceTimers.delete(participantId);
    return this.locks
      .run(room, async () => {
        const p = await this.deps.store.getParticipant(room, participantId);
        const r = await this.deps.store.getRoom(room);
        if (p && r && p.socketId === null && p.disconnectedAt === stamp) await this.removeLocked(r, p, 'disconnected', null);
      })
      .catch((err: unknown) => this.deps.log.error({ err }, 'ending a reconnection grace period failed'));
  }

  private cancelGrace(participantId: string): void {
    clearTimeout(this.graceTimers.get(participantId));
    this.graceTimers.delete(participantId);
  }

  /** Under the room's lock: the room is empty; its call ends after EMPTY_ROOM_TIMEOUT unless someone comes back. */
  private async scheduleEmptyLocked(room: RoomRecord): Promise<void> {
    const stamp = Date.now();
    await this.deps.store.putRoom({ ...room, emptySince: stamp });
    this.startEmptyTimer(room, stamp, this.cfg.emptyRoomTimeoutMs);
  }

  /** The stamp makes the timer specific to this emptiness: a later one (perhaps timed on another node) is not ended early. */
  private startEmptyTimer(room: RoomRecord, stamp: number, delayMs: number): void {
    this.clearEmptyTimer(room.room);
    const timer = setTimeout(() => {
      this.emptyTimers.delete(room.room);
      void this.locks
        .run(room.room, async () => {
          const { store, calls } = this.deps;
          const current = await store.getRoom(room.room);
          if (current?.callId !== room.callId || current.emptySince !== stamp || (await store.countParticipants(room.room)) !== 0) return;
          // Ended and forgotten under the room's lock: a join meanwhile waits,
          // then opens a new call instead of entering the one being ended.
          await calls.end(room.callId).catch((err: unknown) => {
            if (!(err instanceof AppError && err.code === 'CALL_ALREADY_ENDED')) throw err;
          });
          await this.endRoomLocked(room.room, room.callId);
        })
        .catch((err: unknown) => this.deps.log.error({ err }, 'ending an empty room failed'));
    }, delayMs);
    timer.unref();
    this.emptyTimers.set(room.room, timer);
  }

  private clearEmptyTimer(room: string): void {
    clearTimeout(this.emptyTimers.get(room));
    this.emptyTimers.delete(room);
  }

  /** The call ended (by signaling, REST or an empty room): tell everyone and forget the room. */
  endRoom(roomName: string, callId: string): Promise<void> {
    return this.locks.run(roomName, () => this.endRoomLocked(roomName, callId));
  }

  private async endRoomLocked(roomName: string, callId: string): Promise<void> {
    const { store } = this.deps;
    const room = await store.getRoom(roomName);
    if (!room || room.callId !== callId) return;
    // First the recording, while media still flows and everyone can still be told.
    const media = this.mediaOf(room);
    await media.stopRecording(roomName, 'call-ended').catch((err: unknown) => this.deps.log.warn({ err, room: roomName }, 'stopping the recording of an ended call failed'));
    const participants = await store.listParticipants(roomName);
    this.io.to(roomKey(roomName)).emit('call-state-changed', { call_id: callId, room: roomName, status: 'ended', recording: false });
    this.io.in(roomKey(roomName)).socketsLeave(roomKey(roomName));
    for (const p of participants) {
      this.deps.events?.emit('participant.left', { call_id: callId, room: roomName, participant_id: p.id, user_id: p.userId, reason: 'call-ended', at: new Date().toISOString() });
      this.cancelGrace(p.id);
      this.writes.enqueue(p.id, 'participant left', () => this.deps.calls.recordLeave(p.id, new Date()));
    }
    this.clearEmptyTimer(roomName);
    void this.stopRinging(callId).catch((err: unknown) => this.deps.log.warn({ err }, 'stopping the invitations of an ended call failed'));
    if (room.mediaNode) await media.close(roomName).catch((err: unknown) => this.deps.log.warn({ err, room: roomName }, 'closing the media of an ended call failed'));
    await store.deleteRoom(roomName);
    void this.refreshGauges();
  }

  // ---- relay (peer-to-peer mode) -------------------------------------------------------------
  private async relay(socket: Sock, event: 'offer' | 'answer' | 'ice-candidate', payload: Payload<'offer'> | Payload<'ice-candidate'>): Promise<object> {
    const { room, me } = await this.joined(socket, payload.call_id);
    let target: ParticipantRecord | undefined;
    if (payload.to !== undefined) {
      if (payload.to === me.id) throw new AppError('CANNOT_TARGET_SELF', 'cannot send to yourself');
      target = await this.deps.store.getParticipant(room.room, payload.to);
      if (!target) throw new AppError('PARTICIPANT_NOT_FOUND', `no participant ${payload.to} in this room`);
    } else {
      const others = (await this.deps.store.listParticipants(room.room)).filter((p) => p.id !== me.id);
      if (others.length !== 1) throw new AppError('TARGET_REQUIRED');
      target = others[0]!;
    }
    if (!target.socketId) throw new AppError('TARGET_NOT_CONNECTED');
    const to = this.io.to(target.socketId);
    if (event === 'ice-candidate') {
      const c = payload as Payload<'ice-candidate'>;
      to.emit('ice-candidate', { candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null, call_id: room.callId, from: me.id });
    } else {
      to.emit(event, { sdp: (payload as Payload<'offer'>).sdp, call_id: room.callId, from: me.id });
    }
    return {};
  }

  // ---- media state and moderation -------------------------------------------------------------
  private async onMute(socket: Sock, payload: Payload<'mute'>, mute: boolean): Promise<object> {
    const { room, me } = await this.joined(socket, payload.call_id);
    const targetId = payload.participant_id ?? me.id;
    const bySelf = targetId === me.id;
    await this.locks.run(room.room, async () => {
      const { store } = this.deps;
      const [actor, target] = await this.actorAndTarget(room.room, me.id, targetId);
      if (!bySelf) authorize(actor.role, 'mute-other', target.role);
      const next = applyMute({ muted: target.mutedTracks, locked: target.lockedTracks }, payload.track, mute, bySelf);
      target.mutedTracks = next.muted;
      target.lockedTracks = next.locked;
      await store.putParticipant(target);
      await this.applyMedia(room, target);
      this.io.to(roomKey(room.room)).emit('mute-changed', {
        call_id: room.callId,
        participant_id: target.id,
        track: payload.track,
        muted: next.muted.includes(payload.track),
        locked: next.locked.includes(payload.track),
        by: actor.id,
      });
      if (!bySelf) {
        this.recordEvent(room.callId, actor.id, mute ? 'mute' : 'unmute', { participant_id: target.id, track: payload.track });
      }
    });
    return {};
  }

  private async onHold(socket: Sock, payload: Payload<'hold'>, hold: boolean): Promise<object> {
    const { room, me } = await this.joined(socket, payload.call_id);
    let held: string[] = [];
    await this.locks.run(room.room, async () => {
      const current = await this.current(room.room, me.id);
      current.heldTracks = applyHold(current.heldTracks, payload.track, hold, TRACKS);
      held = current.heldTracks;
      await this.deps.store.putParticipant(current);
      await this.applyMedia(room, current);
      this.io.to(roomKey(room.room)).emit('hold-changed', { call_id: room.callId, participant_id: me.id, held_tracks: current.heldTracks });
    });
    return { held_tracks: held };
  }

  private async onDtmf(socket: Sock, payload: Payload<'dtmf'>): Promise<object> {
    const { room, me } = await this.joined(socket, payload.call_id);
    const tones = validateDtmf(payload.tones);
    socket.to(roomKey(room.room)).emit('dtmf', { call_id: room.callId, from: me.id, tones });
    this.recordEvent(room.callId, me.id, 'dtmf', { tones });
    return {};
  }

  private async onRemove(socket: Sock, payload: Payload<'remove-participant'>): Promise<object> {
    const { room, me } = await this.joined(socket, payload.call_id);
    if (payload.participant_id === me.id) throw new AppError('CANNOT_TARGET_SELF', 'use leave to leave the call');
    await this.locks.run(room.room, async () => {
      const { store } = this.deps;
      const [[actor, target], current] = await Promise.all([this.actorAndTarget(room.room, me.id, payload.participant_id), store.getRoom(room.room)]);
      if (!current) throw new AppError('NOT_JOINED');
      authorize(actor.role, 'remove', target.role);
      current.removedUsers = [...current.removedUsers, target.userId];
      await store.putRoom(current);
      this.recordEvent(room.callId, actor.id, 'remove', { participant_id: target.id, user_id: target.userId, reason: payload.reason ?? null });
      await this.removeLocked(current, target, 'removed', actor.id, payload.reason);
    });
    return {};
  }

  private async onEndCall(socket: Sock, payload: Payload<'end-call'>): Promise<object> {
    const { room, me } = await this.joined(socket, payload.call_id);
    const actor = await this.current(room.room, me.id);
    authorize(actor.role, 'end-call');
    this.recordEvent(room.callId, me.id, 'end', {});
    await this.writes.flush();
    await this.deps.calls.end(room.callId);
    await this.endRoom(room.room, room.callId);
    return {};
  }

  private async onSetRole(socket: Sock, payload: Payload<'set-role'>): Promise<object> {
    const { room, me } = await this.joined(socket, payload.call_id);
    if (payload.participant_id === me.id) throw new AppError('CANNOT_TARGET_SELF', 'a host cannot change their own role');
    await this.locks.run(room.room, async () => {
      const { store } = this.deps;
      const [actor, target] = await this.actorAndTarget(room.room, me.id, payload.participant_id);
      authorize(actor.role, 'set-role', target.role);
      target.role = payload.role;
      await store.putParticipant(target);
      this.writes.enqueue(target.id, 'role change', () => this.deps.calls.recordRole(target.id, payload.role));
      this.recordEvent(room.callId, actor.id, 'set-role', { participant_id: target.id, role: payload.role });
      this.io.to(roomKey(room.room)).emit('role-changed', { call_id: room.callId, participant_id: target.id, role: payload.role, by: actor.id });
    });
    return {};
  }

  /** Records a call event (DTMF, moderation) behind the actor's other writes, stamped now. */
  private recordEvent(callId: string, actorId: string, type: string, payload: Record<string, unknown>): void {
    const at = new Date();
    this.writes.enqueue(actorId, 'call event', () => this.deps.calls.recordEvent(callId, actorId, type, payload, at));
  }

  // ---- SFU media ------------------------------------------------------------------------------
  /** The joined room's media; MODE_MISMATCH in a p2p room. */
  private async sfuRoom(socket: Sock): Promise<{ room: RoomRecord; me: ParticipantRecord; media: MediaService }> {
    const { room, me } = await this.joined(socket);
    if (room.mode !== 'sfu') throw new AppError('MODE_MISMATCH');
    return { room, me, media: this.mediaOf(room) };
  }

  private async onProduce(socket: Sock, p: Payload<'produce'>): Promise<object> {
    const { room, media, me } = await this.sfuRoom(socket);
    return this.locks.run(room.room, async () => {
      const current = await this.current(room.room, me.id);
      if (!current.canPublish) throw new AppError('PUBLISH_NOT_ALLOWED');
      const track = SOURCE_TRACK[p.source];
      // A producer created paused by its client is a self-mute: the mute state and the producer state agree.
      if (p.paused && !current.mutedTracks.includes(track)) {
        current.mutedTracks = [...current.mutedTracks, track];
        await this.deps.store.putParticipant(current);
        this.io.to(roomKey(room.room)).emit('mute-changed', { call_id: room.callId, participant_id: me.id, track, muted: true, locked: false, by: me.id });
      }
      const paused = current.mutedTracks.includes(track) || current.heldTracks.includes(track);
      const producer = await media.produce(room.room, me.id, { transportId: p.transport_id, kind: p.kind, rtpParameters: p.rtp_parameters, source: p.source, paused });
      this.io.to(roomKey(room.room)).except(participantKey(me.id)).emit('new-producer', { producer_id: producer.producer_id, participant_id: me.id, kind: producer.kind, source: p.source, paused });
      // Being recorded: record this track from now on (not awaited: the producer is usable already).
      void media.producerAdded(room.room, me.id).catch((err: unknown) => this.deps.log.error({ err }, 'recording a new producer failed'));
      return { producer_id: producer.producer_id, paused };
    });
  }

  /** Pausing or resuming a producer is muting or unmuting its track: the same rules, the same state. */
  private async onProducerPause(socket: Sock, p: Payload<'close-producer'>, pause: boolean): Promise<object> {
    const { room, media } = await this.sfuRoom(socket);
    const found = await media.findProducer(room.room, p.producer_id);
    if (!found) throw new AppError('PRODUCER_NOT_FOUND', `no producer ${p.producer_id} in this room`);
    return this.onMute(socket, { call_id: room.callId, track: SOURCE_TRACK[found.source], participant_id: found.participantId }, pause);
  }

  /** Makes a participant's producers and consumers match its mute and hold state. */
  private async applyMedia(room: RoomRecord, p: ParticipantRecord): Promise<void> {
    if (room.mode !== 'sfu' || !room.mediaNode) return;
    await this.mediaOf(room).applyState(room.room, p.id, p.mutedTracks, p.heldTracks);
  }

  // ---- lifecycle -------------------------------------------------------------------------------
  /** Pending database writes (tests and shutdown wait for them). */
  flushWrites(): Promise<void> {
    return this.writes.flush();
  }

  // ---- invitations, inbox, chat ---------------------------------------------------------------
  /** An authenticated user connection: reachable as its user, and sent what waits in its inbox. */
  private async reachable(socket: Sock): Promise<void> {
    const p = socket.data.principal;
    if (!p || p.kind !== 'user') return;
    await socket.join(userKey(p.userId));
    try {
      for (const item of await this.deps.invitations.pending(p.userId)) this.sendInboxItem(socket.id, item);
    } catch (err) {
      this.deps.log.error({ err }, 'delivering an inbox failed');
    }
  }

  private sendInboxItem(to: string, item: InboxEntry): void {
    if (item.kind === 'missed-call') this.io.to(to).emit('missed-call', { id: item.id, ...(item.payload as Omit<Parameters<ServerToClientEvents['missed-call']>[0], 'id'>) });
    else this.io.to(to).emit('inbox-message', { id: item.id, ...(item.payload as Omit<Parameters<ServerToClientEvents['inbox-message']>[0], 'id'>) });
  }

  /** Puts an item in a user's inbox and sends it to the devices connected now (they acknowledge it). */
  async toInbox(userId: string, kind: InboxEntry['kind'], payload: Record<string, unknown>): Promise<InboxEntry> {
    const item = await this.deps.invitations.push(userId, kind, payload);
    this.sendInboxItem(userKey(userId), item);
    return item;
  }

  private async online(userId: string): Promise<boolean> {
    return (await this.io.in(userKey(userId)).fetchSockets()).length > 0;
  }

  /**
   * Rings users into a call (signaling's invite, and REST). A user in the call
   * already is not rung; an offline one gets a missed call in its inbox at once.
   */
  async invite(callId: string, roomName: string, userIds: string[], from: Sender, timeoutSeconds?: number): Promise<{ invitations: Array<{ invitation_id: string | null; user_id: string; status: 'ringing' | 'offline' | 'in-call' }>; expires_at: string }> {
    const { invitations } = this.deps;
    const expiresAt = new Date(Date.now() + (timeoutSeconds !== undefined ? timeoutSeconds * 1000 : this.cfg.invitationTimeoutMs));
    const inCall = new Set((await this.deps.store.listParticipants(roomName)).map((p) => p.userId));
    const out: Array<{ invitation_id: string | null; user_id: string; status: 'ringing' | 'offline' | 'in-call' }> = [];
    for (const userId of [...new Set(userIds)]) {
      if (inCall.has(userId)) {
        out.push({ invitation_id: null, user_id: userId, status: 'in-call' });
        continue;
      }
      const existing = await invitations.ringing(callId, userId);
      if (existing) {
        out.push({ invitation_id: existing.id, user_id: userId, status: 'ringing' });
        continue;
      }
      const online = await this.online(userId);
      const inv = await invitations.create({ callId, roomId: roomName, userId, inviterUserId: from?.user_id ?? null, inviterName: from?.display_name ?? null, status: online ? 'ringing' : 'missed', expiresAt });
      if (online) {
        this.io.to(userKey(userId)).emit('incoming-call', { invitation_id: inv.id, call_id: callId, room: roomName, from, expires_at: expiresAt.toISOString() });
        const timer = setTimeout(() => void this.expireInvitation(inv.id), Math.max(0, expiresAt.getTime() - Date.now()));
        timer.unref();
        this.inviteTimers.set(inv.id, timer);
      } else {
        await this.toInbox(userId, 'missed-call', missedCall(inv));
      }
      out.push({ invitation_id: inv.id, user_id: userId, status: online ? 'ringing' : 'offline' });
    }
    return { invitations: out, expires_at: expiresAt.toISOString() };
  }

  /** Tells the inviter (all its devices) and the call's room. */
  private toInviter(inv: InvitationRow) {
    return this.io.to(inv.inviterUserId ? [roomKey(inv.roomId), userKey(inv.inviterUserId)] : roomKey(inv.roomId));
  }

  private async expireInvitation(id: string): Promise<void> {
    this.inviteTimers.delete(id);
    try {
      const inv = await this.deps.invitations.settle(id, 'expired');
      if (!inv) return; // answered meanwhile
      this.io.to(userKey(inv.userId)).emit('incoming-call-ended', { invitation_id: inv.id, call_id: inv.callId, reason: 'expired' });
      this.toInviter(inv).emit('invitation-expired', { invitation_id: inv.id, call_id: inv.callId, user_id: inv.userId });
      this.deps.events?.emit('invitation.answered', { call_id: inv.callId, room: inv.roomId, invitation_id: inv.id, user_id: inv.userId, answer: 'expired', reason: null, at: new Date().toISOString() });
      await this.toInbox(inv.userId, 'missed-call', missedCall(inv));
    } catch (err) {
      this.deps.log.error({ err }, 'expiring an invitation failed');
    }
  }

  /** accept / decline, from any device of the invitee; the first answer wins, the others stop ringing. */
  private async answer(socket: Sock, invitationId: string, status: 'accepted' | 'declined', reason?: string): Promise<object> {
    const user = this.user(socket);
    const { invitations } = this.deps;
    const mine = await invitations.mine(invitationId, user.userId);
    const inv = await invitations.settle(mine.id, status, reason);
    if (!inv) return invitations.notPending(await invitations.mine(invitationId, user.userId));
    clearTimeout(this.inviteTimers.get(inv.id));
    this.inviteTimers.delete(inv.id);
    this.io.to(userKey(inv.userId)).emit('incoming-call-ended', { invitation_id: inv.id, call_id: inv.callId, reason: status });
    this.deps.events?.emit('invitation.answered', { call_id: inv.callId, room: inv.roomId, invitation_id: inv.id, user_id: inv.userId, answer: status, reason: reason ?? null, at: new Date().toISOString() });
    if (status === 'accepted') {
      this.toInviter(inv).emit('invitation-accepted', { invitation_id: inv.id, call_id: inv.callId, user_id: inv.userId });
      return { invitation_id: inv.id, call_id: inv.callId, room: inv.roomId };
    }
    this.toInviter(inv).emit('invitation-declined', { invitation_id: inv.id, call_id: inv.callId, user_id: inv.userId, reason: reason ?? null });
    return {};
  }

  /** The call ended: its ringing invitations stop. */
  private async stopRinging(callId: string): Promise<void> {
    for (const ringing of await this.deps.invitations.ringingOfCall(callId)) {
      const inv = await this.deps.invitations.settle(ringing.id, 'call-ended');
      if (!inv) continue;
      clearTimeout(this.inviteTimers.get(inv.id));
      this.inviteTimers.delete(inv.id);
      this.io.to(userKey(inv.userId)).emit('incoming-call-ended', { invitation_id: inv.id, call_id: inv.callId, reason: 'call-ended' });
    }
  }

  /** In-call chat: to the room (kept with the call), or privately to a user of the call (through its inbox). */
  private async onMessage(socket: Sock, p: Payload<'message'>): Promise<object> {
    const { room, me } = await this.joined(socket, p.call_id);
    const { invitations } = this.deps;
    if (p.to_user_id !== undefined) {
      if (p.to_user_id === me.userId) throw new AppError('CANNOT_TARGET_SELF', 'you cannot message yourself');
      if (!(await invitations.knowsCall(room.callId, p.to_user_id))) throw new AppError('USER_NOT_IN_CALL');
    }
    const msg = await invitations.addMessage({ callId: room.callId, participantId: me.id, userId: me.userId, displayName: me.displayName, toUserId: p.to_user_id ?? null, text: p.text });
    if (p.to_user_id !== undefined) {
      await this.toInbox(p.to_user_id, 'message', { from: { user_id: me.userId, display_name: me.displayName }, call_id: room.callId, text: p.text, sent_at: msg.sent_at });
    } else {
      const { to_user_id: _private, ...chat } = msg;
      this.io.to(roomKey(room.room)).emit('message', chat);
    }
    return { message_id: msg.message_id, sent_at: msg.sent_at };
  }

  // ---- recording over REST ------------------------------------------------------------------
  /** Starts a room's recording on its media node (REST; the node serving the request may be another). */
  async startRecording(roomName: string, callId: string, by: string | null, mode?: RecordingMode): Promise<{ recording_id: string; started_at: string; mode: RecordingMode }> {
    const room = await this.deps.store.getRoom(roomName);
    return (room && room.callId === callId ? this.mediaOf(room) : this.deps.topology.media(this.nodeId)).startRecording(roomName, callId, by, mode);
  }

  async stopRecording(roomName: string, reason: string): Promise<FinishedRecording | null> {
    const room = await this.deps.store.getRoom(roomName);
    return (room ? this.mediaOf(room) : this.deps.topology.media(this.nodeId)).stopRecording(roomName, reason);
  }

  // ---- other nodes -----------------------------------------------------------------------------
  /**
   * A node stopped heartbeating (this node claimed the clean-up): its media
   * rooms move to a live node (media-reset), then its participants are
   * announced as left. Media first, so that closing their media does not wait
   * on the dead node.
   */
  async reapNode(deadId: string): Promise<{ rooms: number; participants: number }> {
    const { store } = this.deps;
    const rooms = await store.roomsWithMediaOn(deadId);
    for (const room of rooms) await this.moveMedia(room, deadId, 'node-lost').catch((err: unknown) => this.deps.log.error({ err, room }, 'moving media off a dead node failed'));
    const participants = await store.participantsOnNode(deadId);
    for (const { room, id } of participants) {
      await this.locks
        .run(room, async () => {
          const [p, r] = await Promise.all([store.getParticipant(room, id), store.getRoom(room)]);
          if (p && r && p.nodeId === deadId) await this.removeLocked(r, p, 'disconnected', null);
        })
        .catch((err: unknown) => this.deps.log.error({ err, room }, 'removing a dead node\'s participant failed'));
    }
    await this.resumeEmptyTimers();
    return { rooms: rooms.length, participants: participants.length };
  }

  /** Empty rooms whose end was timed by a node that is gone: time them here. */
  private async resumeEmptyTimers(): Promise<void> {
    const { store } = this.deps;
    for (const name of await store.listRooms()) {
      if (this.emptyTimers.has(name)) continue;
      const room = await store.getRoom(name);
      if (room?.emptySince != null) this.startEmptyTimer(room, room.emptySince, Math.max(0, room.emptySince + this.cfg.emptyRoomTimeoutMs - Date.now()));
    }
  }

  /**
   * Moves a room's media off `fromNode` to the least-loaded other node: its
   * recording stops (finalised when the node is draining; lost with a dead
   * one), the new routers open, and the room is told to negotiate again.
   */
  private async moveMedia(roomName: string, fromNode: string, reason: 'node-lost' | 'node-draining'): Promise<void> {
    const { store, topology } = this.deps;
    await this.locks.run(roomName, async () => {
      const room = await store.getRoom(roomName);
      if (!room || room.mediaNode !== fromNode) return;
      if (reason === 'node-draining') await topology.media(fromNode).stopRecording(roomName, 'node-draining').catch(() => null);
      else if (room.recording) await this.deps.calls.setRecording(room.callId, false).catch(() => undefined);
      const to = await this.openMedia(roomName, [fromNode]);
      await store.putRoom({ ...room, mediaNode: to, recording: reason === 'node-lost' ? false : room.recording });
      if (fromNode === this.nodeId) await topology.media(fromNode).close(roomName);
      this.deps.log.info({ room: roomName, from: fromNode, to, reason }, 'room media moved');
      this.io.to(roomKey(roomName)).emit('media-reset', { call_id: room.callId, reason });
    });
  }

  // ---- lifecycle -------------------------------------------------------------------------------
  /**
   * SIGTERM: no new connections or joins. With another node alive, the calls
   * move: the media this node carries is re-placed (media-reset), and every
   * connection here is told (server-draining) and closed, so its client
   * reconnects through the load balancer and resumes on another node within
   * the grace period. Alone, the node lets its calls finish. Either way it
   * waits until nobody is left on it, or the timeout.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    const deadline = Date.now() + timeoutMs;
    const { store, topology } = this.deps;
    if (await topology.peerAvailable()) {
      this.handingOff = true;
      for (const room of await store.roomsWithMediaOn(this.nodeId)) {
        await this.moveMedia(room, this.nodeId, 'node-draining').catch((err: unknown) => this.deps.log.error({ err, room }, 'moving media off this node failed'));
      }
      for (const socket of this.io.sockets.sockets.values()) socket.emit('server-draining', { reconnect: true });
      // The transport closes (not the Socket.IO session): socket.io-client reconnects by itself.
      setTimeout(() => {
        for (const socket of this.io.sockets.sockets.values()) socket.conn.close();
      }, 100).unref();
    }
    while (Date.now() < deadline && (await store.participantsOnNode(this.nodeId)).length > 0) {
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Shutdown: refuse new connections and joins, disconnect everyone, record those still here as left. */
  async close(): Promise<void> {
    this.draining = true;
    this.closing = true;
    clearInterval(this.purgeTimer);
    this.handingOff = false;
    // Finalise every recording while media still flows.
    await this.deps.recorder.stopAll();
    for (const t of [...this.graceTimers.values(), ...this.emptyTimers.values(), ...this.authTimers.values(), ...this.inviteTimers.values()]) clearTimeout(t);
    this.io.local.disconnectSockets(true);
    await this.locks.idle();
    const { store } = this.deps;
    for (const { room, id } of await store.participantsOnNode(this.nodeId).catch(() => [])) {
      await this.locks
        .run(room, async () => {
          const [p, r] = await Promise.all([store.getParticipant(room, id), store.getRoom(room)]);
          if (p && r && p.nodeId === this.nodeId) await this.removeLocked(r, p, 'disconnected', null);
        })
        .catch((err: unknown) => this.deps.log.warn({ err, room }, 'removing a participant at shutdown failed'));
    }
    for (const t of this.emptyTimers.values()) clearTimeout(t);
    await new Promise<void>((resolve) => void this.io.close(() => resolve()));
    await this.locks.idle();
    await this.writes.flush();
  }

  startDraining(): void {
    this.draining = true;
  }

  get connectionCount(): number {
    return this.connections;
  }
}

function missedCall(inv: InvitationRow): Record<string, unknown> {
  return {
    invitation_id: inv.id,
    call_id: inv.callId,
    room: inv.roomId,
    from: inv.inviterUserId ? { user_id: inv.inviterUserId, display_name: inv.inviterName } : null,
    invited_at: inv.createdAt.toISOString(),
  };
}
