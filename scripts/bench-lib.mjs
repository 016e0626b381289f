/**
 * Shared helpers for the benchmark scripts in this folder (bench-*.mjs).
 *
 * Small, side-effect-free building blocks only: each benchmark keeps its own options,
 * phases, cleanup policy and output. Nothing here starts a process or installs a
 * signal handler on import.
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** Repository root (the folder above scripts/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The built server entry point (npm run build). */
export const SERVER_MAIN = path.join(ROOT, 'dist', 'server', 'main.js');
/** API key the benchmarks configure on the server they start (API_KEYS). */
export const BENCH_API_KEY = 'bench-api-key-0123456789abcdef';
/** Clock ticks per second used to convert /proc/<pid>/stat utime+stime. */
export const CLK_TCK = 100;

// ---------------------------------------------------------------- /proc

/** Fields of /proc/<pid>/stat after the command name: [0] is the state, [11] utime, [12] stime, [19] starttime. null if gone. */
export function statFields(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Running = exists and is not a zombie (orphans are re-parented to PID 1, which may reap late). */
export function isAlive(pid) {
  const f = statFields(pid);
  return !!f && f[0] !== 'Z' && f[0] !== 'X';
}

/** The process's command name (/proc/<pid>/comm), or null if it is gone. */
export function comm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * Direct children of pid, from /proc/<pid>/task/<tid>/children.
 * With psFallback, asks `ps --ppid` when /proc listed none.
 */
export function childPids(pid, { psFallback = false } = {}) {
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
  if (psFallback && pids.size === 0) {
    try {
      for (const c of execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split(/\s+/)) if (c) pids.add(Number(c));
    } catch {
      /* no children, or no ps */
    }
  }
  return [...pids];
}

/** A "<field>: N kB" value of /proc/<pid>/status (VmRSS, VmHWM, ...) in KiB, or null. */
export function statusKb(pid, field) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** utime and stime of one process in clock ticks, or null if it is gone. */
export function cpuTicks(pid) {
  const f = statFields(pid);
  return f ? { user: Number(f[11]), sys: Number(f[12]) } : null;
}

/** utime + stime of one process in seconds, or null if it is gone. */
export function cpuSeconds(pid, clkTck = CLK_TCK) {
  const t = cpuTicks(pid);
  return t ? (t.user + t.sys) / clkTck : null;
}

/** Whole-machine CPU counters from the first line of /proc/stat: busy = total - idle - iowait. */
export function machineCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = f[3] + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** The 1, 5 and 15 minute load averages, as "a b c". */
export const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');

// ---------------------------------------------------------------- machine info

/** CPU model name from /proc/cpuinfo (os.cpus() as fallback, else 'unknown'). */
export function cpuModel() {
  return (readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1] ?? os.cpus()[0]?.model ?? 'unknown').trim();
}

/** Installed version of a package under ROOT/node_modules, or '?'. */
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

// ---------------------------------------------------------------- temp dirs and ports

/** mkdtemp under the OS temp dir; the path is added to `registry` (a Set) so the caller's cleanup removes it. */
export function tempDir(prefix, registry) {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  registry.add(dir);
  return dir;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (picked by the kernel). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Whether a TCP listener can bind 127.0.0.1:port. */
export function tcpFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Whether a UDP socket can bind 127.0.0.1:port. */
export function udpFree(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A random port in [lo, hi) free for both TCP and UDP (WebRTC servers listen on both), not in `avoid`. */
export async function freeDualPort(lo = 20000, hi = 30000, avoid = new Set()) {
  for (let i = 0; i < 200; i++) {
    const port = lo + Math.floor(Math.random() * (hi - lo));
    if (avoid.has(port)) continue;
    if ((await tcpFree(port)) && (await udpFree(port))) return port;
  }
  throw new Error('no free TCP+UDP port found');
}

// ---------------------------------------------------------------- HTTP

/**
 * One HTTP request to 127.0.0.1 on a fresh connection (no keep-alive pool holding the server open).
 * Never rejects: resolves { status, text } or { status: 0, error }.
 */
export function request(port, method, urlPath, { headers = {}, body, timeoutMs = 2_000 } = {}) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers, agent: false, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, text }));
      res.on('error', (err) => resolve({ status: 0, error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, error: err.message }));
    req.end(body);
  });
}

/** GET urlPath; see request(). */
export const httpGet = (port, urlPath, timeoutMs = 1_000) => request(port, 'GET', urlPath, { timeoutMs });

// ---------------------------------------------------------------- tokens

