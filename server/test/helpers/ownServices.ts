import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import path from 'node:path';
import { freePort, tempDir } from './env';
import { until } from './wait';

/**
 * PostgreSQL and Redis servers of a test's own, on free ports, for fault
 * injection: the test stops, pauses (SIGSTOP) and restarts them. The shared
 * servers on 5432 and 6379 are never touched.
 */
function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

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
