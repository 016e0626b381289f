/**
 * What the benchmarks read about processes and the machine: /proc (Linux only), the
 * installed package versions, and the machine fields every result records.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** Repository root (the folder above scripts/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// ---------------------------------------------------------------- one process

/**
 * Fields of /proc/<pid>/stat after the command name: [0] is the state, [11] utime,
 * [12] stime, [19] starttime. null if the process is gone.
 * @param {number} pid
 * @returns {string[] | null}
 */
export function statFields(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * Running = exists and is not a zombie (orphans are re-parented to PID 1, which may reap late).
 * @param {number} pid
 */
export function isAlive(pid) {
  const f = statFields(pid);
  return !!f && f[0] !== 'Z' && f[0] !== 'X';
}

/**
 * When the process started, in clock ticks after boot: with the pid it names one process,
 * so a pid the kernel reused for another one is never mistaken for it.
 * @param {number} pid
 * @returns {string | null}
 */
export const startTime = (pid) => statFields(pid)?.[19] ?? null;

/**
 * The process's command name (/proc/<pid>/comm), or null if it is gone.
 * @param {number} pid
 */
export function comm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * Direct children of pid, from /proc/<pid>/task/<tid>/children; `ps --ppid` when /proc lists
 * none (kernels built without CONFIG_PROC_CHILDREN).
 * @param {number} pid
 * @returns {number[]}
 */
export function childPids(pid) {
  /** @type {Set<number>} */
  const pids = new Set();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(/\s+/)) if (c) pids.add(Number(c));
      } catch {
        /* thread gone */
      }
    }
  } catch {
    /* gone */
  }
  if (pids.size === 0) {
    try {
      for (const c of execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split(/\s+/)) if (c) pids.add(Number(c));
    } catch {
      /* no children, or no ps */
    }
  }
  return [...pids];
}

/** @param {number} pid */
const isMediasoupWorker = (pid) => comm(pid)?.startsWith('mediasoup-work') ?? false;

/**
 * The mediasoup-worker children of pid (comm is cut to 15 characters: "mediasoup-worke").
 * @param {number} pid
 */
export const mediasoupWorkerPids = (pid) => childPids(pid).filter(isMediasoupWorker);

/**
 * A "<field>: N kB" value of /proc/<pid>/status (VmRSS, VmHWM, ...) in KiB, or null.
 * @param {number} pid
 * @param {string} field
 */
export function statusKb(pid, field) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * utime and stime of one process in clock ticks, or null if it is gone.
 * @param {number} pid
 * @returns {{ user: number, sys: number } | null}
 */
export function cpuTicks(pid) {
  const f = statFields(pid);
  return f ? { user: Number(f[11]), sys: Number(f[12]) } : null;
}

/** @type {number | undefined} */
let clockTicks;
/** Clock ticks per second of the /proc CPU counters (getconf CLK_TCK; 100 on every Linux we know). */
export function clockTicksPerSecond() {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * utime + stime of one process in seconds, or null if it is gone.
 * @param {number} pid
 */
export function cpuSeconds(pid) {
  const t = cpuTicks(pid);
  return t ? (t.user + t.sys) / clockTicksPerSecond() : null;
}

/**
 * Resolves once pid is gone (polled every 50 ms); callers bound the wait.
 * @param {number} pid
 */
export async function waitGone(pid) {
  while (isAlive(pid)) await sleep(50);
}

// ---------------------------------------------------------------- the machine

/**
 * Whole-machine CPU counters (clock ticks) from the first line of /proc/stat. total sums
 * user..steal (guest time is already inside user); busy = total - idle - iowait.
 */
export function machineCpu() {
  const v = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { total, idle: idle + iowait, softirq: softirq + irq, steal, busy: total - idle - iowait, user, nice, system };
}

/** The 1, 5 and 15 minute load averages, as "a b c". */
export const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');

/** CPU model name from /proc/cpuinfo (os.cpus() as fallback, else 'unknown'). */
export function cpuModel() {
  return (readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1] ?? os.cpus()[0]?.model ?? 'unknown').trim();
}

/**
 * Installed version of a package under ROOT/node_modules, or '?'.
 * @param {string} name
 * @returns {string}
 */
export function packageVersion(name) {
  try {
    return JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

/** The machine fields every benchmark records, in this order: date, node, platform, cpu_model, cpu_cores. */
export function machineMeta() {
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu_model: cpuModel(),
    cpu_cores: os.cpus().length,
  };
}

/** Total memory in GiB, one decimal. */
export const memTotalGb = () => Math.round((os.totalmem() / 2 ** 30) * 10) / 10;
