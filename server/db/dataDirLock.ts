import { closeSync, openSync, readFileSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * One process per embedded database. PGlite has no lock of its own: two
 * servers on one DATA_DIR both open it and corrupt each other's writes. The
 * lock is a file created exclusively (O_EXCL) holding the owner's pid and
 * host, its mtime refreshed while the owner lives. A lock is stale, and taken
 * over, when its owner is on this host and its pid is gone (or is our own pid,
 * as after a container restart where the server is pid 1 again), or, for a
 * lock written on another host (a shared volume), when it was not refreshed
 * for STALE_MS.
 */
export const STALE_MS = 30_000;
const REFRESH_MS = 10_000;

export class DataDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly owner: LockOwner,
  ) {
    super(
      `DATA_DIR ${dir} is in use by another Switchboard process (pid ${owner.pid} on ${owner.host}, since ${owner.since}); ` +
        'stop it, or give this one another DATA_DIR',
    );
    this.name = 'DataDirLockedError';
  }
}

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): LockOwner | null {
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockOwner>;
    return typeof o.pid === 'number' && typeof o.host === 'string' ? { pid: o.pid, host: o.host, since: String(o.since ?? '?') } : null;
  } catch {
    return null; // half-written or unreadable: the writer died between open and write
  }
}

function isStale(file: string, owner: LockOwner | null): boolean {
  if (owner && owner.host === hostname()) return owner.pid === process.pid || !alive(owner.pid);
  try {
    return Date.now() - statSync(file).mtimeMs > STALE_MS;
  } catch {
    return true; // gone meanwhile
  }
}

/** Takes the lock at `file`, or throws DataDirLockedError. Returns its release. */
export function lockDataDir(file: string, dir: string): () => void {
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = readOwner(file);
      if (attempt > 0 || !isStale(file, owner)) throw new DataDirLockedError(dir, owner ?? { pid: 0, host: '?', since: '?' });
      unlinkSync(file);
    }
  }
  const refresh = setInterval(() => {
    const now = new Date();
    try {
      utimesSync(file, now, now);
    } catch {
      // removed under us: nothing to refresh
    }
  }, REFRESH_MS);
  refresh.unref();
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    clearInterval(refresh);
    process.off('exit', release);
    try {
      if (readOwner(file)?.pid === me.pid) unlinkSync(file);
    } catch {
      // already gone
    }
  };
  // A process.exit() without close() (a fatal error) still frees the directory.
  process.on('exit', release);
  return release;
}
