import path from 'node:path';

/**
 * PostgreSQL and Redis servers of a test's own, on free ports, for fault
 * injection: the test stops, pauses (SIGSTOP) and restarts them. The shared
 * servers on 5432 and 6379 are never touched.
 */
export interface OwnService {
  url: string;
  port: number;
  /** Stops the server (fast shutdown) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data; resolves when it answers. */
  start(): Promise<void>;
  /** SIGSTOP: the server holds its connections but answers nothing. */
  pause(): void;
  resume(): void;
  /** Stops it for good and removes its data. */
  remove(): Promise<void>;
}

/** The benchmarks' own PostgreSQL (bench-writebehind), so that there is one copy of it. */
const OWN_POSTGRES = path.resolve(__dirname, '..', '..', '..', 'scripts', 'lib', 'ownPostgres.mjs');

/**
 * A PostgreSQL of the test's own: scripts/lib/ownPostgres.mjs. It is an ES
 * module, so it is loaded with import() (kept as is by the SWC transform,
 * ignoreDynamic; Jest runs with --experimental-vm-modules), not require().
 */
export async function startOwnPostgres(): Promise<OwnService> {
  const mod = (await import(OWN_POSTGRES)) as { startOwnPostgres(): Promise<OwnService> };
  return mod.startOwnPostgres();
}
