#!/usr/bin/env node
/**
 * Signaling benchmark for Switchboard (a benchmark, not a test). One run measures
 *
 *   (a) connections: N websocket connections, token in the handshake, each joined to a
 *       two-party room (bench-<i/2>), ramped with a window of --ramp-concurrency joins in
 *       flight spread over the generator processes; server RSS (VmRSS) idle vs. after,
 *       KB per connection, heap and gauges from /metrics (cross-checked with the count);
 *       then (extra) relay latency over --relay-pairs of those pairs with N connections open;
 *   (b) relay latency: `offer` with a ~3 KB SDP between the two sides of --relay-pairs
 *       two-party rooms, sender and receiver in the same generator (same clock), open loop
 *       at each --relay-rates total rate for --relay-seconds after --warmup seconds; the
 *       same generator code against a bare Socket.IO relay (scripts/bench-signaling-bare.mjs),
 *       alternately, --repeats times each; medians reported;
 *   (c) joins per second: on a fresh server, new connections started at --join-rate/s for
 *       --join-seconds, each connect (token in the handshake) + join; latency from starting
 *       the connection to the join ack, and join emit -> ack.
 *
 * Load comes from generator processes (scripts/bench-signaling-gen.mjs, forked), each with
 * its own source address 127.0.0.<2+g> when binding to it works. Tokens are RS256 minted
 * in the generators with a key this script generates (the server gets it as
 * JWT_PRIVATE_KEY_FILE). Everything goes to 127.0.0.0/8. Needs a build (npm run build).
 *
 *   node scripts/bench-signaling.mjs [--connections 10000] [--relay-seconds 10] [--warmup 2]
 *        [--relay-pairs 100] [--relay-rates 1000,5000] [--repeats 3] [--join-rate 500]
 *        [--join-seconds 10] [--ramp-concurrency 200] [--generators auto] [--sdp-bytes 3000]
 *        [--phases connections,relay,joins] [--no-loaded-relay] [--postgres] [--out FILE]
 *
 * --postgres runs the Switchboard servers on fresh PostgreSQL databases (one per server
 * start; CREATE DATABASE through TEST_DATABASE_URL, default
 * postgresql://postgres@127.0.0.1:5432/postgres; dropped WITH (FORCE) at the end) instead
 * of the embedded database.
 *
 * Bounded: every phase has timeouts and the whole run a watchdog. Servers and generators
 * are stopped on every exit path (SIGTERM, SIGKILL after a grace period), temporary
 * directories removed, databases dropped. Exit code 1 on errors (error acks, failed joins,
 * lost messages).
 */
import { spawn, fork } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  BENCH_API_KEY,
  ROOT,
  SERVER_MAIN as MAIN,
  childPids as procChildPids,
  comm,
  cpuSeconds,
  createSigningKey,
  freePort,
  integerOption,
  isAlive,
  machineMeta,
  median,
  memTotalGb,
  nearestRank,
  request,
  statusKb,
  table,
  tempDir as makeTempDir,
  trackChild,
  onExitKillAndRemove,
  onTerminationSignals,
  waitForReady,
} from './bench-lib.mjs';

const BARE = path.join(ROOT, 'scripts', 'bench-signaling-bare.mjs');
const GEN = path.join(ROOT, 'scripts', 'bench-signaling-gen.mjs');
const require = createRequire(path.join(ROOT, 'package.json'));

const API_KEY = BENCH_API_KEY;
const READY_POLL_MS = 20;
const READY_TIMEOUT_MS = 90_000;
const IDLE_MS = 2_000;
const SERVER_KILL_AFTER_MS = 30_000;
const SOCKETS_PER_GENERATOR = 15_000; // fd hard limit is 20,000 per process

// ---------------------------------------------------------------- options

function usage(code) {
  (code ? console.error : console.log)(
    'usage: node scripts/bench-signaling.mjs [--connections N=10000] [--relay-seconds S=10] [--warmup S=2]\n' +
      '         [--relay-pairs P=100] [--relay-rates 1000,5000] [--repeats 3] [--join-rate 500] [--join-seconds 10]\n' +
      '         [--ramp-concurrency 200] [--generators auto] [--sdp-bytes 3000] [--phases connections,relay,joins]\n' +
      '         [--no-loaded-relay] [--postgres] [--out FILE]',
  );
  process.exit(code);
}

