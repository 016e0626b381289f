/**
 * BenchRun: what every benchmark process shares. It starts the child processes and temporary
 * directories a benchmark uses and takes them down again on every exit path: the normal
 * end, an exception, SIGINT/SIGTERM/SIGHUP, the watchdog, and (last resort, SIGKILL) the
 * process's 'exit' event. Cleanup order:
 *   1. beforeStopping steps, in the order given (close clients that hold connections open);
 *   2. the processes still running, by ascending `order`, those of one order in parallel
 *      (load generators and peers before the servers they talk to);
 *   3. afterStopping steps, last first (drop databases, delete keys);
 *   4. the temporary directories.
 */
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Proc, stopProcess } from './processes.mjs';
import { ROOT } from './system.mjs';

/** @typedef {import('./processes.mjs').StopOptions} StopOptions */
/** @typedef {import('./processes.mjs').StopResult} StopResult */
/** @typedef {() => unknown} Step */

/**
 * @typedef {object} ChildOptions
 * @property {NodeJS.ProcessEnv} [env] default: this process's environment
 * @property {string[]} [args]
 * @property {number} [tailBytes] how much of its output to keep (default 8 KiB)
 * @property {number} [order] cleanup stops lower orders first (default 1)
 * @property {StopOptions} [stop] how cleanup and stop() stop it
 * @property {() => Promise<unknown>} [stopWith] cleanup calls this instead (e.g. an IPC stop command)
 */

/**
 * JSON of `data`, two-space indented, with a final newline.
 * @param {string} file
 * @param {unknown} data
 */
export function writeJson(file, data) {
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
}

/** @param {unknown} err */
const messageOf = (err) => (err instanceof Error ? err.message : String(err));

/** @param {Step} step */
async function attempt(step) {
  try {
    await step();
  } catch (err) {
    console.error(`  ! cleanup step failed: ${messageOf(err)}`);
  }
}

export class BenchRun {
  /** @type {Map<Proc, { order: number, stop: () => Promise<unknown> }>} */
  #procs = new Map();
  /** @type {Set<string>} */
  #tempDirs = new Set();
  /** @type {Step[]} */
  #before = [];
  /** @type {Step[]} */
  #after = [];
  /** @type {Promise<void> | null} */
  #cleaning = null;
  #signalled = false;

  /**
   * Installs the signal handlers and the exit hook.
   * @param {{ doing: string }} options what the first signal announces, e.g. 'stopping servers and cleaning up...'
   */
  constructor({ doing }) {
    for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
      process.on(sig, () => {
        if (this.#signalled) {
          console.error(`\n${sig} again: killing children now`);
          process.exit(1);
        }
        this.#signalled = true;
        console.error(`\n${sig}: ${doing}`);
        this.cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
      });
    }
    process.on('exit', () => {
      for (const proc of this.#procs.keys()) proc.killNow();
      for (const dir of this.#tempDirs) {
        try {
          rmSync(dir, { recursive: true, force: true });
        } catch {
          /* best effort */
        }
      }
    });
  }

  /** True once a signal arrived: the run then ends without its report. */
  get signalled() {
    return this.#signalled;
  }

  /** True once cleanup has begun (processes exiting then are expected to). */
  get cleaningUp() {
    return this.#cleaning !== null;
  }

  /**
   * A fresh directory under the OS temp dir, removed at cleanup.
   * @param {string} prefix
   */
  tempDir(prefix) {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    this.#tempDirs.add(dir);
    return dir;
  }

  /**
   * `node script ...args` from ROOT in its own process group (so a forced kill also reaches
   * e.g. the server's mediasoup worker), stdout and stderr piped.
   * @param {string} name
   * @param {string} script
   * @param {ChildOptions & { stdin?: 'ignore' | 'pipe' }} [options]
   */
  spawnNode(name, script, { stdin = 'ignore', ...options } = {}) {
    const child = spawn(process.execPath, [script, ...(options.args ?? [])], {
      cwd: ROOT,
      env: options.env ?? process.env,
      stdio: [stdin, 'pipe', 'pipe'],
      detached: true,
    });
    return this.#track(new Proc(name, child, { detached: true, tailBytes: options.tailBytes, stop: options.stop }), options);
  }

