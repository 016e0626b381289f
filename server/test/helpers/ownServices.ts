import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
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
  /** Starts it again on the same port (PostgreSQL: on its data; Redis: empty); resolves when it answers. */
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

/**
 * One inline command to a Redis on 127.0.0.1, over a plain socket (an ioredis
 * client that fails to connect leaves its connect timer behind): its first
 * reply line, or '' when it does not answer within 1 s or closes first.
 */
function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve) => {
    let reply = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(`${command}\r\n`));
    const done = (): void => {
      socket.destroy();
      resolve(reply.split('\r\n')[0] ?? '');
    };
    socket.setTimeout(1000, done);
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) done();
    });
    socket.on('error', done);
    socket.on('close', done);
  });
}

/**
 * A Redis of the test's own: `redis-server` with no persistence (`--save ''`,
 * no AOF), so that stop() then start() gives back an EMPTY Redis on the same
 * port, as a restarted cache-only Redis would be. stop() is SHUTDOWN NOSAVE
 * (SIGTERM if it does not answer), pause()/resume() SIGSTOP/SIGCONT.
 */
export async function startOwnRedis(): Promise<OwnService> {
  const data = tempDir('sb-redis-');
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let log = '';
  const start = async (): Promise<void> => {
    if (child) throw new Error(`own Redis on ${port} is running already`);
    const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', data.dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    c.stdout!.on('data', (d) => (log += d));
    c.stderr!.on('data', (d) => (log += d));
    await until(
      () => `own Redis on ${port} to answer: ${log.slice(-2000)}`,
      async () => {
        if (c.exitCode !== null) throw new Error(`own Redis on ${port} exited: ${log.slice(-2000)}`);
        return (await redisCommand(port, 'PING')).startsWith('+PONG');
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
  };
  const signal = (sig: NodeJS.Signals): void => {
    try {
      if (child?.pid) process.kill(child.pid, sig);
    } catch {
      // gone
    }
  };
  const stop = async (): Promise<void> => {
    if (!child) return;
    const c = child;
    child = undefined;
    signal('SIGCONT');
    // SHUTDOWN NOSAVE closes every client connection at once; SIGTERM if it does not answer.
    await redisCommand(port, 'SHUTDOWN NOSAVE');
    const killer = setTimeout(() => c.kill('SIGTERM'), 2000);
    await exited(c);
    clearTimeout(killer);
  };
  await start();
  return {
    url,
    port,
    start,
    stop,
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    remove: async () => {
      if (child) {
        const c = child;
        child = undefined;
        c.kill('SIGCONT');
        c.kill('SIGKILL');
        await exited(c);
      }
      data.remove();
    },
  };
}
