import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createPostgresDatabase, freePort, mediaPorts, tempDir } from './env';
import { MAIN, waitReady } from './process';
import { REDIS_URL, deleteKeysWith } from './redis';

export { freePort };

/**
 * Several real server processes (dist/server/main.js) sharing the machine's
 * Redis (a key prefix of their own) and one PostgreSQL database, each with its
 * own HTTP port, media ports and NODE_ID: a cluster on one machine. With
 * `redisUrl` (a Redis of the test's own, helpers/ownServices.ts) they share
 * that one instead, which the test may stop, restart empty or pause.
 */
export const CLUSTER_API_KEY = 'cluster-test-api-key-0123456789';

export interface Node {
  id: string;
  port: number;
  url: string;
  child: ChildProcess;
  out(): string;
  exited: Promise<number | null>;
  /** ms timestamp of exit (for drain timing). */
  exitedAt(): number | null;
}

export interface TestCluster {
  nodes: Node[];
  prefix: string;
  redis: Redis;
  databaseUrl: string;
  token(body: { user_id: string; room?: string; role?: string; display_name?: string }, via?: Node): Promise<string>;
  /** The stored record of a room (mediaNode, …). */
  room(name: string): Promise<{ callId: string; mediaNode: string | null } | null>;
  close(): Promise<void>;
}

export async function startCluster(count: number, env: Record<string, string> = {}, opts: { redisUrl?: string } = {}): Promise<TestCluster> {
  const redisUrl = opts.redisUrl ?? REDIS_URL;
  const db = await createPostgresDatabase();
  const prefix = `sbtest-${randomUUID().slice(0, 8)}:`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  // A Redis of the test's own may be stopped by the test: this connection then fails fast and reconnects quietly.
  const redis = new Redis(redisUrl, opts.redisUrl ? { maxRetriesPerRequest: 1 } : {});
  if (opts.redisUrl) redis.on('error', () => undefined);
  const dirs: Array<{ remove(): void }> = [];
  const releases: Array<() => Promise<void>> = [];
  const nodes: Node[] = [];
  for (let i = 0; i < count; i++) {
    const ports = await mediaPorts();
    releases.push(ports.release);
    const port = await freePort();
    const data = tempDir();
    dirs.push(data);
    const id = `node-${i}`;
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: data.dir,
        RECORDINGS_DIR: path.join(data.dir, 'recordings'),
        DATABASE_URL: db.url,
        REDIS_URL: redisUrl,
        REDIS_KEY_PREFIX: prefix,
        NODE_ID: id,
        NODE_ADDRESS: `127.0.0.1:${port}`,
        JWT_PRIVATE_KEY: pem,
        API_KEYS: CLUSTER_API_KEY,
        MEDIASOUP_WORKERS: '1',
        MEDIASOUP_LISTEN_IP: '127.0.0.1',
        LOG_LEVEL: 'info',
        ...ports.env,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let exitedAt: number | null = null;
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => {
        exitedAt = Date.now();
        resolve(code);
      }),
    );
    nodes.push({ id, port, url: `http://127.0.0.1:${port}`, child, out: () => out, exited, exitedAt: () => exitedAt });
  }
  await Promise.all(nodes.map((n) => waitReady(n, () => fetch(`${n.url}/ready`), { name: n.id })));

  const token: TestCluster['token'] = async (body, via = nodes.find((n) => n.child.exitCode === null && n.child.signalCode === null)!) => {
    const res = await fetch(`${via.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': CLUSTER_API_KEY },
      body: JSON.stringify(body),
    });
    if (res.status !== 201) throw new Error(`token: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { token: string }).token;
  };
  return {
    nodes,
    prefix,
    redis,
    databaseUrl: db.url,
    token,
    room: async (name) => {
      const raw = await redis.get(`${prefix}room:${name.replace(/%/g, '%25').replace(/:/g, '%3A')}`);
      return raw ? (JSON.parse(raw) as { callId: string; mediaNode: string | null }) : null;
    },
    close: async () => {
      for (const n of nodes) n.child.kill('SIGKILL');
      await Promise.all(nodes.map((n) => n.exited));
      // A Redis of the test's own is removed with everything in it.
      if (!opts.redisUrl) await deleteKeysWith(redis, prefix);
      redis.disconnect();
      await db.drop();
      for (const r of releases) await r();
      for (const d of dirs) d.remove();
    },
  };
}
