import { randomUUID } from 'node:crypto';
import fastifyCors from '@fastify/cors';
import fastifyRateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { ApiKeys } from './auth/apiKeys';
import type { SigningKeys } from './auth/keys';
import { authPlugin } from './auth/plugin';
import { authRoutes } from './auth/routes';
import { CallAccess } from './calls/access';
import { callRoutes } from './calls/routes';
import { CallService } from './calls/service';
import type { Cluster } from './cluster/cluster';
import { Failover } from './cluster/failover';
import { StateRestore } from './cluster/restore';
import type { Config } from './config/config';
import type { Database } from './db/database';
import { AppError } from './errors';
import { DomainEvents } from './events';
import { healthRoutes } from './health/routes';
import { registerErrorHandling, registerRequestLog } from './http/errors';
import { registerOpenApi, SECURITY } from './http/openapi';
import { ErrorResponse } from './http/schemas';
import { fastifyTrustProxy } from './http/trustProxy';
import { buildValidator, registerTextCheck } from './http/validation';
import { Invitations, InvitationStore } from './invitations';
import { invitationRoutes } from './invitations/routes';
import { Sfu } from './media/sfu';
import type { WorkerPool } from './media/workerPool';
import { LocalMediaService } from './mediaNode/local';
import { registerHttpMetrics } from './metrics/http';
import { Metrics } from './metrics/metrics';
import { recordingControlRoutes } from './recording/controlRoutes';
import { resolveFfmpeg } from './recording/ffmpeg';
import { PortPairs } from './recording/ports';
import { Recorder } from './recording/recorder';
import { RecordingRecovery } from './recording/recovery';
import { recordingRoutes } from './recording/routes';
import { logLifecycle } from './logging';
import { InMemoryRoomStore, Rooms, SingleNode } from './rooms';
import { CrashRecovery, type StartupRecovery } from './rooms/recovery';
import { SignalingServer } from './signaling/server';
import { loadTls, tlsServerOptions, type TlsMaterial } from './tls/tls';
import { announceUploads } from './uploads/announce';
import { uploadRoutes } from './uploads/routes';
import { UploadService } from './uploads/service';
import { webRoutes } from './web/routes';
import type { WebhookTuning } from './webhooks/dispatcher';
import { webhookRoutes } from './webhooks/routes';
import { createWebhooks, type Webhooks } from './webhooks/webhooks';

/**
 * Builds the HTTP application from already-opened resources. main.ts opens and
 * closes the resources; tests build apps around their own.
 */
export interface AppDeps {
  config: Config;
  db: Database;
  workers: WorkerPool;
  keys: SigningKeys;
  apiKeys: ApiKeys;
  logger: FastifyBaseLogger;
  /** A cluster sharing Redis (REDIS_URL): room state, locks, the Socket.IO adapter, media placement. Unset: one node in memory. */
  cluster?: Cluster;
  /** Collect Node's default process metrics (off in tests that build many apps). */
  defaultMetrics?: boolean;
  /** Webhook dispatcher tuning (tests: a faster backoff). */
  webhookTuning?: WebhookTuning;
  /** Serve HTTPS/WSS with this certificate; unset: config.tls's (loaded here), or plain HTTP without it. */
  tls?: TlsMaterial;
}

