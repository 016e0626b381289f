import { isIP } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { Server, type ServerOptions, type Socket } from 'socket.io';
import type { Principal } from '../auth/roles';
import type { TokenService } from '../auth/tokens';
import type { Config } from '../config/config';
import { AppError } from '../errors';
import { outageError } from '../http/errors';
import { compileTrust, forwardedClientIp, unmapIp, type TrustFn } from '../http/trustProxy';
import type { Invitations } from '../invitations';
import type { Metrics } from '../metrics/metrics';
import {
  CLIENT_EVENTS,
  type AckResult,
  type ClientEvent,
  type ClientToServerEvents,
  type ServerEvent,
  type ServerMessage,
  type ServerPayload,
  type ServerToClientEvents,
} from '../protocol';
import type { Audience, Clients, Rooms, Session } from '../rooms';
import { handlers, type Handlers } from './handlers';
import { TokenBucket } from './rateLimiter';
import { compileValidators, type PayloadValidators } from './validate';

/**
 * The Socket.IO adapter: the handshake (token, limits), a rate bucket per
 * connection, validation of every payload at the edge, dispatch to the typed
 * handler map (handlers.ts) and the acknowledgement. It is also the rooms'
 * way to reach clients (Clients): Socket.IO rooms per call room, participant
 * and user, carried to every node by the Redis adapter in a cluster.
 */
interface SocketData {
  principal?: Principal;
  room?: string;
  participantId?: string;
}
type IO = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type Sock = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

export interface SignalingDeps {
  httpServer: HttpServer;
  config: Config;
  tokens: TokenService;
  metrics: Metrics;
  log: FastifyBaseLogger;
  /** The Socket.IO adapter (Redis in a cluster); unset: in memory. */
  adapter?: ServerOptions['adapter'];
}

const KNOWN = new Set<string>(CLIENT_EVENTS);
/** Socket.IO room names: a call room, every connection of a participant, every device of a user. */
const key = (a: Audience): string => ('room' in a ? `room:${a.room}` : 'participant' in a ? `p:${a.participant}` : 'user' in a ? `u:${a.user}` : a.connection);

function connectError(code: AppError['code'], message?: string): Error {
  const e = new AppError(code, message);
  return Object.assign(new Error(e.message), { data: { code, message: e.message } });
}

/** A connection as the room services see it: its state lives in socket.data, so it follows the socket. */
class SocketSession implements Session {
  constructor(
    private readonly socket: Sock,
    readonly clientIp: string | null,
  ) {}
  get id(): string {
    return this.socket.id;
  }
  get disconnected(): boolean {
    return this.socket.disconnected;
  }
  get principal(): Principal | undefined {
    return this.socket.data.principal;
  }
  set principal(p: Principal | undefined) {
    this.socket.data.principal = p;
  }
  get room(): string | undefined {
    return this.socket.data.room;
  }
  set room(r: string | undefined) {
    this.socket.data.room = r;
  }
  get participantId(): string | undefined {
    return this.socket.data.participantId;
  }
  set participantId(p: string | undefined) {
    this.socket.data.participantId = p;
  }
}

/** How long open HTTP connections get to end by themselves once the server stops. */
const CLOSE_GRACE_MS = 1000;

export class SignalingServer implements Clients {
  readonly io: IO;
  private readonly cfg: Config['signaling'];
  private readonly validate: PayloadValidators;
  /** TRUST_PROXY: which peers' X-Forwarded-For is believed (Fastify's request.ip uses the same rule). */
  private readonly trustProxy: TrustFn;
  private readonly authTimers = new Map<string, NodeJS.Timeout>();
  private handlerMap: Handlers | undefined;
  private rooms: Rooms | undefined;
  private invitations: Invitations | undefined;
  private connections = 0;
  /** Connections per client address (MAX_CONNECTIONS_PER_IP). */
  private readonly perIp = new Map<string, number>();
  private draining = false;
  /** Set by disconnectAll: from then on not even a transport is opened (see allowRequest). */
  private closing = false;

