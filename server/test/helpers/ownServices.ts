import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { freePort, tempDir } from './env';
import { until } from './wait';

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

function pgBin(name: string): string {
  const root = '/usr/lib/postgresql';
  for (const v of existsSync(root) ? readdirSync(root).sort().reverse() : []) {
    const p = path.join(root, v, 'bin', name);
    if (existsSync(p)) return p;
  }
  return name;
}

/** PostgreSQL refuses to run as root: as root, run it as the postgres user. */
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startOwnPostgres(): Promise<OwnService> {
  const data = tempDir('sb-pg-');
  if (process.getuid?.() === 0)
    chownSync(data.dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
  const [initCmd, initArgs] = asPostgres(pgBin('initdb'), ['-D', data.dir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  execFileSync(initCmd, initArgs, { stdio: 'ignore' });
  const port = await freePort();
  const url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  let log = '';
  const start = async (): Promise<void> => {
    const [cmd, args] = asPostgres(pgBin('postgres'), [
      '-D',
      data.dir,
      '-p',
      String(port),
      '-k',
      data.dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'max_connections=50',
    ]);
    child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => (log += d));
    child.stderr!.on('data', (d) => (log += d));
    await until(
      () => `own PostgreSQL on ${port} to answer: ${log.slice(-2000)}`,
      async () => {
        const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
        try {
          await c.connect();
          await c.query('SELECT 1');
          return true;
        } catch {
          return null;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
  };
  // runuser forwards signals to postgres; the postmaster's own pid is in postmaster.pid.
  const postmasterPid = (): number =>
    Number(
      execFileSync('head', ['-1', path.join(data.dir, 'postmaster.pid')])
        .toString()
        .trim(),
    );
  const signal = (pid: number, sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // gone
    }
  };
  // Every backend too: a paused postmaster alone still lets open connections answer.
  const signalAll = (sig: NodeJS.Signals): void => {
    const pm = postmasterPid();
    signal(pm, sig);
    let children: string[] = [];
    try {
      children = execFileSync('pgrep', ['-P', String(pm)])
        .toString()
        .split(/\s+/)
        .filter(Boolean);
    } catch {
      // pgrep exits 1 when there are none
    }
    for (const pid of children) signal(Number(pid), sig);
    // runuser stops itself when its child stops (job control), and stays stopped.
    if (sig === 'SIGCONT' && child?.pid) signal(child.pid, sig);
  };
  const stop = async (): Promise<void> => {
    if (!child) return;
    const c = child;
    child = undefined;
    signal(postmasterPid(), 'SIGINT'); // fast shutdown: disconnects every client
    await exited(c);
  };
  await start();
  return {
    url,
    port,
    start,
    stop,
    pause: () => signalAll('SIGSTOP'),
    resume: () => signalAll('SIGCONT'),
    remove: async () => {
      if (child) {
        signalAll('SIGCONT');
        signal(postmasterPid(), 'SIGQUIT'); // immediate shutdown
        await exited(child);
      }
      data.remove();
    },
  };
}
