/**
 * A PostgreSQL server of one's own on a free port of 127.0.0.1, for fault injection: its
 * owner stops it, pauses it (SIGSTOP) and starts it again. The fault tests use it (through
 * server/test/helpers/ownServices.ts) and so does bench-writebehind.mjs; the shared server
 * on 5432 is never touched. It needs the server binaries, initdb and postgres (the newest
 * /usr/lib/postgresql/<version>/bin, else PATH), and as root runs them as the postgres
 * user, since PostgreSQL refuses to run as root.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './net.mjs';
import { ROOT } from './system.mjs';

const require = createRequire(path.join(ROOT, 'package.json'));

/**
 * @typedef {object} OwnPostgres
 * @property {string} url postgresql://postgres@127.0.0.1:<port>/postgres
 * @property {number} port
 * @property {string} dataDir
 * @property {() => Promise<void>} stop fast shutdown (every client disconnected); resolves once it exited
 * @property {() => Promise<void>} start starts it again on the same port and data; resolves once it answers
 * @property {() => void} pause SIGSTOP: it holds its connections but answers nothing
 * @property {() => void} resume
 * @property {() => Promise<void>} remove stops it for good and removes its data
 * @property {() => void} killNow last resort on a process's exit: immediate shutdown, data removed, now
 */

/** @param {string} name */
function pgBin(name) {
  const root = '/usr/lib/postgresql';
  for (const v of existsSync(root) ? readdirSync(root).sort().reverse() : []) {
    const p = path.join(root, v, 'bin', name);
    if (existsSync(p)) return p;
  }
  return name;
}

/** What `postgres --version` says, e.g. "postgres (PostgreSQL) 15.14", or null. */
export function postgresVersion() {
  try {
    return execFileSync(pgBin('postgres'), ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

const isRoot = () => process.getuid?.() === 0;

/**
 * PostgreSQL refuses to run as root: as root, run it as the postgres user.
 * @param {string} cmd
 * @param {string[]} args
 * @returns {[string, string[]]}
 */
function asPostgres(cmd, args) {
  return isRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

/** @param {import('node:child_process').ChildProcess} child */
function exited(child) {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve(undefined)));
}

/**
 * Whether `p` settles within `ms`; the timer is cleared either way (a test runner waits for
 * pending timers).
 * @param {Promise<unknown>} p
 * @param {number} ms
 * @returns {Promise<boolean>}
 */
function within(p, ms) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  /** @type {Promise<boolean>} */
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([p.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

/**
 * @param {number} pid
 * @param {NodeJS.Signals} sig
 */
function signal(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

/** @param {string} url */
async function answers(url) {
  /** @type {typeof import('pg')} */
  const pg = require('pg');
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * initdb into a fresh temporary directory, then starts the server (fsync off: its data is
 * thrown away) and resolves once it answers.
 * @param {{ maxConnections?: number, readyTimeoutMs?: number, stopTimeoutMs?: number }} [options]
 * @returns {Promise<OwnPostgres>}
 */
export async function startOwnPostgres({ maxConnections = 50, readyTimeoutMs = 20_000, stopTimeoutMs = 20_000 } = {}) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sb-pg-'));
  try {
    if (isRoot()) chownSync(dataDir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
    const [initCmd, initArgs] = asPostgres(pgBin('initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    execFileSync(initCmd, initArgs, { stdio: 'ignore' });
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const port = await freePort();
  const url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  /** @type {import('node:child_process').ChildProcess | undefined} */
  let child;
  let log = '';

  const start = async () => {
    const [cmd, args] = asPostgres(pgBin('postgres'), [
      '-D',
      dataDir,
      '-p',
      String(port),
      '-k',
      dataDir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      `max_connections=${maxConnections}`,
    ]);
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    /** @param {Buffer} d */
    const keep = (d) => (log = (log + d).slice(-8192));
    c.stdout?.on('data', keep);
    c.stderr?.on('data', keep);
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`own PostgreSQL on ${port} exited while starting: ${log.slice(-2000)}`);
      if (await answers(url)) return;
      if (Date.now() >= deadline) throw new Error(`own PostgreSQL on ${port} did not answer within ${readyTimeoutMs} ms: ${log.slice(-2000)}`);
      await sleep(100);
    }
  };

  // runuser forwards signals to postgres; the postmaster's own pid is in postmaster.pid.
  const postmasterPid = () => {
    try {
      return Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]) || null;
    } catch {
      return null;
    }
  };
  // Every backend too: a paused postmaster alone still lets open connections answer.
  /** @param {NodeJS.Signals} sig */
  const signalAll = (sig) => {
    const pm = postmasterPid();
    if (!pm) return;
    signal(pm, sig);
    /** @type {string[]} */
    let children = [];
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

  /**
   * @param {NodeJS.Signals} sig SIGINT: fast shutdown (disconnects every client); SIGQUIT: immediate
   */
  const shutdown = async (sig) => {
    if (!child) return;
    const c = child;
    child = undefined;
    const pm = postmasterPid();
    if (pm) signal(pm, sig);
    if (await within(exited(c), stopTimeoutMs)) return;
    // Bounded: a shutdown that hangs becomes an immediate one.
    signalAll('SIGCONT');
    if (pm) signal(pm, 'SIGQUIT');
    await within(exited(c), stopTimeoutMs);
  };

  try {
    await start();
  } catch (err) {
    if (child?.pid) signal(postmasterPid() ?? child.pid, 'SIGQUIT');
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    port,
    dataDir,
    start,
    stop: () => shutdown('SIGINT'),
    pause: () => signalAll('SIGSTOP'),
    resume: () => signalAll('SIGCONT'),
    remove: async () => {
      if (child) {
        signalAll('SIGCONT');
        await shutdown('SIGQUIT');
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
    killNow: () => {
      if (child) {
        signalAll('SIGCONT');
        const pm = postmasterPid();
        if (pm) signal(pm, 'SIGQUIT');
        child = undefined;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
