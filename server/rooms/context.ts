import type { FastifyBaseLogger } from 'fastify';
import type { CallService } from '../calls/service';
import type { Config, SignalingConfig } from '../config/config';
import { AppError } from '../errors';
import type { DomainEvents } from '../events';
import type { MediaService } from '../mediaNode/service';
import type { Metrics } from '../metrics/metrics';
import type { Clients, Session } from './clients';
import type { ParticipantRecord, RoomRecord, RoomStore } from './store';
import type { RoomLocks, Topology } from './topology';
import { WriteBehind } from './writeBehind';

/** What the room services are built from (app.ts wires them). */
export interface RoomsDeps {
  cfg: SignalingConfig;
  turn: Config['turn'];
  store: RoomStore;
  topology: Topology;
  calls: CallService;
  clients: Clients;
  events: DomainEvents;
  metrics: Metrics;
  log: FastifyBaseLogger;
}

/** How this node is going away, if it is. */
export interface NodeState {
  /** No new joins (SIGTERM, shutdown). */
  draining: boolean;
  /** Draining with another node to take over: dropped sessions keep their place (they resume elsewhere). */
  handingOff: boolean;
  /** Shutting down: other nodes' media is left to them. */
  closing: boolean;
}

/**
 * What every room service shares: its dependencies, the write-behind queue,
 * the node's state, and the lookups each request starts with.
 */
export class RoomContext {
  readonly writes: WriteBehind;
  readonly node: NodeState = { draining: false, handingOff: false, closing: false };

  constructor(readonly deps: RoomsDeps) {
    this.writes = new WriteBehind(deps.log, {
      onFailure: () => deps.metrics.dbWriteFailures.inc(),
      onBacklog: (n) => deps.metrics.dbWriteBacklog.set(n),
    });
  }

  get cfg(): SignalingConfig {
    return this.deps.cfg;
  }
  get store(): RoomStore {
    return this.deps.store;
  }
  get locks(): RoomLocks {
    return this.deps.topology.locks;
  }
  get nodeId(): string {
    return this.deps.topology.nodeId;
  }
  get clients(): Clients {
    return this.deps.clients;
  }

  /** The media service of a room's media node (this node's for a p2p room: nothing there). */
  mediaOf(room: RoomRecord): MediaService {
    return this.deps.topology.media(room.mediaNode ?? this.nodeId);
  }

  /** The authenticated user of a session. */
  user(session: Session): Extract<NonNullable<Session['principal']>, { kind: 'user' }> {
    const p = session.principal;
    if (!p || p.kind !== 'user') throw new AppError('AUTH_REQUIRED');
    return p;
  }

  /** The room and participant a session is joined as; NOT_JOINED when it is not (any more). */
  async joined(session: Session, callId?: string): Promise<{ room: RoomRecord; me: ParticipantRecord }> {
    const { room, participantId } = session;
    if (room && participantId) {
      const [r, me] = await Promise.all([this.store.getRoom(room), this.store.getParticipant(room, participantId)]);
      if (r && me && me.socketId === session.id) {
        if (callId !== undefined && callId !== r.callId) throw new AppError('CALL_ID_MISMATCH');
        return { room: r, me };
      }
      session.room = undefined;
      session.participantId = undefined;
    }
    throw new AppError('NOT_JOINED');
  }

  /** Under the room's lock: the acting participant, as stored now (its role may have changed). */
  async current(room: string, participantId: string): Promise<ParticipantRecord> {
    const p = await this.store.getParticipant(room, participantId);
    if (!p) throw new AppError('NOT_JOINED');
    return p;
  }

  /** Under the room's lock: the acting participant and the one it acts on. */
  async actorAndTarget(room: string, actorId: string, targetId: string): Promise<[ParticipantRecord, ParticipantRecord]> {
    const [actor, target] = await Promise.all([this.current(room, actorId), this.store.getParticipant(room, targetId)]);
    if (!target) throw new AppError('PARTICIPANT_NOT_FOUND', `no participant ${targetId} in this room`);
    return [actor, target];
  }

  /** Records a call event (DTMF, moderation) behind the actor's other writes, stamped now. */
  recordEvent(callId: string, actorId: string, type: string, payload: Record<string, unknown>): void {
    const at = new Date();
    this.writes.enqueue(actorId, 'call event', () => this.deps.calls.recordEvent(callId, actorId, type, payload, at));
  }

  /** Updates the rooms and participants gauges in the background (a failure only costs a stale gauge). */
  refreshGauges(): void {
    Promise.all([this.store.countRooms(), this.store.countAllParticipants()])
      .then(([rooms, participants]) => {
        this.deps.metrics.rooms.set(rooms);
        this.deps.metrics.participants.set(participants);
      })
      .catch((err: unknown) => this.deps.log.warn({ err }, 'refreshing the room gauges failed'));
  }
}