/**
 * A fresh RS256 key pair for the server's JWT_PRIVATE_KEY_FILE: writes the PKCS#8 PEM to
 * <dir>/jwt-private.pem (mode 600) and returns { keyFile, pem, signingKey, kid } (kid = the
 * RFC 7638 thumbprint of the public JWK, as the server computes it).
 */
export function createSigningKey(dir) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const keyFile = path.join(dir, 'jwt-private.pem');
  writeFileSync(keyFile, pem, { mode: 0o600 });
  const jwk = publicKey.export({ format: 'jwk' });
  const kid = createHash('sha256').update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })).digest('base64url');
  return { keyFile, pem, signingKey: createPrivateKey(pem), kid };
}

const b64url = (s) => Buffer.from(s).toString('base64url');

/** A compact RS256 JWT of `claims` signed locally with `signingKey` (a KeyObject), header kid = `kid`. */
export function mintRs256(signingKey, kid, claims) {
  const header = { alg: 'RS256', typ: 'JWT', kid };
  const data = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${data}.${sign('sha256', Buffer.from(data), signingKey).toString('base64url')}`;
}

/** The standard Switchboard claims: iat now, exp iat + ttlSeconds, iss/aud 'switchboard', plus a fresh jti. */
export function switchboardClaims(fields, ttlSeconds, jti) {
  const iat = Math.floor(Date.now() / 1000);
  return { ...fields, iat, exp: iat + ttlSeconds, jti, iss: 'switchboard', aud: 'switchboard' };
}

// ---------------------------------------------------------------- statistics and output

/** Nearest-rank percentile p (0-100) of an ascending array (non-empty). */
export const nearestRank = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

/** Median of the values that pass `keep` (default: not null/undefined), or null if none. */
export function median(xs, keep = (x) => x != null) {
  const a = xs.filter(keep).sort((x, y) => x - y);
  if (!a.length) return null;
  return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
}

/** A plain-text table: first column left-aligned, the others right-aligned, null cells as '-'. */
export function table(headers, rows) {
  const cells = rows.map((r) => r.map((c) => (c == null ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

// ---------------------------------------------------------------- media peer (IPC)

/**
 * Controller for one server/test/helpers/media-peer.mjs child (a WebRTC client driven over IPC).
 * `registry` (a Set) holds the live peers for the caller's cleanup; `log` reports the child's errors.
 */
export class MediaPeer {
  constructor(name, { script, registry, log, readyTimeoutMs, pollMs }) {
    this.name = name;
    this.nextId = 1;
    this.pending = new Map();
    this.errors = [];
    this.exitInfo = null;
    this.stopping = false;
    this.readyTimeoutMs = readyTimeoutMs;
    this.pollMs = pollMs;
    let tail = '';
    this.tail = () => tail;
    this.child = spawn(process.execPath, [script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env } });
    this.pid = this.child.pid;
    const keep = (d) => {
      tail = (tail + d).slice(-4096);
    };
    this.child.stdout.setEncoding('utf8').on('data', keep);
    this.child.stderr.setEncoding('utf8').on('data', keep);
    registry.add(this);
    let readyResolve;
    this.ready = new Promise((resolve) => (readyResolve = resolve));
    this.child.on('message', (msg) => {
      if (msg && msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(new Error(`[${this.name}] ${msg.error?.message ?? 'failed'}`));
      } else if (msg?.type === 'ready') {
        readyResolve(true);
      } else if (msg?.type === 'error') {
        this.errors.push({ where: msg.where, message: msg.error?.message });
        log(`  [peer ${this.name}] ${msg.where}: ${msg.error?.message}`);
      }
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        registry.delete(this);
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new Error(`[${this.name}] peer exited (code ${code}, signal ${signal})`));
          this.pending.delete(id);
        }
        readyResolve(false);
        resolve(this.exitInfo);
      });
    });
  }

  async waitReady(timeoutMs = this.readyTimeoutMs) {
    const ok = await Promise.race([this.ready, sleep(timeoutMs).then(() => null)]);
    if (ok !== true) throw new Error(`[${this.name}] child not ready (${ok === null ? 'timeout' : `exited ${JSON.stringify(this.exitInfo)}`}):\n${this.tail()}`);
  }

  /** `beforeSend` runs synchronously right before the IPC message is handed to the channel. */
  request(cmd, args = {}, timeoutMs = 15_000, beforeSend) {
    if (this.exitInfo || !this.child.connected) return Promise.reject(new Error(`[${this.name}] not running`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`[${this.name}] '${cmd}' got no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      beforeSend?.();
      this.child.send({ id, cmd, args }, (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new Error(`[${this.name}] IPC send failed: ${err.message}`));
      });
    });
  }

  /** Polls stats() until pred(stats) is truthy; returns those stats. */
  async waitFor(pred, timeoutMs, intervalMs = this.pollMs, what = 'condition') {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.stats();
      if (pred(s)) return s;
      if (Date.now() > deadline) throw new Error(`[${this.name}] ${what} not reached within ${timeoutMs} ms`);
      await sleep(intervalMs);
    }
  }

  async stop(timeoutMs = 5_000) {
    if (this.exitInfo) return;
    if (this.stopping) return void (await this.exited);
    this.stopping = true;
    try {
      await this.request('stop', {}, timeoutMs);
    } catch {
      /* not answered or died first */
    }
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill() {
    if (!this.exitInfo) this.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------- options

/**
 * Number(raw) if it is an integer in [min, max]; otherwise prints
 * "--<name> must be an integer from <min> to <max> (got ...)" and calls onInvalid (e.g. usage(2)).
 */
export function integerOption(name, raw, min, max, onInvalid) {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
    onInvalid();
  }
  return n;
}

// ---------------------------------------------------------------- child processes

/**
 * Spawns `node script ...args` from ROOT in its own process group (detached, so a forced
 * kill of -pid also reaches e.g. the server's mediasoup worker), keeping the last `tailBytes`
 * of its stdout+stderr. Returns { name, child, pid, exitInfo, tail(), exited } where `exited`
 * resolves to exitInfo ({ code, signal } or { code: null, signal: null, error }).
 */
export function spawnNodeProcess(name, script, { env, args = [], stdin = 'ignore', tailBytes = 8192 }) {
  const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, env, stdio: [stdin, 'pipe', 'pipe'], detached: true });
  return trackChild(name, child, tailBytes);
}

