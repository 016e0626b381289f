import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SECURITY } from '../http/openapi';
import type { Database } from '../db/database';
import type { WorkerPool } from '../media/workerPool';
import type { FfmpegBinaries } from '../recording/ffmpeg';

const Check = Type.Object({ ok: Type.Boolean(), detail: Type.Optional(Type.String()) });
const Ready = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  checks: Type.Object({
    database: Check,
    redis: Type.Optional(
      Type.Object(
        { ok: Type.Boolean(), detail: Type.Optional(Type.String()) },
        {
          description:
            'Only with REDIS_URL (several nodes): Redis answers PING within 2 s on every connection, and the room state is verified (not being restored after Redis came back empty)',
        },
      ),
    ),
    media_workers: Check,
    recording: Type.Object(
      { ok: Type.Boolean(), detail: Type.Optional(Type.String()) },
      { description: 'Informational: without ffmpeg only recording is unavailable; it does not make the node unready' },
    ),
  }),
});

/** Bound on the readiness database check, so /ready answers even when the database hangs. */
const READY_DB_TIMEOUT_MS = 2000;
/** The same for Redis. */
const READY_REDIS_TIMEOUT_MS = 2000;

export const healthRoutes: FastifyPluginAsyncTypebox<{
  db: Database;
  workers: WorkerPool;
  ffmpeg: FfmpegBinaries | undefined;
  isDraining: () => boolean;
  /** In a cluster: whether Redis answers within the bound and the room state in it is verified. */
  redis?: (timeoutMs: number) => Promise<{ ok: boolean; detail: string }>;
}> = async (app, { db, workers, ffmpeg, isDraining, redis }) => {
  const recording = ffmpeg ? { ok: true, detail: ffmpeg.ffmpeg } : { ok: false, detail: 'ffmpeg not found: recording unavailable' };
  app.get(
    '/health',
    {
      logLevel: 'warn',
      config: { rateLimit: false },
      schema: {
        tags: ['health'],
        summary: 'Liveness: the process is up',
        operationId: 'getHealth',
        security: SECURITY.none,
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    {
      logLevel: 'warn',
      config: { rateLimit: false },
      schema: {
        tags: ['health'],
        summary: 'Readiness: the database (and Redis, in a cluster) answers and the media workers are alive (503 otherwise)',
        operationId: 'getReadiness',
        security: SECURITY.none,
        response: { 200: Ready, 503: Ready },
      },
    },
    async (_request, reply) => {
      let database: { ok: boolean; detail?: string } = { ok: true, detail: db.kind };
      const pingDatabase = db.ping(READY_DB_TIMEOUT_MS).catch((err: unknown) => {
        database = { ok: false, detail: `${db.kind}: ${(err as Error).message.split('\n')[0]}` };
      });
      // Both bounded, in parallel.
      const [, redisCheck] = await Promise.all([pingDatabase, redis?.(READY_REDIS_TIMEOUT_MS)]);
      const alive = workers.alive;
      // Degraded (a worker being replaced) still serves; none alive does not.
      const media_workers = { ok: alive > 0, detail: `${alive}/${workers.size} alive` };
      const draining = isDraining();
      const ok = database.ok && (redisCheck?.ok ?? true) && media_workers.ok && !draining;
      return reply
        .status(ok ? 200 : 503)
        .send({ status: ok ? 'ready' : 'not_ready', checks: { database, ...(redisCheck ? { redis: redisCheck } : {}), media_workers, recording } });
    },
  );
};