let args;
try {
  args = parseArgs({
    options: {
      connections: { type: 'string', default: '10000' },
      'relay-seconds': { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      'relay-pairs': { type: 'string', default: '100' },
      'relay-rates': { type: 'string', default: '1000,5000' },
      repeats: { type: 'string', default: '3' },
      'join-rate': { type: 'string', default: '500' },
      'join-seconds': { type: 'string', default: '10' },
      'ramp-concurrency': { type: 'string', default: '200' },
      generators: { type: 'string', default: 'auto' },
      'sdp-bytes': { type: 'string', default: '3000' },
      phases: { type: 'string', default: 'connections,relay,joins' },
      'no-loaded-relay': { type: 'boolean', default: false },
      postgres: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }).values;
} catch (err) {
  console.error(err.message);
  usage(2);
}
if (args.help) usage(0);
const int = (name, raw, min, max) => integerOption(name, raw, min, max, () => usage(2));

const opts = {
  connections: int('connections', args.connections, 2, 60_000),
  relaySeconds: int('relay-seconds', args['relay-seconds'], 1, 300),
  warmup: int('warmup', args.warmup, 0, 60),
  relayPairs: int('relay-pairs', args['relay-pairs'], 1, 2_000),
  relayRates: args['relay-rates'].split(',').map((r) => int('relay-rates', r.trim(), 1, 100_000)),
  repeats: int('repeats', args.repeats, 1, 10),
  joinRate: int('join-rate', args['join-rate'], 1, 10_000),
  joinSeconds: int('join-seconds', args['join-seconds'], 1, 120),
  rampConcurrency: int('ramp-concurrency', args['ramp-concurrency'], 1, 5_000),
  generators: args.generators === 'auto' ? null : int('generators', args.generators, 1, 16),
  sdpBytes: int('sdp-bytes', args['sdp-bytes'], 100, 60_000),
  phases: new Set(args.phases.split(',').map((p) => p.trim())),
  loadedRelay: !args['no-loaded-relay'],
  postgres: args.postgres,
  out: args.out ? path.resolve(args.out) : undefined,
};
for (const p of opts.phases) if (!['connections', 'relay', 'joins'].includes(p)) usage(2);
const joinTotal = opts.joinRate * opts.joinSeconds;
const maxSockets = Math.max(opts.connections, 2 * opts.relayPairs * 2, joinTotal);
const G = opts.generators ?? Math.max(2, Math.ceil(maxSockets / SOCKETS_PER_GENERATOR));
if (Math.ceil(maxSockets / G) > SOCKETS_PER_GENERATOR) {
  console.error(`--generators ${G} is too few for ${maxSockets} sockets (at most ${SOCKETS_PER_GENERATOR} per generator)`);
  usage(2);
}
const dbLabel = opts.postgres ? 'postgres' : 'pglite';

// ---------------------------------------------------------------- cleanup

/** Live child processes: { name, child, pid, exited, exitInfo, tail(), kind } */
const children = new Set();
const tempDirs = new Set();
const undo = [];
let cleaningUp = null;

/** SIGTERM, then SIGKILL to the process group after `killAfterMs`; mediasoup workers left behind are killed. */
async function stopChild(proc, killAfterMs = SERVER_KILL_AFTER_MS) {
  const t0 = performance.now();
  let forced = false;
  if (!proc.exitInfo) {
    for (const pid of childPids(proc.pid)) if (comm(pid)?.startsWith('mediasoup-work')) proc.descendants.add(pid);
    try {
      process.kill(proc.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const done = await Promise.race([proc.exited.then(() => true), sleep(killAfterMs).then(() => false)]);
    if (!done) {
      forced = true;
      console.error(`  ! ${proc.name} (pid ${proc.pid}) still running ${killAfterMs} ms after SIGTERM: SIGKILL`);
      for (const target of proc.detached ? [-proc.pid, proc.pid] : [proc.pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await Promise.race([proc.exited, sleep(2_000)]);
    }
  }
  const ms = performance.now() - t0;
  const orphans = [];
  for (const pid of proc.descendants) {
    if (comm(pid)?.startsWith('mediasoup-work') && isAlive(pid)) {
      await sleep(1_000);
      if (isAlive(pid)) {
        orphans.push(pid);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  }
  if (orphans.length) console.error(`  ! ${proc.name}: killed leftover mediasoup-worker pid(s) ${orphans.join(', ')}`);
  children.delete(proc);
  return { ms, forced, code: proc.exitInfo?.code ?? null, signal: proc.exitInfo?.signal ?? null, orphans };
}

async function cleanup() {
  cleaningUp ??= (async () => {
    // Generators first (they hold the client sockets), then servers.
    const gens = [...children].filter((p) => p.kind === 'gen');
    await Promise.all(gens.map((p) => stopChild(p, 3_000)));
    await Promise.all([...children].map((p) => stopChild(p)));
    while (undo.length) {
      const step = undo.pop();
      try {
        await step();
      } catch (err) {
        console.error(`  ! cleanup step failed: ${err?.message ?? err}`);
      }
    }
    for (const dir of tempDirs) {
      rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    }
  })();
  return cleaningUp;
}

const termination = onTerminationSignals({ doing: 'stopping servers and generators, cleaning up...', cleanup, announceRepeat: true });
onExitKillAndRemove(function* () {
  for (const p of children) {
    if (p.detached) yield -p.pid;
    yield p.pid;
    yield* p.descendants;
  }
}, tempDirs);

// ---------------------------------------------------------------- helpers

const log = (msg) => console.error(msg);

/** Tracks a spawned/forked child for cleanup (kind: 'server' | 'generator'). */
function track(name, child, { kind, detached }) {
  const proc = Object.assign(trackChild(name, child), { kind, detached, descendants: new Set() });
  children.add(proc);
  return proc;
}

function spawnNode(name, script, { env, args: extra = [] }) {
  const child = spawn(process.execPath, [script, ...extra], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  return track(name, child, { kind: 'server', detached: true });
}

const tempDir = (prefix) => makeTempDir(prefix, tempDirs);
/** Children of pid (ps as fallback when /proc lists none). */
const childPids = (pid) => procChildPids(pid, { psFallback: true });
/** Milliseconds from t0 to the first 200 from /ready. */
const waitReady = async (proc, port, t0) => (await waitForReady(proc, port, t0, { pollMs: READY_POLL_MS, timeoutMs: READY_TIMEOUT_MS })).ms;

function waitListening(proc, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${proc.name}: no LISTENING line in ${timeoutMs} ms:\n${proc.tail()}`)), timeoutMs);
    const check = () => {
      const m = /^LISTENING (\d+)/m.exec(proc.tail());
      if (m) {
        clearTimeout(timer);
        proc.child.stdout.off('data', check);
        resolve(Number(m[1]));
      }
    };
    proc.child.stdout.on('data', check);
    proc.exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`${proc.name} exited ${JSON.stringify(e)}:\n${proc.tail()}`));
    });
    check();
  });
}

const mb = (kb) => (kb == null ? null : Math.round((kb / 1024) * 10) / 10);
const r1 = (x) => (x == null || Number.isNaN(x) ? null : Math.round(x * 10) / 10);
const r2 = (x) => (x == null || Number.isNaN(x) ? null : Math.round(x * 100) / 100);
const r3 = (x) => (x == null || Number.isNaN(x) ? null : Math.round(x * 1000) / 1000);

function percentiles(values) {
  if (!values.length) return { n: 0, p50: null, p90: null, p99: null, max: null, mean: null };
  const a = Float64Array.from(values).sort();
  const q = (p) => nearestRank(a, p);
  let sum = 0;
  for (const v of a) sum += v;
  return { n: a.length, p50: r3(q(50)), p90: r3(q(90)), p99: r3(q(99)), max: r3(a[a.length - 1]), mean: r3(sum / a.length) };
}

function parseMetrics(text) {
  const m = {};
  for (const line of (text ?? '').split('\n')) {
    if (!line || line[0] === '#') continue;
    const sp = line.lastIndexOf(' ');
    m[line.slice(0, sp)] = Number(line.slice(sp + 1));
  }
  return m;
}

async function metrics(port) {
  const res = await request(port, 'GET', '/metrics', { timeoutMs: 10_000 });
  if (res.status !== 200) return { error: res.status || res.error };
  const m = parseMetrics(res.text);
  const errors = Object.fromEntries(
    Object.entries(m)
      .filter(([k]) => k.startsWith('switchboard_signaling_errors_total{'))
      .map(([k, v]) => [/code="([^"]*)"/.exec(k)?.[1] ?? k, v]),
  );
  return {
    socket_connections: m.switchboard_socket_connections ?? null,
    participants: m.switchboard_participants ?? null,
    rooms: m.switchboard_rooms ?? null,
    heap_used_mb: m.switchboard_nodejs_heap_size_used_bytes != null ? r1(m.switchboard_nodejs_heap_size_used_bytes / 2 ** 20) : null,
    heap_total_mb: m.switchboard_nodejs_heap_size_total_bytes != null ? r1(m.switchboard_nodejs_heap_size_total_bytes / 2 ** 20) : null,
    external_mb: m.switchboard_nodejs_external_memory_bytes != null ? r1(m.switchboard_nodejs_external_memory_bytes / 2 ** 20) : null,
    process_rss_mb: m.switchboard_process_resident_memory_bytes != null ? r1(m.switchboard_process_resident_memory_bytes / 2 ** 20) : null,
    eventloop_lag_p99_ms: m.switchboard_nodejs_eventloop_lag_p99_seconds != null ? r2(m.switchboard_nodejs_eventloop_lag_p99_seconds * 1000) : null,
    signaling_errors: errors,
    db_write_failures: m.switchboard_db_write_failures_total ?? null,
  };
}

// ---------------------------------------------------------------- generators

const gens = [];
let rpcSeq = 0;

async function startGenerators(keyPem, kid, useLocalAddresses) {
  for (let g = 0; g < G; g++) {
    const child = fork(GEN, [], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, BENCH_GEN_MAX_LIFETIME_MS: String(budgetMs() + 60_000) },
      serialization: 'advanced',
    });
    const proc = track(`gen-${g}`, child, { kind: 'gen', detached: false });
    proc.pending = new Map();
    child.on('message', (msg) => {
      if (msg?.ready) return;
      const p = proc.pending.get(msg?.id);
      if (!p) return;
      proc.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`gen-${g}: ${msg.error}`));
    });
    proc.exited.then((e) => {
      for (const p of proc.pending.values()) p.reject(new Error(`gen-${g} exited ${JSON.stringify(e)}:\n${proc.tail()}`));
      proc.pending.clear();
    });
    gens.push(proc);
  }
  const localAddress = (g) => (useLocalAddresses ? `127.0.0.${2 + g}` : undefined);
  return Promise.all(gens.map((gen, g) => rpc(gen, 'init', { privateKeyPem: keyPem, kid, localAddress: localAddress(g) }, 30_000)));
}

function rpc(gen, cmd, payload, timeoutMs) {
  return new Promise((resolve, reject) => {
    if (gen.exitInfo) return reject(new Error(`${gen.name} has exited:\n${gen.tail()}`));
    const id = ++rpcSeq;
    const timer = setTimeout(() => {
      gen.pending.delete(id);
      reject(new Error(`${gen.name}: ${cmd} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    gen.pending.set(id, {
      resolve: (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      reject: (e) => {
        clearTimeout(timer);
        reject(e);
      },
    });
    gen.child.send({ id, cmd, ...payload });
  });
}

/** Splits [0, total) into G contiguous ranges of even length (pairs stay in one generator). */
function splitEven(total) {
  const pairs = Math.floor(total / 2);
  const out = [];
  let start = 0;
  for (let g = 0; g < G; g++) {
    const n = 2 * (Math.floor(pairs / G) + (g < pairs % G ? 1 : 0));
    out.push({ start, count: n });
    start += n;
  }
  return out;
}

async function mintAll(prefix, total) {
  const t0 = performance.now();
  const ranges = splitEven(total);
  await Promise.all(gens.map((gen, g) => rpc(gen, 'mint', { prefix, ...ranges[g] }, 300_000)));
  return performance.now() - t0;
}

/** Can this host bind 127.0.0.2 as a source address? (Linux: all of 127/8 is on lo.) */
async function localAddressWorks() {
  const server = net.createServer((s) => s.end());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  const ok = await new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
    c.once('connect', () => {
      const la = c.localAddress;
      c.destroy();
      resolve(la === '127.0.0.2');
    });
    c.once('error', () => resolve(false));
    setTimeout(() => {
      c.destroy();
      resolve(false);
    }, 2_000).unref();
  });
  await new Promise((r) => server.close(r));
  return ok;
}

// ---------------------------------------------------------------- servers

let keyFile;
let dbCounter = 0;

async function freshDatabaseUrl() {
  if (!opts.postgres) return undefined;
  const pg = require('pg');
  const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const name = `bench_sig_${process.pid}_${++dbCounter}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = async (sql) => {
    const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000, query_timeout: 60_000 });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE "${name}"`);
  undo.push(async () => {
    await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    log(`  dropped database ${name}`);
  });
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

async function startSwitchboard(label) {
  const port = await freePort();
  const dataDir = tempDir('sb-bench-sig-');
  const databaseUrl = await freshDatabaseUrl();
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? os.tmpdir(),
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    RECORDINGS_DIR: path.join(dataDir, 'recordings'),
    MEDIASOUP_WORKERS: '1',
    LOG_LEVEL: 'warn',
    API_KEYS: API_KEY,
    JWT_PRIVATE_KEY_FILE: keyFile,
    MAX_CONNECTIONS: '25000',
    SOCKET_RATE_LIMIT_PER_SECOND: '100000',
    SOCKET_RATE_LIMIT_BURST: '100000',
    RATE_LIMIT_MAX: '10000000',
    RECONNECT_GRACE_SECONDS: '0',
  };
  if (process.env.TMPDIR) env.TMPDIR = process.env.TMPDIR;
  if (databaseUrl) env.DATABASE_URL = databaseUrl;
  // Diagnostics only (e.g. --cpu-prof --cpu-prof-dir=/tmp/x): passed to the server as NODE_OPTIONS.
  if (process.env.BENCH_SERVER_NODE_OPTIONS) env.NODE_OPTIONS = process.env.BENCH_SERVER_NODE_OPTIONS;
  const name = `switchboard[${dbLabel},${label}]`;
  const t0 = performance.now();
  const proc = spawnNode(name, MAIN, { env });
  const readyMs = await waitReady(proc, port, t0);
  await sleep(IDLE_MS);
  if (proc.exitInfo) throw new Error(`${name} exited while idle:\n${proc.tail()}`);
  const rssIdleKb = statusKb(proc.pid, 'VmRSS');
  log(`  ${name}: ready in ${Math.round(readyMs)} ms on port ${port}; idle RSS ${mb(rssIdleKb)} MB`);
  return { proc, port, url: `http://127.0.0.1:${port}`, readyMs, rssIdleKb };
}

async function startBare() {
  const proc = spawnNode('bare-socket.io', BARE, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? os.tmpdir(), HOST: '127.0.0.1' },
    args: ['0'],
  });
  const port = await waitListening(proc);
  await sleep(500);
  log(`  bare-socket.io: listening on port ${port}; idle RSS ${mb(statusKb(proc.pid, 'VmRSS'))} MB`);
  return { proc, port, url: `http://127.0.0.1:${port}` };
}

async function stopServer(srv) {
  const st = await stopChild(srv.proc);
  log(`  ${srv.proc.name}: stopped in ${Math.round(st.ms)} ms (exit ${st.code ?? st.signal}${st.forced ? ', forced' : ''})`);
  return { stop_ms: Math.round(st.ms), exit_code: st.code, signal: st.signal, forced_kill: st.forced };
}

// ---------------------------------------------------------------- phases

const results = {
  meta: {},
  options: { ...opts, phases: [...opts.phases], out: opts.out ?? null },
  connections: null,
  relay: null,
  joins: null,
  failures: [],
  ok: false,
};

async function connectSet({ set, srv, kind, prefix, total, roomPrefix, concurrency, listenOffers, timeoutMs }) {
  const ranges = splitEven(total);
  const per = Math.max(1, Math.ceil(concurrency / G));
  const t0 = performance.now();
  const rs = await Promise.all(
    gens.map((gen, g) =>
      rpc(gen, 'connect', { set, url: srv.url, kind, prefix, ...ranges[g], roomPrefix, concurrency: per, listenOffers }, timeoutMs),
    ),
  );
  const ms = performance.now() - t0;
  const errors = {};
  for (const r of rs) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  return {
    joined: rs.reduce((s, r) => s + r.joined, 0),
    failed: rs.reduce((s, r) => s + r.failed, 0),
    errors,
    ms,
    join_emit_to_ack_ms: percentiles(rs.flatMap((r) => r.joinMs)),
    connect_to_ack_ms: percentiles(rs.flatMap((r) => r.totalMs)),
    local_addresses: [...new Set(rs.flatMap((r) => r.localAddresses))],
  };
}

async function closeSet(set) {
  await Promise.all(gens.map((gen) => rpc(gen, 'close', { set }, 60_000).catch(() => undefined)));
}

/** One relay measurement over `set` at `rate` msgs/s in total (split over the generators). */
async function relayRun({ set, rate, label, srvProc }) {
  const warmupMs = opts.warmup * 1000;
  const measureMs = opts.relaySeconds * 1000;
  const drainMs = 3_000;
  const cpu0 = { server: cpuSeconds(srvProc.pid), gens: gens.map((g) => cpuSeconds(g.pid)) };
  const t0 = performance.now();
  const rs = await Promise.all(
    gens.map((gen) =>
      rpc(gen, 'relay', { set, rate: rate / G, warmupMs, measureMs, drainMs, sdpBytes: opts.sdpBytes }, warmupMs + measureMs + drainMs + 30_000),
    ),
  );
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = { server: cpuSeconds(srvProc.pid), gens: gens.map((g) => cpuSeconds(g.pid)) };
  const lat = percentiles(rs.flatMap((r) => r.latencies));
  const measuredSeconds = Math.max(...rs.map((r) => r.measuredMs)) / 1000;
  const errors = {};
  for (const r of rs) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const row = {
    label,
    target_rate: rate,
    pairs: rs.reduce((s, r) => s + r.pairs, 0),
    achieved_send_rate: r1(rs.reduce((s, r) => s + r.measuredSent, 0) / measuredSeconds),
    achieved_receive_rate: r1(rs.reduce((s, r) => s + r.measuredReceived, 0) / measuredSeconds),
    measured_sent: rs.reduce((s, r) => s + r.measuredSent, 0),
    measured_received: rs.reduce((s, r) => s + r.measuredReceived, 0),
    total_sent: rs.reduce((s, r) => s + r.sent, 0),
    error_acks: rs.reduce((s, r) => s + r.errorAcks, 0),
    missing_acks: rs.reduce((s, r) => s + r.missingAcks, 0),
    lost: rs.reduce((s, r) => s + r.lost, 0),
    strays: rs.reduce((s, r) => s + r.strays, 0),
    errors,
    max_send_backlog: Math.max(...rs.map((r) => r.maxBacklog)),
    latency_ms: lat,
    // CPU use over the whole run (warm-up + measure + drain), in cores.
    server_cpu_cores: cpu0.server != null && cpu1.server != null ? r2((cpu1.server - cpu0.server) / wall) : null,
    generators_cpu_cores: r2(cpu1.gens.reduce((s, c, i) => s + ((c ?? 0) - (cpu0.gens[i] ?? 0)), 0) / wall),
  };
  log(
    `    ${label.padEnd(22)} ${String(rate).padStart(5)}/s: sent ${row.achieved_send_rate}/s recv ${row.achieved_receive_rate}/s  ` +
      `p50 ${lat.p50} p90 ${lat.p90} p99 ${lat.p99} max ${lat.max} ms  errors ${row.error_acks} lost ${row.lost}  cpu srv ${row.server_cpu_cores} gens ${row.generators_cpu_cores}`,
  );
  if (row.error_acks || row.missing_acks || row.lost) {
    results.failures.push(`relay ${label} @${rate}/s: ${row.error_acks} error acks ${JSON.stringify(errors)}, ${row.missing_acks} missing acks, ${row.lost} lost`);
  }
  return row;
}

async function phaseConnections() {
  const N = opts.connections;
  log(`\n== (a) ${N} connections [${dbLabel}]`);
  const mintMs = await mintAll('a-', N);
  log(`  minted ${N} tokens in ${Math.round(mintMs)} ms (in the generators)`);
  const srv = await startSwitchboard('connections');
  const out = { db: dbLabel, n: N, generators: G, ramp_concurrency: opts.rampConcurrency, ready_ms: Math.round(srv.readyMs) };
  results.connections = out;
  try {
    out.rss_before_mb = mb(srv.rssIdleKb);
    out.metrics_before = await metrics(srv.port);
    const cpu0 = cpuSeconds(srv.proc.pid);
    const c = await connectSet({
      set: 'a',
      srv,
      kind: 'switchboard',
      prefix: 'a-',
      total: N,
      roomPrefix: 'bench-',
      concurrency: opts.rampConcurrency,
      listenOffers: true,
      timeoutMs: 600_000,
    });
    out.joined = c.joined;
    out.failed = c.failed;
    out.errors = c.errors;
    out.ramp_s = r2(c.ms / 1000);
    out.ramp_joins_per_s = r1(c.joined / (c.ms / 1000));
    out.ramp_server_cpu_cores = r2((cpuSeconds(srv.proc.pid) - cpu0) / (c.ms / 1000));
    out.ramp_connect_to_ack_ms = c.connect_to_ack_ms;
    out.ramp_join_emit_to_ack_ms = c.join_emit_to_ack_ms;
    out.local_addresses = c.local_addresses;
    log(`  joined ${c.joined}/${N} in ${out.ramp_s} s (${out.ramp_joins_per_s}/s), failed ${c.failed} ${JSON.stringify(c.errors)}; local addresses ${c.local_addresses.join(', ')}`);
    if (c.failed) results.failures.push(`connections: ${c.failed} of ${N} failed to join ${JSON.stringify(c.errors)}`);

    // Settle: gauges caught up and the write-behind queue drained (no CPU use for a while).
    const settleStart = performance.now();
    let m = await metrics(srv.port);
    let lastCpu = cpuSeconds(srv.proc.pid);
    for (;;) {
      await sleep(1_000);
      m = await metrics(srv.port);
      const cpu = cpuSeconds(srv.proc.pid);
      const busy = cpu - lastCpu;
      lastCpu = cpu;
      if ((m.participants === c.joined && busy < 0.1) || performance.now() - settleStart > 60_000) break;
    }
    await sleep(2_000);
    out.settle_s = r1((performance.now() - settleStart) / 1000);
    out.rss_after_mb = mb(statusKb(srv.proc.pid, 'VmRSS'));
    out.rss_peak_mb = mb(statusKb(srv.proc.pid, 'VmHWM'));
    out.kb_per_connection = r2((statusKb(srv.proc.pid, 'VmRSS') - srv.rssIdleKb) / Math.max(1, c.joined));
    out.metrics_after = await metrics(srv.port);
    const mb0 = out.metrics_before;
    const mb1 = out.metrics_after;
    out.heap_used_delta_mb = mb1.heap_used_mb != null && mb0.heap_used_mb != null ? r1(mb1.heap_used_mb - mb0.heap_used_mb) : null;
    out.heap_kb_per_connection = out.heap_used_delta_mb != null ? r2((out.heap_used_delta_mb * 1024) / Math.max(1, c.joined)) : null;
    out.gauges_match =
      mb1.socket_connections === c.joined && mb1.participants === c.joined && mb1.rooms === Math.ceil(c.joined / 2);
    out.generators = await Promise.all(gens.map((g) => rpc(g, 'stats', {}, 10_000)));
    log(
      `  RSS ${out.rss_before_mb} -> ${out.rss_after_mb} MB (peak ${out.rss_peak_mb}): ${out.kb_per_connection} KB/connection; ` +
        `heap used ${mb0.heap_used_mb} -> ${mb1.heap_used_mb} MB; gauges connections ${mb1.socket_connections} participants ${mb1.participants} rooms ${mb1.rooms}`,
    );
    if (!out.gauges_match) results.failures.push(`connections: gauges (${mb1.socket_connections}/${mb1.participants}/${mb1.rooms}) do not match ${c.joined} joined`);

    if (opts.loadedRelay && opts.phases.has('relay')) {
      // Extra: relay latency with N connections open (uses the first pairs of the same set).
      log(`  relay with ${c.joined} connections open (pairs of set a; one run per rate)`);
      out.loaded_relay = [];
      await rpcAll('limitPairs', { set: 'a', pairs: Math.ceil(opts.relayPairs / G) });
      for (const rate of opts.relayRates) {
        out.loaded_relay.push(await relayRun({ set: 'a', rate, label: `switchboard+${c.joined} open`, srvProc: srv.proc }));
      }
    }
  } finally {
    out.stop = await stopServer(srv);
    await closeSet('a');
  }

  // Baseline: the same N connections (no token) joined to two-party rooms on the bare Socket.IO server.
  const bare = await startBare();
  try {
    await sleep(IDLE_MS);
    const before = statusKb(bare.proc.pid, 'VmRSS');
    const c = await connectSet({ set: 'a-bare', srv: bare, kind: 'bare', prefix: 'a-', total: N, roomPrefix: 'bench-', concurrency: opts.rampConcurrency, listenOffers: false, timeoutMs: 600_000 });
    await sleep(3_000);
    const after = statusKb(bare.proc.pid, 'VmRSS');
    out.bare = {
      joined: c.joined,
      failed: c.failed,
      ramp_s: r2(c.ms / 1000),
      ramp_joins_per_s: r1(c.joined / (c.ms / 1000)),
      ramp_connect_to_ack_ms: c.connect_to_ack_ms,
      rss_before_mb: mb(before),
      rss_after_mb: mb(after),
      rss_peak_mb: mb(statusKb(bare.proc.pid, 'VmHWM')),
      kb_per_connection: r2((after - before) / Math.max(1, c.joined)),
    };
    log(`  bare socket.io: joined ${c.joined}/${N} in ${out.bare.ramp_s} s (${out.bare.ramp_joins_per_s}/s); RSS ${out.bare.rss_before_mb} -> ${out.bare.rss_after_mb} MB: ${out.bare.kb_per_connection} KB/connection`);
  } finally {
    await stopServer(bare);
    await closeSet('a-bare');
  }
}

function rpcAll(cmd, payload, timeoutMs = 30_000) {
  return Promise.all(gens.map((g) => rpc(g, cmd, payload, timeoutMs)));
}

async function phaseRelay() {
  const P = opts.relayPairs;
  log(`\n== (b) relay latency: ${P} pairs, ${opts.relayRates.join(' and ')} msgs/s, ${opts.relaySeconds} s after ${opts.warmup} s warm-up, ${opts.repeats}x, SDP ${opts.sdpBytes} B [${dbLabel}]`);
  await mintAll('b-', 2 * P);
  const sb = await startSwitchboard('relay');
  const bare = await startBare();
  const out = { db: dbLabel, pairs: P, sdp_bytes: opts.sdpBytes, seconds: opts.relaySeconds, warmup_s: opts.warmup, repeats: opts.repeats, runs: [], summary: [] };
  results.relay = out;
  try {
    const targets = {
      switchboard: { set: 'b-sb', srv: sb, kind: 'switchboard' },
      bare: { set: 'b-bare', srv: bare, kind: 'bare' },
    };
    for (const [name, t] of Object.entries(targets)) {
      const c = await connectSet({ set: t.set, srv: t.srv, kind: t.kind, prefix: 'b-', total: 2 * P, roomPrefix: 'bench-relay-', concurrency: 50, listenOffers: true, timeoutMs: 120_000 });
      log(`  ${name}: ${c.joined} joined, ${c.failed} failed ${JSON.stringify(c.errors)}`);
      if (c.failed) throw new Error(`relay: ${name}: ${c.failed} connections failed ${JSON.stringify(c.errors)}`);
    }
    for (const rate of opts.relayRates) {
      for (let rep = 0; rep < opts.repeats; rep++) {
        const order = rep % 2 === 0 ? ['switchboard', 'bare'] : ['bare', 'switchboard'];
        for (const name of order) {
          const row = await relayRun({ set: targets[name].set, rate, label: name, srvProc: targets[name].srv.proc });
          out.runs.push({ target: name, rep: rep + 1, ...row });
        }
      }
      const summarise = (name) => {
        const rows = out.runs.filter((r) => r.target === name && r.target_rate === rate);
        return {
          target: name,
          target_rate: rate,
          runs: rows.length,
          achieved_send_rate: r1(median(rows.map((r) => r.achieved_send_rate))),
          achieved_receive_rate: r1(median(rows.map((r) => r.achieved_receive_rate))),
          p50: r3(median(rows.map((r) => r.latency_ms.p50))),
          p90: r3(median(rows.map((r) => r.latency_ms.p90))),
          p99: r3(median(rows.map((r) => r.latency_ms.p99))),
          max: r3(median(rows.map((r) => r.latency_ms.max))),
          p99_each: rows.map((r) => r.latency_ms.p99),
          error_acks: rows.reduce((s, r) => s + r.error_acks, 0),
          lost: rows.reduce((s, r) => s + r.lost, 0),
          server_cpu_cores: r2(median(rows.map((r) => r.server_cpu_cores))),
          generators_cpu_cores: r2(median(rows.map((r) => r.generators_cpu_cores))),
        };
      };
      const s = summarise('switchboard');
      const b = summarise('bare');
      s.p99_ratio_vs_bare = b.p99 ? r2(s.p99 / b.p99) : null;
      s.p50_ratio_vs_bare = b.p50 ? r2(s.p50 / b.p50) : null;
      out.summary.push(s, b);
    }
    out.switchboard_metrics_after = await metrics(sb.port);
  } finally {
    out.stop_switchboard = await stopServer(sb);
    out.stop_bare = await stopServer(bare);
    await closeSet('b-sb');
    await closeSet('b-bare');
  }
}

/** Open-loop joins at --join-rate for --join-seconds against `srv` (fresh connections); returns the row. */
async function joinRun(srv, kind, label) {
  const ranges = splitEven(joinTotal);
  const cpu0 = { server: cpuSeconds(srv.proc.pid), gens: gens.map((g) => cpuSeconds(g.pid)) };
  const t0 = performance.now();
  const rs = await Promise.all(
    gens.map((gen, g) =>
      rpc(
        gen,
        'joinrate',
        { set: `c-${kind}`, url: srv.url, kind, prefix: 'c-', ...ranges[g], roomPrefix: 'bench-join-', rate: (opts.joinRate * ranges[g].count) / joinTotal, timeoutMs: 60_000 },
        opts.joinSeconds * 1000 + 120_000,
      ),
    ),
  );
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = { server: cpuSeconds(srv.proc.pid), gens: gens.map((g) => cpuSeconds(g.pid)) };
  const out = { target: label, target_rate: opts.joinRate, seconds: opts.joinSeconds, total: joinTotal };
  out.server_cpu_cores = r2((cpu1.server - cpu0.server) / wall);
  out.generators_cpu_cores = r2(cpu1.gens.reduce((s, c, i) => s + ((c ?? 0) - (cpu0.gens[i] ?? 0)), 0) / wall);
  out.started = rs.reduce((s, r) => s + r.started, 0);
  out.joined = rs.reduce((s, r) => s + r.joined, 0);
  out.failed = rs.reduce((s, r) => s + r.failed, 0);
  out.errors = {};
  for (const r of rs) for (const [k, v] of Object.entries(r.errors)) out.errors[k] = (out.errors[k] ?? 0) + v;
  const lastAck = Math.max(...rs.map((r) => r.lastAckMs ?? 0)) / 1000;
  out.start_span_s = r2(Math.max(...rs.map((r) => r.startSpanMs)) / 1000);
  out.last_ack_s = r2(lastAck);
  out.achieved_joins_per_s = r1(out.joined / lastAck);
  out.max_start_lag_ms = r1(Math.max(...rs.map((r) => r.maxStartLagMs)));
  out.connect_start_to_join_ack_ms = percentiles(rs.flatMap((r) => r.totalMs));
  out.connect_start_to_connected_ms = percentiles(rs.flatMap((r) => r.connectMs));
  out.join_emit_to_ack_ms = percentiles(rs.flatMap((r) => r.joinMs));
  // Joins acknowledged per 1 s bucket (shows whether the server kept up or fell behind).
  const buckets = new Array(Math.ceil(lastAck) + 1).fill(0);
  for (const r of rs) for (const a of r.ackAt) buckets[Math.floor(a / 1000)]++;
  out.acks_per_second = buckets;
  out.local_addresses = [...new Set(rs.flatMap((r) => r.localAddresses))];
  const tl = out.connect_start_to_join_ack_ms;
  log(
    `  ${label}: joined ${out.joined}/${out.started} (failed ${out.failed} ${JSON.stringify(out.errors)}); ${out.achieved_joins_per_s} joins/s (last ack at ${out.last_ack_s} s); ` +
      `start->ack p50 ${tl.p50} p99 ${tl.p99} max ${tl.max} ms; connected p50 ${out.connect_start_to_connected_ms.p50} ms; join emit->ack p50 ${out.join_emit_to_ack_ms.p50} p99 ${out.join_emit_to_ack_ms.p99} ms; ` +
      `cpu srv ${out.server_cpu_cores} gens ${out.generators_cpu_cores}`,
  );
  log(`    acks per second: ${buckets.join(' ')}`);
  if (out.failed) results.failures.push(`joins ${label}: ${out.failed} of ${out.started} failed ${JSON.stringify(out.errors)}`);
  return out;
}

async function phaseJoins() {
  log(`\n== (c) joins: ${opts.joinRate}/s for ${opts.joinSeconds} s (${joinTotal} new connections) on a fresh server, then on a bare Socket.IO server [${dbLabel}]`);
  await mintAll('c-', joinTotal);
  const srv = await startSwitchboard('joins');
  results.joins = { db: dbLabel, rows: [] };
  try {
    const row = await joinRun(srv, 'switchboard', 'switchboard');
    results.joins.rows.push(row);
    await sleep(1_000);
    row.metrics_after = await metrics(srv.port);
    row.rss_after_mb = mb(statusKb(srv.proc.pid, 'VmRSS'));
  } finally {
    results.joins.stop = await stopServer(srv);
    await closeSet('c-switchboard');
  }
  // Baseline: the same open-loop connect + join against the bare Socket.IO server (no token, no database).
  const bare = await startBare();
  try {
    results.joins.rows.push(await joinRun(bare, 'bare', 'bare'));
  } finally {
    await stopServer(bare);
    await closeSet('c-bare');
  }
}

// ---------------------------------------------------------------- report

function report() {
  const m = results.meta;
  const out = [''];
  out.push(`Switchboard signaling benchmark  ${m.date}`);
  out.push(`Node ${m.node} | ${m.cpu_model} | ${m.cpu_cores} cores | ${m.mem_total_gb} GB RAM | socket.io ${m.socket_io}, socket.io-client ${m.socket_io_client} | db ${dbLabel}`);
  out.push(`N=${opts.connections} | ${G} generator processes (source addresses: ${m.local_addresses ? 'per-generator 127.0.0.2+' : '127.0.0.1'}) | all traffic on 127.0.0.0/8; servers and generators share the cores`);
  const a = results.connections;
  if (a) {
    out.push('');
    out.push(`(a) Connections: websocket, token in the handshake, join of a two-party room; ${a.ramp_concurrency} joins in flight`);
    const mb0 = a.metrics_before ?? {};
    const mb1 = a.metrics_after ?? {};
    out.push(
      table(
        ['joined', 'failed', 'ramp s', 'joins/s', 'RSS idle MB', 'RSS after MB', 'KB/conn (target <=50)', 'heap used MB', 'heap KB/conn', 'gauges conn/part/rooms'],
        [[
          `${a.joined}/${a.n}`,
          a.failed,
          a.ramp_s,
          a.ramp_joins_per_s,
          a.rss_before_mb,
          `${a.rss_after_mb} (peak ${a.rss_peak_mb})`,
          a.kb_per_connection,
          `${mb0.heap_used_mb} -> ${mb1.heap_used_mb}`,
          a.heap_kb_per_connection,
          `${mb1.socket_connections}/${mb1.participants}/${mb1.rooms}`,
        ]],
      ),
    );
    if (a.bare) {
      out.push(`    bare Socket.IO, same N: joined ${a.bare.joined}/${a.n} in ${a.bare.ramp_s} s (${a.bare.ramp_joins_per_s}/s); RSS ${a.bare.rss_before_mb} -> ${a.bare.rss_after_mb} MB = ${a.bare.kb_per_connection} KB/connection`);
    }
    if (a.ramp_connect_to_ack_ms) {
      out.push(`    ramp latency connect->join ack p50 ${a.ramp_connect_to_ack_ms.p50} p99 ${a.ramp_connect_to_ack_ms.p99} ms; join emit->ack p50 ${a.ramp_join_emit_to_ack_ms.p50} p99 ${a.ramp_join_emit_to_ack_ms.p99} ms; server CPU ${a.ramp_server_cpu_cores} cores`);
    }
  }
  const rows = [];
  const b = results.relay;
  if (b) {
    for (const s of b.summary) {
      rows.push([
        s.target,
        s.target_rate,
        s.achieved_send_rate,
        s.achieved_receive_rate,
        s.p50,
        s.p90,
        s.p99,
        s.max,
        s.p99_each.join('/'),
        s.p99_ratio_vs_bare ?? '',
        s.error_acks,
        s.lost,
        `${s.server_cpu_cores}/${s.generators_cpu_cores}`,
      ]);
    }
  }
  for (const l of a?.loaded_relay ?? []) {
    rows.push([l.label, l.target_rate, l.achieved_send_rate, l.achieved_receive_rate, l.latency_ms.p50, l.latency_ms.p90, l.latency_ms.p99, l.latency_ms.max, l.latency_ms.p99, '', l.error_acks, l.lost, `${l.server_cpu_cores}/${l.generators_cpu_cores}`]);
  }
  if (rows.length) {
    out.push('');
    out.push(
      `(b) Relay latency, one-way offer (${opts.sdpBytes} B SDP) sender -> server -> receiver, ms; ${opts.relayPairs} pairs; ${opts.relaySeconds} s after ${opts.warmup} s warm-up; ` +
        `median of ${opts.repeats} runs (alternating switchboard/bare)`,
    );
    out.push(table(['target', 'rate/s', 'sent/s', 'recv/s', 'p50', 'p90', 'p99', 'max', 'p99 of each run', 'p99 ratio', 'err acks', 'lost', 'cpu srv/gens'], rows));
  }
  const c = results.joins;
  if (c?.rows?.length) {
    out.push('');
    out.push(`(c) Joins: target ${opts.joinRate}/s for ${opts.joinSeconds} s, open loop, new connections (switchboard on a fresh server; bare Socket.IO baseline); ms`);
    out.push(
      table(
        ['target', 'joined', 'failed', 'joins/s', 'start->ack p50', 'p99', 'max', 'connected p50', 'p99', 'join emit->ack p50', 'p99', 'max', 'cpu srv/gens'],
        c.rows.map((r) => [
          r.target,
          `${r.joined}/${r.started}`,
          r.failed,
          r.achieved_joins_per_s,
          r.connect_start_to_join_ack_ms.p50,
          r.connect_start_to_join_ack_ms.p99,
          r.connect_start_to_join_ack_ms.max,
          r.connect_start_to_connected_ms.p50,
          r.connect_start_to_connected_ms.p99,
          r.join_emit_to_ack_ms.p50,
          r.join_emit_to_ack_ms.p99,
          r.join_emit_to_ack_ms.max,
          `${r.server_cpu_cores}/${r.generators_cpu_cores}`,
        ]),
      ),
    );
    for (const r of c.rows) out.push(`    ${r.target}: joins acked per second: ${r.acks_per_second.join(' ')}`);
  }
  out.push('');
  out.push(results.failures.length ? `FAILED:\n${results.failures.map((f) => `  - ${f}`).join('\n')}` : 'OK: every connection joined; no error acks, no lost messages');
  console.log(out.join('\n'));
}

function writeOut() {
  if (!opts.out) return;
  writeFileSync(opts.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`JSON written to ${opts.out}`);
}

function budgetMs() {
  const relayRun = (opts.warmup + opts.relaySeconds + 5) * 1000;
  const relay = opts.relayRates.length * (2 * opts.repeats + 1) * relayRun;
  return 600_000 + relay + opts.connections * 30 + opts.joinSeconds * 1000 * 3;
}

// ---------------------------------------------------------------- main

async function main() {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
  const started = performance.now();
  results.meta = {
    ...machineMeta(),
    mem_total_gb: memTotalGb(),
    socket_io: require('socket.io/package.json').version,
    socket_io_client: require('socket.io-client/package.json').version,
    n: opts.connections,
    generators: G,
  };
  const watchdog = setTimeout(() => {
    console.error(`\nbench: exceeded its ${Math.round(budgetMs() / 1000)} s budget; aborting`);
    cleanup().finally(() => process.exit(1));
  }, budgetMs());
  watchdog.unref();

  log(`bench: Node ${process.version}, ${results.meta.cpu_model}, ${os.cpus().length} cores, N=${opts.connections}, ${G} generators, db ${dbLabel}`);
  const dir = tempDir('sb-bench-sig-key-');
  const signing = createSigningKey(dir);
  keyFile = signing.keyFile;
  const { pem, kid } = signing;

  const useLocal = await localAddressWorks();
  results.meta.local_addresses = useLocal;
  log(`  source addresses: ${useLocal ? `127.0.0.2..127.0.0.${1 + G} (one per generator)` : 'binding 127.0.0.2 failed; all generators use the default'}`);
  await startGenerators(pem, kid, useLocal);

  if (opts.phases.has('connections')) await phaseConnections();
  if (opts.phases.has('relay')) await phaseRelay();
  if (opts.phases.has('joins')) await phaseJoins();

  results.meta.wall_s = Math.round((performance.now() - started) / 100) / 10;
  results.ok = results.failures.length === 0;
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  exitCode = 1;
  results.failures.push(`aborted: ${err?.message ?? err}`);
  console.error(`\nbench aborted: ${err?.stack ?? err}`);
} finally {
  await cleanup();
}
if (!termination.signalled) {
  report();
  writeOut();
  if (!results.ok) exitCode = 1;
  process.exit(exitCode);
}
