/**
 * Whether an error means "the database is not answering" (retry later) rather
 * than "this statement is wrong" (a bug or bad input). REST answers the first
 * with 503 DATABASE_UNAVAILABLE and signaling with the same code; writes
 * behind signaling retry it until it passes. Every shape below was seen from
 * Prisma 7 with @prisma/adapter-pg against a PostgreSQL that was stopped,
 * paused (SIGSTOP) or slow, and from PGlite once closed.
 */

/** Prisma's codes for a refused login, an unreachable, timed-out or vanished server or database, and an exhausted pool. */
const PRISMA_CODES = new Set(['P1000', 'P1001', 'P1002', 'P1003', 'P1008', 'P1017', 'P2024']);
/**
 * SQLSTATE: 08 connection exception, 28 login refused, 3D000 database gone,
 * 53 insufficient resources, 57P0x shutdown / cannot connect now, 57014 statement timeout.
 */
const SQLSTATE = /^(08...|28...|3D000|53...|57P0.|57014)$/;
const NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
/** pg's own messages (pool and socket), and the embedded database's once closed. */
const MESSAGES =
  /Query read timeout|timeout exceeded when trying to connect|Connection terminated|connection error|Can't reach database server|PGlite is closed|embedded database is closed|database ping timed out/i;

interface MaybeDbError {
  name?: string;
  code?: unknown;
  message?: string;
  meta?: { driverAdapterError?: { cause?: { originalCode?: unknown; code?: unknown; kind?: unknown } } };
  cause?: unknown;
}

export function isDatabaseOutage(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 3) return false;
  const e = err as MaybeDbError;
  if (e.name === 'PrismaClientInitializationError') return true;
  const code = typeof e.code === 'string' ? e.code : '';
  if (PRISMA_CODES.has(code) || NODE_CODES.has(code) || SQLSTATE.test(code)) return true;
  const cause = e.meta?.driverAdapterError?.cause;
  const sqlstate = String(cause?.originalCode ?? cause?.code ?? '');
  if (SQLSTATE.test(sqlstate) || cause?.kind === 'DatabaseNotReachable' || cause?.kind === 'SocketTimeout') return true;
  if (MESSAGES.test(e.message ?? '')) return true;
  return isDatabaseOutage(e.cause, depth + 1);
}