  /**
   * `node script ...args` from ROOT with an IPC channel, in this process's group.
   * @param {string} name
   * @param {string} script
   * @param {ChildOptions & { serialization?: 'json' | 'advanced' }} [options]
   */
  forkNode(name, script, { serialization = 'json', ...options } = {}) {
    const child = fork(script, options.args ?? [], { cwd: ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization });
    return this.#track(new Proc(name, child, { detached: false, tailBytes: options.tailBytes, stop: options.stop }), options);
  }

  /**
   * Any program (found on PATH), in this process's group; stdout ignored, stderr kept.
   * @param {string} name
   * @param {string} command
   * @param {ChildOptions} [options]
   */
  spawnProgram(name, command, options = {}) {
    const child = spawn(command, options.args ?? [], { env: options.env ?? process.env, stdio: ['ignore', 'ignore', 'pipe'] });
    return this.#track(new Proc(name, child, { detached: false, tailBytes: options.tailBytes, stop: options.stop }), options);
  }

  /**
   * @param {Proc} proc
   * @param {ChildOptions} options
   */
  #track(proc, { order = 1, stopWith }) {
    this.#procs.set(proc, { order, stop: stopWith ?? (() => stopProcess(proc, proc.stopOptions)) });
    // Nothing of a process in this group outlives it unless it was remembered: forget it.
    proc.exited.then(() => {
      if (!proc.detached && proc.descendants.size === 0) this.#procs.delete(proc);
    });
    return proc;
  }

  /**
   * Stops proc now (its StopOptions, overridden by `options`) and forgets it.
   * @param {Proc} proc
   * @param {StopOptions} [options]
   * @returns {Promise<StopResult>}
   */
  stop(proc, options = {}) {
    this.#procs.delete(proc);
    return stopProcess(proc, { ...proc.stopOptions, ...options });
  }

  /** @param {Step} step run at cleanup before the processes are stopped, in the order given */
  beforeStopping(step) {
    this.#before.push(step);
  }

  /** @param {Step} step run at cleanup after the processes are stopped, last given first */
  afterStopping(step) {
    this.#after.push(step);
  }

  /** Takes everything down (see the file comment); every call returns the same promise. */
  cleanup() {
    this.#cleaning ??= (async () => {
      for (const step of this.#before) await attempt(step);
      const orders = [...new Set([...this.#procs.values()].map((p) => p.order))].sort((a, b) => a - b);
      for (const order of orders) {
        const batch = [...this.#procs].filter(([, p]) => p.order === order);
        for (const [proc] of batch) this.#procs.delete(proc);
        await Promise.all(batch.map(([, p]) => attempt(p.stop)));
      }
      for (let step = this.#after.pop(); step; step = this.#after.pop()) await attempt(step);
      for (const dir of this.#tempDirs) {
        rmSync(dir, { recursive: true, force: true });
        this.#tempDirs.delete(dir);
      }
    })();
    return this.#cleaning;
  }

  /**
   * Aborts the whole run (cleanup, exit 1) after budgetMs, whatever hangs.
   * @param {number} budgetMs
   */
  watchdog(budgetMs) {
    setTimeout(() => {
      console.error(`\nbench: exceeded its ${Math.round(budgetMs / 1000)} s budget; aborting`);
      this.cleanup().finally(() => process.exit(1));
    }, budgetMs).unref();
  }

  /**
   * Runs main, then cleans up whatever happened. Unless a signal ended the run: report()
   * (a failing report is logged, not fatal), `results` as JSON to `out` when given, and exit
   * 1 if main threw ("aborted: ..." is added to results.failures) or any failure was recorded.
   * @param {{ main: () => Promise<unknown>, results: { failures: string[] }, report?: () => void, out?: string | null }} options
   */
  async finish({ main, results, report, out }) {
    let threw = false;
    try {
      await main();
    } catch (err) {
      threw = true;
      results.failures.push(`aborted: ${messageOf(err)}`);
      console.error(`\nbench aborted: ${err instanceof Error ? err.stack : err}`);
    } finally {
      await this.cleanup();
    }
    if (this.#signalled) return; // the signal handler exits
    try {
      report?.();
    } catch (err) {
      console.error(`report failed: ${err instanceof Error ? err.stack : err}`);
    }
    if (out) {
      writeJson(out, results);
      console.log(`JSON written to ${out}`);
    }
    process.exit(threw || results.failures.length ? 1 : 0);
  }
}
