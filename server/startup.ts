import type { Config } from './config/config';
import { DataDirLockedError } from './db/dataDirLock';

/**
 * Start-up failures an operator can fix, said as what to do and naming the
 * variable to change, instead of the library's error (ECONNREFUSED 127.0.0.1:1,
 * a level-60 EADDRINUSE line that does not say PORT).
 */
export class StartupError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = 'StartupError';
  }
}

/** A connection string with its password hidden. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable)';
  }
}

/** Errors that mean the database server was not reached at all. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET']);

export function startupProblem(stage: 'database' | 'listen', err: unknown, config: Pick<Config, 'databaseUrl' | 'dataDir' | 'port' | 'host'>): Error {
  const e = err as NodeJS.ErrnoException & { errors?: Array<NodeJS.ErrnoException> };
  const code = e?.code ?? e?.errors?.[0]?.code;
  if (stage === 'listen') {
    const where = `${config.host}:${config.port}`;
    if (code === 'EADDRINUSE')
      return new StartupError('PORT', `PORT: ${where} is in use by another process; stop it, or set PORT (and HOST) to a free address`);
    if (code === 'EACCES') return new StartupError('PORT', `PORT: no permission to listen on ${where}; use a port above 1023, or grant the capability`);
    if (code === 'EADDRNOTAVAIL')
      return new StartupError('HOST', `HOST: ${config.host} is not an address of this machine; set HOST (0.0.0.0 for every interface)`);
    return err instanceof Error ? err : new Error(String(err));
  }
  if (err instanceof DataDirLockedError) return new StartupError('DATA_DIR', err.message);
  const message = e instanceof Error ? e.message : String(err);
  if (config.databaseUrl) {
    const hint = UNREACHABLE.has(code ?? '')
      ? 'is PostgreSQL running and reachable? (unset DATABASE_URL to use the embedded database in DATA_DIR)'
      : code === '28P01' || code === '28000'
        ? 'the user or password is refused'
        : code === '3D000'
          ? 'that database does not exist: create it (createdb) or name another'
          : undefined;
    if (!hint) return err instanceof Error ? err : new Error(message);
    return new StartupError('DATABASE_URL', `DATABASE_URL: cannot use the database at ${redactUrl(config.databaseUrl)}: ${hint} (${code})`);
  }
  return new StartupError('DATA_DIR', `DATA_DIR: cannot open the embedded database in ${config.dataDir} (${message})`);
}
