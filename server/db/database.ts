import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client';
import { lockDataDir } from './dataDirLock';
import { migrate, type SqlExecutor } from './migrate';

/**
 * One database handle for the whole server. DATABASE_URL set: PostgreSQL through
 * Prisma's pg adapter. Unset: PGlite (PostgreSQL compiled to WebAssembly) stored
 * under DATA_DIR/pglite, so a fresh clone starts with no setup. Both run the same
 * migrations and the same Prisma client; nothing above this file knows which.
 */
export type DatabaseKind = 'postgres' | 'pglite';

export interface Database {
  kind: DatabaseKind;
  prisma: PrismaClient;
  /** Throws when the database does not answer within timeoutMs. */
  ping(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl?: string;
  dataDir: string;
  /** Apply pending migrations before returning (default true). */
  migrate?: boolean;
  log?: (msg: string) => void;
}

/** Advisory-lock key Prisma uses for migrations, so we and `prisma migrate` exclude each other. */
const MIGRATION_LOCK_KEY = 72707369;
const PG_POOL_MAX = 10;
/**
 * Every wait on PostgreSQL is bounded, so a stalled server (SIGSTOP, a network
 * partition, a lock pile-up) turns into DATABASE_UNAVAILABLE instead of
 * requests and joins hanging for the whole stall: a connection (or a free
 * pool slot) within 5 s, a statement within 5 s on the server
 * (statement_timeout, SQLSTATE 57014), and an answer within 8 s on the
 * client (query_timeout: a server that answers nothing at all).
 */
const PG_CONNECT_TIMEOUT_MS = 5000;
const PG_STATEMENT_TIMEOUT_MS = 5000;
const PG_QUERY_TIMEOUT_MS = 8000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export async function runPostgresMigrations(databaseUrl: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const executor: SqlExecutor = {
    exec: async (sql) => {
      await client.query(sql);
    },
    query: async <T>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as T[],
    withLock: async (fn) => {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      try {
        return await fn();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
      }
    },
  };
  try {
    return await migrate(executor);
  } finally {
    await client.end();
  }
}

export function pgliteExecutor(db: PGlite): SqlExecutor {
  return {
    exec: async (sql) => {
      await db.exec(sql);
    },
    query: async <T>(sql: string, params?: unknown[]) => (await db.query<T>(sql, params)).rows,
    // One PGlite instance belongs to one process: nothing to serialise against.
    withLock: (fn) => fn(),
  };
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  const log = opts.log ?? (() => undefined);
  const shouldMigrate = opts.migrate ?? true;

  if (opts.databaseUrl) {
    if (shouldMigrate) {
      const applied = await runPostgresMigrations(opts.databaseUrl);
      if (applied.length) log(`applied migrations: ${applied.join(', ')}`);
    }
    const adapter = new PrismaPg({
      connectionString: opts.databaseUrl,
      max: PG_POOL_MAX,
      connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
      statement_timeout: PG_STATEMENT_TIMEOUT_MS,
      query_timeout: PG_QUERY_TIMEOUT_MS,
      // Dead connections (a server restarted under us) are noticed by the OS, not only at the next query.
      keepAlive: true,
    });
    const prisma = new PrismaClient({ adapter });
    return {
      kind: 'postgres',
      prisma,
      ping: async (timeoutMs = 2000) => {
        await withTimeout(prisma.$queryRaw`SELECT 1`, timeoutMs, 'database ping');
      },
      close: () => prisma.$disconnect(),
    };
  }

  const dir = path.join(opts.dataDir, 'pglite');
  mkdirSync(dir, { recursive: true });
  // Before opening: a second process on the same files would corrupt them.
  const unlock = lockDataDir(path.join(opts.dataDir, 'pglite.lock'), opts.dataDir);
  let pglite: PGlite;
  try {
    pglite = await PGlite.create(dir);
    if (shouldMigrate) {
      const applied = await migrate(pgliteExecutor(pglite));
      if (applied.length) log(`applied migrations to embedded database ${dir}: ${applied.join(', ')}`);
    }
  } catch (err) {
    unlock();
    throw err;
  }
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
  let closed = false;
  return {
    kind: 'pglite',
    prisma,
    ping: async (timeoutMs = 2000) => {
      if (closed || pglite.closed) throw new Error('embedded database is closed');
      await withTimeout(pglite.query('SELECT 1'), timeoutMs, 'database ping');
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await prisma.$disconnect();
      await pglite.close();
      unlock();
    },
  };
}
