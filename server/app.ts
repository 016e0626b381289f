import { randomUUID } from 'node:crypto';
import fastifyCors from '@fastify/cors';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { ApiKeys } from './auth/apiKeys';
import type { SigningKeys } from './auth/keys';
import { authPlugin } from './auth/plugin';
import { authRoutes } from './auth/routes';
import { callRoutes } from './calls/routes';
import { DomainEvents } from './events';
import { InvitationService } from './calls/invitations';
import { invitationRoutes } from './calls/invitationRoutes';
import { recordingRoutes } from './recording/routes';
import { uploadRoutes } from './uploads/routes';
import { UploadService } from './uploads/service';
import { CallService } from './calls/service';
import type { Config } from './config/config';
import type { Database } from './db/database';
import { healthRoutes } from './health/routes';
import { registerErrorHandling } from './http/errors';
import { AppError } from './errors';
import { buildValidator } from './http/validation';
import { ErrorResponse } from './http/schemas';
import type { WorkerPool } from './media/workerPool';
import { Metrics } from './metrics/metrics';
import { Sfu } from './media/sfu';
import { resolveFfmpeg } from './recording/ffmpeg';
import { PortPairs } from './recording/ports';
import { Recorder } from './recording/recorder';
import { recordingControlRoutes } from './recording/controlRoutes';
import type { Cluster } from './cluster/cluster';
import { LocalMediaService } from './media/mediaService';
import { InMemoryRoomStore } from './signaling/roomStore';
import { SingleNode } from './signaling/topology';
import { SignalingServer } from './signaling/server';
import { webRoutes } from './web/routes';
import { fastifyTrustProxy } from './http/trustProxy';
import { loadTls, tlsServerOptions, type TlsMaterial } from './tls/tls';
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
  signaling: SignalingServer;
  recorder: Recorder;
  /** Uploads of recordings made in browsers (its sweep runs while the app is open). */
  uploads: UploadService;
  metrics: Metrics;
  /** Set on shutdown: /ready answers 503 so load balancers stop sending traffic. */
  startDraining(): void;
  /** SIGTERM: stop taking joins, then let calls finish or move to other nodes, for at most timeoutMs. */
  drain(timeoutMs: number): Promise<void>;
  /** Starts the cluster membership (heartbeats, forwarded media requests); call once the server listens. */
  startCluster(): Promise<void>;
  /** Webhooks: their dispatcher is undefined unless WEBHOOK_URLS is set. */
  webhooks: Webhooks;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildApp(deps: AppDeps): Promise<App> {
  const { config } = deps;
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
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  registerErrorHandling(app);
  app.addSchema(ErrorResponse);

  if (config.rateLimit.max > 0) {
    await app.register(fastifyRateLimit, {
      max: config.rateLimit.max,
      timeWindow: config.rateLimit.windowSeconds * 1000,
      // Probes and docs are exempt (routes opt out with config.rateLimit = false).
      errorResponseBuilder: (_req, ctx) =>
        new AppError('RATE_LIMITED', `rate limit of ${ctx.max} requests per ${ctx.after} exceeded; retry later`),
    });
  }

  if (config.corsOrigins === '*' || config.corsOrigins.length > 0) {
    await app.register(fastifyCors, {
      origin: config.corsOrigins === '*' ? true : config.corsOrigins,
      // PATCH and the upload-* headers: browser uploads of recordings (server/uploads).
      methods: ['GET', 'HEAD', 'POST', 'PATCH'],
      exposedHeaders: ['upload-offset', 'upload-length', 'location'],
    });
  }

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Switchboard API',
        version: '0.1.0',
        description: 'WebRTC call backend: tokens, calls, recordings. Errors are { "error": { "code", "message" } }.',
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'Your backend: admin rights' },
          bearerToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A token from POST /auth/token' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', uiConfig: {}, staticCSP: false });

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
    if (c.status === 'active') events.emit('call.started', { call_id: c.id, room: c.roomId, at: new Date().toISOString() });
    else if (c.status === 'ended') events.emit('call.ended', { call_id: c.id, room: c.roomId, at: new Date().toISOString() });
  });
  // WEBHOOK_URLS set: every event is stored in the webhook outbox from now on.
  const webhooks = createWebhooks({ config: config.webhooks, prisma: deps.db.prisma, events, log: deps.logger, tuning: deps.webhookTuning });
  const metrics = new Metrics({ defaultMetrics: deps.defaultMetrics });
  const sfu = new Sfu(deps.workers, config.mediasoup.consumersPerRouter, deps.logger);
  const ffmpeg = resolveFfmpeg(config.recording.ffmpegPath);
  if (!ffmpeg) deps.logger.warn('ffmpeg not found (FFMPEG_PATH, ffmpeg-static, PATH): recording is unavailable');
  let signaling: SignalingServer | undefined;
  const recorder = new Recorder({
    prisma: deps.db.prisma,
    sfu,
    calls,
    recordingsDir: config.recordingsDir,
    ffmpeg,
    ports: new PortPairs(config.recording.minPort, config.recording.maxPort),
    log: deps.logger,
    notify: (room, event, payload) => {
      signaling?.io.to(`room:${room}`).emit(event, payload as never);
      const p = payload as { call_id: string; recording_id?: string; mode?: string; by?: string | null };
      const at = new Date().toISOString();
      if (event === 'recording-started') events.emit('recording.started', { call_id: p.call_id, room, recording_id: p.recording_id ?? '', mode: p.mode ?? 'participant', by: p.by ?? null, at });
      else events.emit('recording.finished', { call_id: p.call_id, room, recording: payload, at });
    },
  });
  const localMedia = new LocalMediaService(sfu, recorder);
  const invitations = new InvitationService(deps.db.prisma, { retentionDays: config.signaling.inboxRetentionDays, maxItems: config.signaling.inboxMaxItems });
  const cluster = deps.cluster;
  signaling = new SignalingServer({
    httpServer: app.server,
    sfu,
    recorder,
    config,
    tokens: app.tokens,
    calls,
    store: cluster?.store ?? new InMemoryRoomStore(),
    metrics,
    log: deps.logger,
    topology: cluster ?? new SingleNode(config.cluster.nodeId, localMedia),
    invitations,
    events,
    adapter: cluster?.adapter,
  });
  const load = () => ({ ...sfu.load(), connections: signaling.connectionCount, workers: deps.workers.alive });
  // Before the HTTP server closes: open WebSockets would keep it from closing.
  app.addHook('preClose', async () => {
    await signaling.close();
  });

  let draining = false;
  await app.register(healthRoutes, { db: deps.db, workers: deps.workers, ffmpeg, isDraining: () => draining });
  await app.register(authRoutes, { keys: deps.keys });
  await app.register(callRoutes, { calls });
  await app.register(invitationRoutes, { calls, invitations, signaling });
  await app.register(recordingRoutes, { prisma: deps.db.prisma, recordingsDir: config.recordingsDir });
  const uploads = new UploadService({
    prisma: deps.db.prisma,
    recordingsDir: config.recordingsDir,
    limits: config.uploads,
    log: deps.logger,
    // A finished client-side recording is a recording.finished event, as the server's are.
    onCompleted: (u) => {
      void deps.db.prisma.call
        .findUnique({ where: { id: u.callId }, select: { roomId: true } })
        .then((call) => {
          const recording = {
            recording_id: u.uploadId,
            call_id: u.callId,
            status: 'completed',
            mode: 'client',
            reason: 'uploaded',
            duration: Math.round((u.endedAt.getTime() - u.startedAt.getTime()) / 100) / 10,
            files: [{
              id: u.recordingId,
              participant_id: u.participantId,
              user_id: u.userId,
              segment: 0,
              status: 'completed',
              file_path: u.filePath,
              file_name: u.fileName,
              mime_type: u.mimeType,
              size_bytes: u.sizeBytes,
              sha256: u.sha256,
              duration_ms: null,
              error: null,
            }],
          };
          events.emit('recording.finished', { call_id: u.callId, room: call?.roomId ?? '', recording, at: u.endedAt.toISOString() });
        })
        .catch((err: unknown) => deps.logger.warn({ err, upload: u.uploadId }, 'could not announce a finished client upload'));
    },
  });
  await app.register(uploadRoutes, { uploads });
  uploads.startSweeping();
  app.addHook('onClose', async () => uploads.stopSweeping());
  await app.register(recordingControlRoutes, { calls, recorder: signaling });
  await app.register(webRoutes, { pages: config.web.enabled, devTokens: config.web.devTokens, maxTtlSeconds: config.jwt.maxTtlSeconds });
  await app.register(webhookRoutes, { prisma: deps.db.prisma, onRequeued: () => webhooks.dispatcher?.wake() });
  // Sending starts with the app (ready/listen). It stops on close, after preClose has
  // closed signaling (whose last participant.left events are still stored), before
  // the database closes.
  app.addHook('onReady', async () => {
    webhooks.start();
  });
  app.addHook('onClose', async () => {
    await webhooks.stop();
  });
  app.get('/metrics', { config: { rateLimit: false }, logLevel: 'warn', schema: { tags: ['health'], summary: 'Prometheus metrics' } }, async (_req, reply) => {
    void reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  return {
    app,
    events,
    calls,
    signaling,
    recorder,
    uploads,
    metrics,
    startDraining: () => {
      draining = true;
      signaling.startDraining();
    },
    drain: async (timeoutMs) => {
      draining = true;
      signaling.startDraining();
      await cluster?.startDraining(load());
      await signaling.drain(timeoutMs);
    },
    startCluster: async () => {
      await cluster?.start(localMedia, load, (id) => signaling.reapNode(id));
    },
    webhooks,
  };
}