  constructor(private readonly deps: SignalingDeps) {
    const { config } = deps;
    this.cfg = config.signaling;
    this.trustProxy = compileTrust(config.trustProxy);
    this.validate = compileValidators({ maxSdpBytes: this.cfg.maxSdpBytes });
    this.io = new Server(deps.httpServer, {
      serveClient: false,
      ...(deps.adapter ? { adapter: deps.adapter } : {}),
      maxHttpBufferSize: this.cfg.maxMessageBytes,
      // Once the server stops, a reconnect is refused before engine.io opens its transport: one
      // opened then (refused only at the handshake) would stay open and hold the HTTP server's
      // close until the shutdown timeout. The client sees a transport error and keeps retrying.
      allowRequest: (_req, cb) => cb(this.closing ? 'the server is stopping' : null, !this.closing),
      cors: config.corsOrigins === '*' ? { origin: true } : config.corsOrigins.length ? { origin: config.corsOrigins } : undefined,
    });
  }

  /** Starts taking connections, dispatching to these services (built with this adapter as their Clients). */
  serve(services: { rooms: Rooms; invitations: Invitations }): void {
    this.rooms = services.rooms;
    this.invitations = services.invitations;
    this.handlerMap = handlers({ ...services, auth: (s, p) => this.onAuth(s, p) });
    this.io.use((socket, next) => this.handshake(socket, next));
    this.io.on('connection', (socket) => this.onConnection(socket));
  }

  // ---- Clients: how the room services reach connections -------------------------------
  send<E extends ServerEvent>(to: Audience | readonly Audience[], event: E, payload: ServerPayload<E>, except?: Audience): void {
    const targets = Array.isArray(to) ? (to as readonly Audience[]).map(key) : key(to as Audience);
    const op = except ? this.io.to(targets).except(key(except)) : this.io.to(targets);
    // Socket.IO's emit cannot relate a generic event name to its payload type: the declarations above do.
    (op.emit as (ev: E, p: ServerPayload<E>) => boolean).call(op, event, payload);
  }

  sendMessage(to: Audience | readonly Audience[], m: ServerMessage, except?: Audience): void {
    this.send(to, m.event, m.payload as ServerPayload<typeof m.event>, except);
  }

  async enter(session: Session, room: string, participantId: string): Promise<void> {
    // A session is always one of this node's sockets.
    await this.io.sockets.sockets.get(session.id)?.join([key({ room }), key({ participant: participantId })]);
  }

  leave(connectionId: string, room: string): void {
    this.io.in(connectionId).socketsLeave(key({ room }));
    const local = this.io.sockets.sockets.get(connectionId);
    if (local) {
      local.data.room = undefined;
      local.data.participantId = undefined;
    }
  }

  clear(room: string): void {
    this.io.in(key({ room })).socketsLeave(key({ room }));
  }

  disconnect(connectionId: string): void {
    this.io.in(connectionId).disconnectSockets(false);
  }

  async online(userId: string): Promise<boolean> {
    return (await this.io.in(key({ user: userId })).fetchSockets()).length > 0;
  }

  // ---- connections ---------------------------------------------------------------------
  private handshake(socket: Sock, next: (err?: Error) => void): void {
    if (this.draining) return next(connectError('SERVER_DRAINING'));
    if (this.connections >= this.cfg.maxConnections) return next(connectError('SERVER_FULL'));
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
    // Per client address: counted from the handshake until the underlying connection closes
    // (the engine.io close fires whether or not the Socket.IO connection ever completed).
    const ip = this.clientIp(socket);
    if (ip !== null) {
      const n = this.perIp.get(ip) ?? 0;
      if (n >= this.cfg.maxConnectionsPerIp) return next(connectError('TOO_MANY_CONNECTIONS'));
      this.perIp.set(ip, n + 1);
      socket.conn.once('close', () => {
        const left = (this.perIp.get(ip) ?? 1) - 1;
        if (left > 0) this.perIp.set(ip, left);
        else this.perIp.delete(ip);
      });
    }
    next();
  }

