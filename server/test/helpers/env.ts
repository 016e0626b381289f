import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import pg from 'pg';

/**
 * Test fixtures for the two database backends. PostgreSQL tests get a database
 * of their own on the machine's server (TEST_DATABASE_URL names an admin
 * connection; default postgres@127.0.0.1:5432), dropped afterwards. PGlite tests
 * get a temporary DATA_DIR.
 */
export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export type Backend = 'postgres' | 'pglite';
export const BACKENDS: Backend[] = ['postgres', 'pglite'];

export function tempDir(prefix = 'sb-test-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function databaseUrlFor(name: string): string {
  const u = new URL(ADMIN_DATABASE_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function createPostgresDatabase(): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `sb_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}"`));
  return {
    url: databaseUrlFor(name),
    name,
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const tcp = createServer();
    tcp.once('error', () => resolve(false));
    tcp.listen(port, '127.0.0.1', () => {
      const udp = createSocket('udp4');
      udp.once('error', () => tcp.close(() => resolve(false)));
      udp.bind(port, '127.0.0.1', () => udp.close(() => tcp.close(() => resolve(true))));
    });
  });
}

let nextBlock = 0;

/** Listens on a TCP port, or null if it is taken: an atomic claim other processes see. */
function claim(port: number): Promise<Server | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(null));
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

/**
 * Media ports for one test app: a WebRtcServer port (UDP and TCP free), a
 * 100-port RTC range and a 90-port recording range above it. Parallel jest
 * workers must not pick the same block: the block is claimed by listening on
 * its port +9 (unused: WebRTC takes base..base+workers-1, RTC starts at +10)
 * until release() is called.
 */
export async function mediaPorts(): Promise<{ env: Record<string, string>; release(): Promise<void> }> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const block = (process.pid * 7 + nextBlock++) % 60;
    const base = 20000 + block * 200;
    const held = await claim(base + 9);
    if (!held) continue;
    if (await portFree(base)) {
      return {
        env: {
          MEDIASOUP_WEBRTC_PORT: String(base),
          MEDIASOUP_RTC_MIN_PORT: String(base + 10),
          MEDIASOUP_RTC_MAX_PORT: String(base + 109),
          RECORDING_MIN_PORT: String(base + 110),
          RECORDING_MAX_PORT: String(base + 199),
        },
        release: () => new Promise<void>((resolve) => held.close(() => resolve())),
      };
    }
    held.close();
  }
  throw new Error('no free media port block');
}

/** A TCP port free on 127.0.0.1 right now (for a server process a test starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}