/** Wraps an already started ChildProcess the way spawnNodeProcess does (output tail, exitInfo, exited). */
export function trackChild(name, child, tailBytes = 8192) {
  let tail = '';
  const keep = (d) => {
    tail = (tail + d).slice(-tailBytes);
  };
  child.stdout?.setEncoding('utf8').on('data', keep);
  child.stderr?.setEncoding('utf8').on('data', keep);
  const proc = { name, child, pid: child.pid, exitInfo: null, tail: () => tail };
  proc.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      proc.exitInfo = { code, signal };
      resolve(proc.exitInfo);
    });
    child.once('error', (err) => {
      proc.exitInfo ??= { code: null, signal: null, error: err.message };
      resolve(proc.exitInfo);
    });
  });
  return proc;
}

/**
 * SIGINT/SIGTERM/SIGHUP: log "<SIG>: <doing>", run cleanup(), exit 130 (SIGINT) or 143.
 * A second signal exits 1 at once (announced when announceRepeat), leaving the rest to the 'exit' hook.
 * Returns { signalled }, true once a signal arrived (the script then skips its normal report).
 */
export function onTerminationSignals({ doing, cleanup, announceRepeat = false }) {
  const state = { signalled: false };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (state.signalled) {
        if (announceRepeat) console.error(`\n${sig} again: killing children now`);
        process.exit(1);
      }
      state.signalled = true;
      console.error(`\n${sig}: ${doing}`);
      cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }
  return state;
}

/**
 * Last resort for any exit path: on 'exit', SIGKILL every pid (negative = process group) that
 * pidsToKill() yields, then remove the temp dirs still in `tempDirs`.
 */
export function onExitKillAndRemove(pidsToKill, tempDirs) {
  process.on('exit', () => {
    for (const pid of pidsToKill()) killQuietly(pid);
    for (const dir of tempDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  });
}

/** process.kill that ignores an already-gone target. */
export function killQuietly(pid, signal = 'SIGKILL') {
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
}

/**
 * Polls GET /ready on 127.0.0.1:port every pollMs (1 s request timeout) until it answers 200.
 * t0 is the performance.now() of the spawn. Returns { ms: time since t0, polls }.
 * Throws if proc (from spawnNodeProcess) exits first or after timeoutMs, with its output tail.
 */
export async function waitForReady(proc, port, t0, { pollMs, timeoutMs }) {
  let polls = 0;
  for (;;) {
    if (proc.exitInfo) throw new Error(`${proc.name} exited (${JSON.stringify(proc.exitInfo)}) before /ready answered 200:\n${proc.tail()}`);
    const tick = performance.now();
    polls++;
    const res = await request(port, 'GET', '/ready', { timeoutMs: 1_000 });
    if (res.status === 200) return { ms: performance.now() - t0, polls };
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(`${proc.name}: no 200 from /ready within ${timeoutMs} ms (last: ${res.status || res.error}):\n${proc.tail()}`);
    }
    const wait = pollMs - (performance.now() - tick);
    if (wait > 0) await sleep(wait);
  }
}