  private onConnection(socket: Sock): void {
    this.connections++;
    this.deps.metrics.connections.inc();
    const session = new SocketSession(socket, this.clientIp(socket));
    if (socket.data.principal) this.reachable(socket, session);
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
      socket.on(event, (...args: unknown[]) => void this.dispatch(socket, session, bucket, event, args));
    }
    socket.onAny((raw: unknown, ...args: unknown[]) => {
      // The Socket.IO protocol also allows numeric event names: a string from here on.
      const event = String(raw);
      if (typeof raw === 'string' && KNOWN.has(event)) return;
      this.deps.metrics.messages.inc({ type: 'unknown' });
      // Unknown events are messages too: they take from the socket's bucket.
      const err = bucket.take() ? new AppError('UNKNOWN_EVENT', `unknown event ${JSON.stringify(event).slice(0, 80)}`) : new AppError('RATE_LIMITED');
      this.fail(socket, event, args.at(-1), err);
    });
    socket.on('disconnect', () => {
      this.connections--;
      this.deps.metrics.connections.dec();
      clearTimeout(this.authTimers.get(socket.id));
      this.authTimers.delete(socket.id);
      this.rooms?.presence.disconnected(session);
    });
  }

  private async dispatch(socket: Sock, session: Session, bucket: TokenBucket, event: ClientEvent, args: unknown[]): Promise<void> {
    const ack = typeof args.at(-1) === 'function' ? (args.pop() as (r: unknown) => void) : undefined;
    this.deps.metrics.messages.inc({ type: event });
    const startedAt = performance.now();
    try {
      if (!bucket.take()) throw new AppError('RATE_LIMITED');
      if (event !== 'auth' && !socket.data.principal)
        throw new AppError('AUTH_REQUIRED', 'authenticate first (auth.token in the handshake, or the auth message)');
      // A connection's rights end with its token (checked at every request, not only at the
      // handshake): send `auth` with a fresh token of the same user to go on. Leaving stays possible.
      if (event !== 'auth' && event !== 'leave' && expired(socket.data.principal))
        throw new AppError('TOKEN_EXPIRED', 'the token has expired: send auth with a new one');
      const payload = args[0];
      this.validate[event](payload);
      // The validator checked the payload against the declaration the handler is typed by.
      const handler = this.handlerMap![event] as (s: Session, p: unknown) => Promise<object>;
      const result = await handler(session, payload);
      ack?.({ ok: true, ...result });
      if (event === 'join') this.deps.metrics.joined('ok', startedAt);
    } catch (err) {
      this.fail(socket, event, ack, err);
      if (event === 'join') this.deps.metrics.joined('error', startedAt);
    }
  }

  private fail(socket: Sock, event: string, ack: unknown, err: unknown): void {
    let e: AppError;
    const outage = err instanceof AppError ? undefined : outageError(err);
    if (err instanceof AppError) e = err;
    else if (outage) {
      // A dependency is down (a 503 code, not a bug): the message, without a stack for every request.
      this.deps.log.warn({ err: (err as Error).message, event, code: outage.code }, 'signaling handler failed: a dependency is unavailable');
      e = outage;
    } else {
      this.deps.log.error({ err, event }, 'signaling handler failed');
      e = new AppError('INTERNAL_ERROR');
    }
    this.deps.metrics.errors.inc({ code: e.code });
    if (typeof ack === 'function') (ack as (r: unknown) => void)({ error: { code: e.code, message: e.message } });
    else socket.emit('signaling-error', { code: e.code, message: e.message, event: event.slice(0, 80) });
  }

  /** auth: authenticates the connection, or refreshes its token with one of the same user. */
  private async onAuth(session: Session, { token }: { token: string }): Promise<AckResult<'auth'>> {
    const principal = this.deps.tokens.principal(token);
    if (principal.kind !== 'user') throw new AppError('TOKEN_CLAIM_INVALID', 'not a user token');
    const current = session.principal;
    // Re-authenticating refreshes the token of the same user; it cannot switch users.
    if (current && current.kind === 'user' && current.userId !== principal.userId) throw new AppError('ALREADY_AUTHENTICATED');
    // A joined connection stays in its room: a token for another room cannot refresh it.
    if (session.room !== undefined && principal.room !== undefined && principal.room !== session.room) throw new AppError('ROOM_SCOPE_MISMATCH');
    session.principal = principal;
    clearTimeout(this.authTimers.get(session.id));
    this.authTimers.delete(session.id);
    const socket = this.io.sockets.sockets.get(session.id);
    if (!current && socket) this.reachable(socket, session);
    return { user_id: principal.userId, role: principal.role, room: principal.room ?? null };
  }

  /** An authenticated user connection: reachable as its user on every node, and sent what waits in its inbox. */
  private reachable(socket: Sock, session: Session): void {
    const p = socket.data.principal;
    if (!p || p.kind !== 'user') return;
    Promise.resolve(socket.join(key({ user: p.userId })))
      .then(() => this.invitations?.deliverInbox(session, p.userId))
      .catch((err: unknown) => this.deps.log.error({ err }, 'delivering an inbox failed'));
  }

  /** The socket's peer, or the client a trusted proxy names in X-Forwarded-For (server/http/trustProxy.ts). */
  private clientIp(socket: Sock): string | null {
    const peer = socket.handshake.address ? unmapIp(socket.handshake.address) : null;
    const raw = forwardedClientIp(socket.handshake.address, socket.handshake.headers['x-forwarded-for'], this.trustProxy);
    const forwarded = raw ? unmapIp(raw) : null;
    // Not an address (a proxy passed on garbage): the peer's, since client_ip is an inet column.
    return forwarded && isIP(forwarded) ? forwarded : peer;
  }

  /** This node's connections, as the room services see them (cluster/restore.ts: what to write back after Redis lost it). */
  localSessions(): Session[] {
    return [...this.io.sockets.sockets.values()].map((socket) => new SocketSession(socket, this.clientIp(socket)));
  }

  // ---- lifecycle -----------------------------------------------------------------------
  /** No new connections (the handshake answers SERVER_DRAINING). */
  startDraining(): void {
    this.draining = true;
  }

  /** Another node takes over: every connection here is told (server-draining), then its transport closes, so socket.io-client reconnects by itself. */
  handOff(): void {
    for (const socket of this.io.sockets.sockets.values()) socket.emit('server-draining', { reconnect: true });
    setTimeout(() => {
      for (const socket of this.io.sockets.sockets.values()) socket.conn.close();
    }, 100).unref();
  }

  /**
   * Shutdown, step one: refuse new connections, tell every connection to come
   * back (server-draining), and close its transport rather than the socket: a
   * Socket.IO disconnect packet ('io server disconnect') stops any
   * socket.io-client for good, while a closed transport makes every standard
   * client reconnect by itself, with its backoff, until a server answers.
   */
  disconnectAll(): void {
    this.draining = true;
    this.closing = true;
    for (const t of this.authTimers.values()) clearTimeout(t);
    for (const socket of this.io.sockets.sockets.values()) {
      socket.emit('server-draining', { reconnect: true });
      socket.conn.close();
    }
  }

  /** Shutdown, last step: the Socket.IO server (and its adapter) closes. */
  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      // io.close() closes the HTTP server too and waits for its every connection. Every client was
      // told to come back; what is still open after a moment (a request in flight, a transport a
      // reconnect opened as the server stopped) is cut, so the stop stays within SHUTDOWN_TIMEOUT_MS.
      const cut = setTimeout(() => this.deps.httpServer.closeAllConnections(), CLOSE_GRACE_MS);
      cut.unref();
      void this.io.close(() => {
        clearTimeout(cut);
        resolve();
      });
    });
  }

  get connectionCount(): number {
    return this.connections;
  }
}

/** The token's `exp` (seconds) has passed. */
function expired(p: Principal | undefined): boolean {
  return p?.kind === 'user' && p.expiresAt * 1000 <= Date.now();
}
