import pino from 'pino';
import { buildApp, type App, type AppDeps } from '../../app';
import { ApiKeys } from '../../auth/apiKeys';
import { loadSigningKeys, type SigningKeys } from '../../auth/keys';
import { loadConfig, type Config } from '../../config/config';
import { openDatabase, type Database } from '../../db/database';
import { WorkerPool } from '../../media/workerPool';
import { createPostgresDatabase, mediaPorts, tempDir, type Backend } from './env';

export const TEST_API_KEY = 'test-api-key-0123456789abcdef';

export interface TestApp extends App {
  backend: Backend;
  db: Database;
  config: Config;
  keys: SigningKeys;
  workers: WorkerPool;
  /** Drops the backend's database without closing the app (to test outages). */
  breakDatabase(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real app on a real database (a fresh PostgreSQL database or a fresh PGlite dir) and a real mediasoup worker.
 * env.DATABASE_URL: that database instead of a fresh one (not dropped on close: several apps in turn can share it).
 * deps: extra buildApp dependencies (e.g. webhookTuning).
 */
export async function startTestApp(backend: Backend, env: Record<string, string> = {}, deps: Pick<AppDeps, 'webhookTuning'> = {}): Promise<TestApp> {
  const data = tempDir();
  const recordings = tempDir('sb-rec-');
  const ports = await mediaPorts();
  const pgdb = backend === 'postgres' && !env.DATABASE_URL ? await createPostgresDatabase() : undefined;
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: data.dir,
    API_KEYS: TEST_API_KEY,
    MEDIASOUP_WORKERS: '1',
    LOG_LEVEL: 'silent',
    // Media on loopback, on ports of this test app's own (jest runs files in parallel).
    MEDIASOUP_LISTEN_IP: '127.0.0.1',
    ...ports.env,
    RECORDINGS_DIR: recordings.dir,
    ...(pgdb ? { DATABASE_URL: pgdb.url } : {}),
    ...env,
  });
  const logger = pino({ level: config.logLevel });
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const workers = new WorkerPool({
    ...config.mediasoup,
    log: logger,
    webRtc: { listenIp: config.mediasoup.listenIp, announcedAddress: config.mediasoup.announcedAddress, basePort: config.mediasoup.webRtcBasePort },
  });
  await workers.start();
  const keys = loadSigningKeys({ dataDir: config.dataDir, privateKeyPem: config.jwt.privateKeyPem, previousPublicKeyPems: config.jwt.previousPublicKeyPems });
  const built = await buildApp({ ...deps, config, db, workers, keys, apiKeys: new ApiKeys(config.apiKeys), logger });
  await built.app.ready();
  let dbClosed = false;
  return {
    ...built,
    backend,
    db,
    config,
    keys,
    workers,
    breakDatabase: async () => {
      if (pgdb) await pgdb.drop();
      else {
        dbClosed = true;
        await db.close();
      }
    },
    close: async () => {
      await built.app.close();
      workers.close();
      if (!dbClosed) await db.close();
      await pgdb?.drop();
      data.remove();
      recordings.remove();
      await ports.release();
    },
  };
}

export const admin = { 'x-api-key': TEST_API_KEY };
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Issues a token through the real endpoint. */
export async function issueToken(
  t: TestApp,
  body: { user_id: string; room?: string; role?: string; display_name?: string; ttl_seconds?: number },
): Promise<string> {
  const res = await t.app.inject({ method: 'POST', url: '/auth/token', headers: admin, payload: body });
  if (res.statusCode !== 201) throw new Error(`token issuance failed: ${res.statusCode} ${res.body}`);
  return (res.json() as { token: string }).token;
}