export interface App {
  app: FastifyInstance;
  /** What happened in calls (webhooks listen). */
  events: DomainEvents;
  calls: CallService;
  /** The rooms of calls in progress (the domain services signaling and REST call). */
  rooms: Rooms;
  /** The Socket.IO adapter. */
  signaling: SignalingServer;
  /** This node's SFU. */
  sfu: Sfu;
  recorder: Recorder;
  /** Uploads of recordings made in browsers (its sweep runs while the app is open). */
  uploads: UploadService;
  metrics: Metrics;
  /** Set on shutdown: /ready answers 503 so load balancers stop sending traffic. */
  startDraining(): void;
  /** SIGTERM: stop taking joins, then let calls finish or move to other nodes, for at most timeoutMs. */
  drain(timeoutMs: number): Promise<void>;
  /**
   * Closes what a crashed predecessor left open (calls, participants, recording
   * files; see rooms/recovery.ts). Call before taking traffic, before startCluster.
   */
  recover(): Promise<StartupRecovery>;
  /** Starts the cluster membership (heartbeats, forwarded media requests; first, the clean-up after this node's previous life). */
  startCluster(): Promise<void>;
  /** Webhooks: their dispatcher is undefined unless WEBHOOK_URLS is set. */
  webhooks: Webhooks;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildApp(deps: AppDeps): Promise<App> {
  const { config } = deps;
  // Every recording row this process writes starts after this: older rows of this NODE_ID are a previous life's.
  const bootedAt = new Date();
  const tls = deps.tls ?? (config.tls ? loadTls(config.tls) : undefined);
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: config.bodyLimitBytes,
    // With TLS the server is an https.Server (a tls.Server: main.ts swaps its certificate
    // on reload); Socket.IO attaches to it all the same, so signaling is WSS.
    ...(tls ? { https: tlsServerOptions(tls) } : {}),
    // The same trust rule as signaling's client_ip (server/http/trustProxy.ts).
    trustProxy: fastifyTrustProxy(config.trustProxy),
    // genReqId reads x-request-id itself: a caller's id is used only when it is a
    // sane token, so arbitrary input never reaches logs or response headers.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    schemaController: { compilersFactory: { buildValidator } },
    // One line per request (registerRequestLog) instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  registerErrorHandling(app);
  registerRequestLog(app);
  const metrics = new Metrics({ defaultMetrics: deps.defaultMetrics, media: config.metrics });
  registerHttpMetrics(app, metrics);
  registerTextCheck(app);
  app.addSchema(ErrorResponse);

  if (config.rateLimit.max > 0) {
    await app.register(fastifyRateLimit, {
      max: config.rateLimit.max,
      timeWindow: config.rateLimit.windowSeconds * 1000,
      // Probes and docs are exempt (routes opt out with config.rateLimit = false).
      errorResponseBuilder: (_req, ctx) => new AppError('RATE_LIMITED', `rate limit of ${ctx.max} requests per ${ctx.after} exceeded; retry later`),
    });
  }

  if (config.corsOrigins === '*' || config.corsOrigins.length > 0) {
    await app.register(fastifyCors, {
      origin: config.corsOrigins === '*' ? true : config.corsOrigins,
      // PATCH, DELETE and the tus headers: browser uploads of recordings (server/uploads).
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS'],
      exposedHeaders: [
        'location',
        'tus-resumable',
        'tus-version',
        'tus-extension',
        'tus-max-size',
        'tus-checksum-algorithm',
        'upload-offset',
        'upload-length',
        'upload-defer-length',
        'upload-metadata',
        'upload-expires',
        'recording-id',
      ],
    });
  }

  await registerOpenApi(app, { publicUrl: config.publicUrl, rateLimited: config.rateLimit.max > 0 });

  await app.register(authPlugin, {
    keys: deps.keys,
    apiKeys: deps.apiKeys,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    defaultTtlSeconds: config.jwt.defaultTtlSeconds,
    maxTtlSeconds: config.jwt.maxTtlSeconds,
  });

  const calls = new CallService(deps.db.prisma);
  // What happened in calls, for integrations (webhooks).
  const events = new DomainEvents();
  calls.on('call-state-changed', (c) => {
    if (c.change !== 'status') return;
    if (c.status === 'active') events.emit('call.started', { call_id: c.id, room: c.roomId, at: c.at.toISOString() });
    else if (c.status === 'ended') events.emit('call.ended', { call_id: c.id, room: c.roomId, at: c.at.toISOString() });
  });
  logLifecycle(events, deps.logger);
  // WEBHOOK_URLS set: every event is stored in the webhook outbox from now on.
  const webhooks = createWebhooks({
    config: config.webhooks,
    prisma: deps.db.prisma,
    events,
    log: deps.logger,
    tuning: deps.webhookTuning,
    onAttempt: (status, seconds) => metrics.webhookAttempt(status, seconds),
  });

  // This node's media: the SFU and the recorder, behind the media node port (forwarded to in a cluster).
  const sfu = new Sfu(deps.workers, config.mediasoup.limits, deps.logger);
  const ffmpeg = resolveFfmpeg(config.recording.ffmpegPath);
  if (!ffmpeg) deps.logger.warn('ffmpeg not found (FFMPEG_PATH, ffmpeg-static, PATH): recording is unavailable');
  const recorder = new Recorder({
    prisma: deps.db.prisma,
    sfu,
    calls,
    recordingsDir: config.recordingsDir,
    ffmpeg,
    ports: new PortPairs(config.recording.minPort, config.recording.maxPort),
    log: deps.logger,
    nodeId: config.cluster.nodeId,
  });
  const localMedia = new LocalMediaService(sfu, recorder);
  // Media metrics come from mediasoup's observers (every worker, replacements included) and the recorder's events.
  for (const worker of deps.workers.workers()) metrics.media.watch(worker);
  deps.workers.on('started', (worker) => metrics.media.watch(worker));
  deps.workers.on('died', () => metrics.media.died());
  recorder.on('finished', (_room, recording) => metrics.recordingFinished(recording));
  recorder.on('ffmpeg-crashed', (_room, restarting) => metrics.ffmpegCrashed(restarting));

  // The rooms (domain), reaching clients through the Socket.IO adapter.
  const cluster = deps.cluster;
  const signaling = new SignalingServer({ httpServer: app.server, config, tokens: app.tokens, metrics, log: deps.logger, adapter: cluster?.adapter });
  const rooms = new Rooms({
    cfg: config.signaling,
    turn: config.turn,
    store: cluster?.store ?? new InMemoryRoomStore(),
    topology: cluster ?? new SingleNode(config.cluster.nodeId, localMedia),
    calls,
    clients: signaling,
    events,
    metrics,
    log: deps.logger,
  });
  rooms.attachMedia(sfu, recorder);
  const invitationStore = new InvitationStore(deps.db.prisma, { retentionDays: config.signaling.inboxRetentionDays, maxItems: config.signaling.inboxMaxItems });
  const invitations = new Invitations({
    store: invitationStore,
    rooms: rooms.ctx,
    calls,
    clients: signaling,
    events,
    log: deps.logger,
    timeoutMs: config.signaling.invitationTimeoutMs,
  });
  const recovery = new CrashRecovery(rooms.ctx, {
    recordings: new RecordingRecovery({ prisma: deps.db.prisma, recordingsDir: config.recordingsDir, ffmpeg, log: deps.logger }),
    clustered: Boolean(cluster),
    nodes: async () => {
      const nodes = await cluster?.registry.scan();
      return { live: nodes?.live.map((n) => n.id) ?? [], dead: nodes?.dead ?? [] };
    },
    bootedAt,
  });
  const failover = new Failover(rooms, () => signaling.handOff(), recovery);
  // Redis came back empty: this node writes back the rooms and participants it owns.
  const restore =
    cluster &&
    new StateRestore(
      rooms,
      cluster.recovery,
      () => signaling.localSessions(),
      (room) => sfu.get(room) !== undefined,
    );
  signaling.serve({ rooms, invitations });

  const load = () => ({ ...sfu.load(), connections: signaling.connectionCount, workers: deps.workers.alive });
  // Before the HTTP server closes: open WebSockets would keep it from closing.
  app.addHook('preClose', async () => {
    const { node } = rooms.ctx;
    node.draining = true;
    node.closing = true;
    node.handingOff = false;
    // Finalise every recording while media still flows, then let everyone go.
    await recorder.stopAll();
    invitations.close();
    signaling.disconnectAll();
    await rooms.ctx.locks.idle();
    await rooms.presence.removeAllOnNode();
    await signaling.close();
    await rooms.ctx.locks.idle();
    // Bounded: with the database down, the writes left are logged, and the process still stops in time.
    await rooms.flushWrites(deps.config.shutdownTimeoutMs * 0.4);
  });

  let draining = false;
  await app.register(healthRoutes, {
    db: deps.db,
    workers: deps.workers,
    ffmpeg,
    isDraining: () => draining,
    redis: cluster && ((timeoutMs) => cluster.readiness(timeoutMs)),
  });
  await app.register(authRoutes, { keys: deps.keys });
  // REST rights come from the room's current state (roles changed, users removed), not only the token.
  const access = new CallAccess(rooms);
  await app.register(callRoutes, { calls, access });
  await app.register(invitationRoutes, { calls, access, invitations, store: invitationStore });
  await app.register(recordingRoutes, { prisma: deps.db.prisma, recordingsDir: config.recordingsDir, access });
  const announce = announceUploads(deps.db.prisma, events, deps.logger);
  const uploads = new UploadService({
    prisma: deps.db.prisma,
    recordingsDir: config.recordingsDir,
    limits: config.uploads,
    log: deps.logger,
    onCompleted: (upload) => {
      metrics.uploadCompleted(upload.sizeBytes);
      announce(upload);
    },
  });
  await app.register(uploadRoutes, { uploads });
  uploads.startSweeping();
  app.addHook('onClose', async () => uploads.stopSweeping());
  await app.register(recordingControlRoutes, { calls, access, recorder: rooms.media });
  await app.register(webRoutes, { pages: config.web.enabled, devTokens: config.web.devTokens, maxTtlSeconds: config.jwt.maxTtlSeconds });
  await app.register(webhookRoutes, { prisma: deps.db.prisma, onRequeued: () => webhooks.dispatcher?.wake() });
  // Sending starts with the app (ready/listen). It stops on close, after preClose has
  // closed signaling (whose last participant.left events are still stored), before
  // the database closes.
  app.addHook('onReady', async () => {
    webhooks.start();
    metrics.media.start();
  });
  app.addHook('onClose', async () => {
    await webhooks.stop();
    await metrics.media.stop();
  });
  app.get(
    '/metrics',
    {
      config: { rateLimit: false },
      logLevel: 'warn',
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics',
        operationId: 'getMetrics',
        security: SECURITY.none,
        response: { 200: { description: 'The metrics in the Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    async (_req, reply) => {
      void reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );

  return {
    app,
    events,
    calls,
    rooms,
    signaling,
    sfu,
    recorder,
    uploads,
    metrics,
    startDraining: () => {
      draining = true;
      rooms.ctx.node.draining = true;
      signaling.startDraining();
    },
    drain: async (timeoutMs) => {
      draining = true;
      signaling.startDraining();
      await cluster?.startDraining(load());
      await failover.drain(timeoutMs);
    },
    recover: () => recovery.atStartup(),
    startCluster: async () => {
      await cluster?.start(
        localMedia,
        load,
        (id) => failover.reapNode(id),
        (owned) => restore!.restore(owned),
      );
    },
    webhooks,
  };
}
