/**
 * Child processes of a benchmark (servers, baselines, load generators, encoders): their
 * output tail, exit, remembered descendants, and how they are stopped. BenchRun
 * (runner.mjs) starts them and stops whatever is still running on every exit path.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { childPids, comm, isAlive, mediasoupWorkerPids, startTime, waitGone } from './system.mjs';

/** @typedef {{ code: number | null, signal: NodeJS.Signals | null, error?: string }} ExitInfo */

/**
 * How a process is stopped: `signal` (default SIGTERM) to the process itself, then SIGKILL
 * (to its process group when detached) if it has not exited after `killAfterMs`.
 * @typedef {{ signal?: NodeJS.Signals, killAfterMs?: number }} StopOptions
 */

/**
 * ms: from the signal to the exit; forced: SIGKILL was needed; orphans: remembered
 * descendants (mediasoup workers, ffmpeg) still alive a second after it, then killed.
 * @typedef {{ ms: number, forced: boolean, code: number | null, signal: NodeJS.Signals | null, orphans: number[] }} StopResult
 */

/** process.kill that ignores an already-gone target. @param {number} pid @param {NodeJS.Signals} [signal] */
export function killQuietly(pid, signal = 'SIGKILL') {
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
}

/** One child process with the last `tailBytes` of its stdout+stderr. */
export class Proc {
  /**
   * @param {string} name
   * @param {import('node:child_process').ChildProcess} child
   * @param {{ detached: boolean, tailBytes?: number, stop?: StopOptions }} options
   */
  constructor(name, child, { detached, tailBytes = 8192, stop = {} }) {
    this.name = name;
    this.child = child;
    this.pid = /** @type {number} */ (child.pid);
    /** In its own process group: a kill of -pid reaches its children too. */
    this.detached = detached;
    this.stopOptions = stop;
    /** @type {ExitInfo | null} */
    this.exitInfo = null;
    /** Descendants to kill if they outlive it: pid -> start time (a reused pid is another process). */
    /** @type {Map<number, string | null>} */
    this.descendants = new Map();
    let tail = '';
    /** @param {string} d */
    const keep = (d) => {
      tail = (tail + d).slice(-tailBytes);
    };
    this.tail = () => tail;
    child.stdout?.setEncoding('utf8').on('data', keep);
    child.stderr?.setEncoding('utf8').on('data', keep);
    /** @type {Promise<ExitInfo>} */
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      child.once('error', (err) => {
        this.exitInfo ??= { code: null, signal: null, error: err.message };
        resolve(this.exitInfo);
      });
    });
  }

  /**
   * Remembers pids as descendants (killed if they outlive this process) and returns them.
   * @param {number[]} pids
   */
  remember(pids) {
    for (const pid of pids) if (!this.descendants.has(pid)) this.descendants.set(pid, startTime(pid));
    return pids;
  }

  /** The mediasoup-worker children now, remembered. */
  mediasoupWorkers() {
    return this.remember(mediasoupWorkerPids(this.pid));
  }

  /** Remembered descendants that are still running. */
  leftovers() {
    return [...this.descendants].filter(([pid, started]) => isAlive(pid) && startTime(pid) === started).map(([pid]) => pid);
  }

  /**
   * SIGKILL to it, its process group when detached (even after it exited: a child it left
   * behind, e.g. a mediasoup worker not yet remembered, is still in the group) and its
   * leftovers, now: the last resort at exit.
   */
  killNow() {
    if (this.detached) killQuietly(-this.pid);
    if (!this.exitInfo) killQuietly(this.pid);
    for (const pid of this.leftovers()) killQuietly(pid);
  }

  /**
   * Resolves with the first match of `pattern` in its output (e.g. a baseline's
   * "LISTENING <port>"); rejects if it exits first or after timeoutMs.
   * @param {RegExp} pattern
   * @param {number} timeoutMs
   * @returns {Promise<RegExpExecArray>}
   */
  waitForOutput(pattern, timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ${pattern} line within ${timeoutMs} ms:\n${this.tail()}`)), timeoutMs);
      const check = () => {
        const m = pattern.exec(this.tail());
        if (!m) return;
        clearTimeout(timer);
        this.child.stdout?.off('data', check);
        resolve(m);
      };
      this.child.stdout?.on('data', check);
      this.exited.then((e) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited ${JSON.stringify(e)}:\n${this.tail()}`));
      });
      check();
    });
  }
}

/**
 * Stops proc (see StopOptions); remembers its children first, since a mediasoup worker or an
 * ffmpeg can outlive a parent that exits without waiting for them.
 * @param {Proc} proc
 * @param {StopOptions} [options]
 * @returns {Promise<StopResult>}
 */
export async function stopProcess(proc, { signal = 'SIGTERM', killAfterMs = 5_000 } = {}) {
  const t0 = performance.now();
  let forced = false;
  if (!proc.exitInfo) {
    proc.remember(childPids(proc.pid));
    killQuietly(proc.pid, signal);
    const done = await Promise.race([proc.exited.then(() => true), sleep(killAfterMs).then(() => false)]);
    if (!done) {
      forced = true;
      console.error(`  ! ${proc.name} (pid ${proc.pid}) still running ${killAfterMs} ms after ${signal}: SIGKILL`);
      if (proc.detached) killQuietly(-proc.pid);
      killQuietly(proc.pid);
      await Promise.race([proc.exited, sleep(2_000)]);
    }
  }
  const ms = performance.now() - t0;
  /** @type {number[]} */
  const orphans = [];
  const killed = [];
  for (const pid of proc.leftovers()) {
    await Promise.race([waitGone(pid), sleep(1_000)]);
    if (proc.leftovers().includes(pid)) {
      orphans.push(pid);
      killed.push(`${comm(pid) ?? '?'} pid ${pid}`);
      killQuietly(pid);
    }
  }
  if (killed.length) console.error(`  ! ${proc.name}: killed leftover ${killed.join(', ')}`);
  return { ms, forced, code: proc.exitInfo?.code ?? null, signal: proc.exitInfo?.signal ?? null, orphans };
}
