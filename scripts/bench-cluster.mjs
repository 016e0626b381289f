#!/usr/bin/env node
/**
 * Cluster benchmark for Switchboard (a benchmark, not a test). One run:
 *
 *   - starts two cluster nodes (node-0, node-1) sharing this machine's Redis (a key prefix
 *     of their own) and a fresh PostgreSQL database, plus one single node without Redis
 *     (same database) as the baseline;
 *   (1) relay round trip: A sends `offer` to B with a timestamp-tagged SDP, B answers at once
 *       with `answer` to A; the RTT (ping-pong, one clock: A's) of --pings sequential
 *       exchanges after --warmup, per case: (a) same node (node-0), (b) cross node
 *       (node-0 -> node-1), (c) same node without Redis. The cases are interleaved in
 *       blocks of 100. Redis commands per relayed message (INFO commandstats around each
 *       block, minus the idle rate) are reported for (a) and (b);
 *   (2) Redis commands per join: INFO commandstats (sum of calls=) before and after --joins
 *       joins, each by a new connection with its own token, (i) "first join": a fresh room
 *       (opens the call: database, media placement, media open), then (ii) "existing room":
 *       a second participant joins each of those rooms. Joins alternate between the nodes
 *       and the second participant joins through the other node than the first. The
 *       background (heartbeats) is measured over an idle window of the same length (at
 *       least 4 s) right after each phase and subtracted, scaled by the heartbeat scripts
 *       seen in each window (counted with MONITOR). MONITOR also gives the client -> Redis
 *       round trips (top-level commands; commandstats also counts the commands that Lua
 *       scripts run).
 *
 * INFO commandstats is server-wide: nothing else may use this Redis during the run (the
 * script lists other clients and counts foreign commands seen by MONITOR). All traffic goes
 * to 127.0.0.1. Bounded: a watchdog aborts after 170 s. Cleanup on every exit path: clients
 * closed, servers stopped (SIGINT, then SIGKILL to the process group), the run's Redis keys
 * deleted, the database dropped, temp directories removed.
 *
 *   node scripts/bench-cluster.mjs [--pings 2000] [--warmup 200] [--joins 50] [--sdp-bytes 3000]
 *
 * Environment: BENCH_REDIS_URL (default redis://127.0.0.1:6379), TEST_DATABASE_URL (admin
 * connection, default postgresql://postgres@127.0.0.1:5432/postgres). Needs npm run build.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  BENCH_API_KEY,
  ROOT,
  SERVER_MAIN,
  childPids,
  comm,
  createSigningKey,
  freeDualPort,
  freePort,
  integerOption,
  isAlive,
  killQuietly,
  machineMeta,
  memTotalGb,
  mintRs256,
  nearestRank,
  onExitKillAndRemove,
  onTerminationSignals,
  packageVersion,
  spawnNodeProcess,
  switchboardClaims,
  table,
  tempDir as makeTempDir,
  waitForReady,
} from './bench-lib.mjs';

const require = createRequire(path.join(ROOT, 'package.json'));
const { io } = require('socket.io-client');
const { Redis } = require('ioredis');
const pg = require('pg');

const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN_DB_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const WATCHDOG_MS = 170_000;
const RELAY_BUDGET_MS = 60_000;
const PING_TIMEOUT_MS = 2_000;
const BLOCK = 100;
const SETTLE_MS = 1_000;
const MIN_IDLE_MS = 4_000;
/** Our own probe commands, left out of every sum. */
const OWN = (name) => name === 'info' || name === 'monitor' || name.startsWith('client|');

// ---------------------------------------------------------------- options

function usage(code) {
  (code ? console.error : console.log)('usage: node scripts/bench-cluster.mjs [--pings 2000] [--warmup 200] [--joins 50] [--sdp-bytes 3000]');
  process.exit(code);
}
let args;
try {
  args = parseArgs({
    options: {
      pings: { type: 'string', default: '2000' },
      warmup: { type: 'string', default: '200' },
      joins: { type: 'string', default: '50' },
      'sdp-bytes': { type: 'string', default: '3000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }).values;
} catch (err) {
  console.error(err.message);
  usage(2);
}
if (args.help) usage(0);
const int = (name, min, max) => integerOption(name, args[name], min, max, () => usage(2));
const opts = { pings: int('pings', 1, 100_000), warmup: int('warmup', 0, 10_000), joins: int('joins', 1, 500), sdpBytes: int('sdp-bytes', 64, 60_000) };

// ---------------------------------------------------------------- cleanup

const log = (msg) => console.error(msg);
const servers = new Set(); // { proc, port, url, name, workers: Set<pid> }
const sockets = new Set();
const tempDirs = new Set();
const state = { prefix: null, dbName: null, redis: null, monitor: null };
const cleanupReport = [];
let cleaningUp = null;

async function stopServer(srv) {
  for (const pid of childPids(srv.proc.pid, { psFallback: true })) if (comm(pid)?.startsWith('mediasoup-work')) srv.workers.add(pid);
  if (!srv.proc.exitInfo) {
    killQuietly(srv.proc.pid, 'SIGINT'); // SIGINT: shut down without the SIGTERM drain wait
    const done = await Promise.race([srv.proc.exited.then(() => true), sleep(10_000).then(() => false)]);
    if (!done) {
      log(`  ! ${srv.name} still running 10 s after SIGINT: SIGKILL to its process group`);
      killQuietly(-srv.proc.pid);
      killQuietly(srv.proc.pid);
      await Promise.race([srv.proc.exited, sleep(2_000)]);
    }
  }
  await sleep(200);
  for (const pid of srv.workers) if (isAlive(pid) && comm(pid)?.startsWith('mediasoup-work')) killQuietly(pid);
  servers.delete(srv);
  return { name: srv.name, exit: srv.proc.exitInfo, alive: [srv.proc.pid, ...srv.workers].filter((p) => isAlive(p)) };
}

async function adminQuery(sql, params) {
  const c = new pg.Client({ connectionString: ADMIN_DB_URL, connectionTimeoutMillis: 5_000, query_timeout: 30_000 });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

async function cleanup() {
  cleaningUp ??= (async () => {
    for (const s of sockets) s.disconnect();
    sockets.clear();
    state.monitor?.disconnect();
    // One at a time: a stopping cluster node hands its rooms' media to a live peer; two
    // stopping together would forward to each other and wait for RPC timeouts.
    const stopped = [];
    for (const srv of [...servers]) stopped.push(await stopServer(srv));
    const left = stopped.flatMap((s) => s.alive);
    cleanupReport.push(`servers stopped: ${stopped.map((s) => `${s.name} (exit ${s.exit?.code ?? s.exit?.signal})`).join(', ') || 'none'}; processes left: ${left.length ? left.join(', ') : 'none'}`);
    if (state.prefix) {
      let redis = state.redis;
      try {
        redis ??= new Redis(REDIS_URL, { connectionName: 'bench-cluster:probe', maxRetriesPerRequest: 2 });
        let deleted = 0;
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${state.prefix}*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length) deleted += await redis.del(...keys);
        } while (cursor !== '0');
        let remaining = 0;
        cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${state.prefix}*`, 'COUNT', 1000);
          cursor = next;
          remaining += keys.length;
        } while (cursor !== '0');
        cleanupReport.push(`Redis keys '${state.prefix}*': ${deleted} deleted, ${remaining} left`);
      } catch (err) {
        cleanupReport.push(`! deleting the Redis keys '${state.prefix}*' failed: ${err.message}`);
      } finally {
        redis?.disconnect();
      }
    }
    if (state.dbName) {
      try {
        await adminQuery(`DROP DATABASE IF EXISTS "${state.dbName}" WITH (FORCE)`);
        const still = (await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [state.dbName])).rowCount;
        cleanupReport.push(`database ${state.dbName}: ${still ? 'STILL PRESENT' : 'dropped'}`);
      } catch (err) {
        cleanupReport.push(`! dropping database ${state.dbName} failed: ${err.message}`);
      }
    }
  })();
  return cleaningUp;
}

const termination = onTerminationSignals({ doing: 'closing clients, stopping servers, deleting keys, dropping the database...', cleanup });
onExitKillAndRemove(function* () {
  for (const s of servers) {
    yield -s.proc.pid;
    yield s.proc.pid;
    yield* s.workers;
  }
}, tempDirs);

// ---------------------------------------------------------------- helpers

const r2 = (x) => (x == null || Number.isNaN(x) ? null : Math.round(x * 100) / 100);
const r3 = (x) => (x == null || Number.isNaN(x) ? null : Math.round(x * 1000) / 1000);

function percentiles(values) {
  if (!values.length) return { n: 0, p50: null, p90: null, p99: null, max: null, mean: null };
  const a = Float64Array.from(values).sort();
  const sum = a.reduce((s, v) => s + v, 0);
  return { n: a.length, p50: r3(nearestRank(a, 50)), p90: r3(nearestRank(a, 90)), p99: r3(nearestRank(a, 99)), max: r3(a[a.length - 1]), mean: r3(sum / a.length) };
}

/** INFO commandstats as { command: calls }, our own probe commands left out. */
async function commandStats(redis) {
  const out = {};
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m && !OWN(m[1])) out[m[1]] = Number(m[2]);
  }
  return out;
}
const diff = (a, b) => Object.fromEntries(Object.keys(b).map((k) => [k, b[k] - (a[k] ?? 0)]).filter(([, v]) => v !== 0));
const sum = (o) => Object.values(o).reduce((s, v) => s + v, 0);
const addTo = (acc, o, f = 1) => {
  for (const [k, v] of Object.entries(o)) acc[k] = (acc[k] ?? 0) + v * f;
  return acc;
};

/** A node's environment (cluster: REDIS_URL etc.; baseline: none of them). */
async function startServer(name, { pem, databaseUrl, cluster, mediaBase, avoid }) {
  const port = await freePort();
  const webrtc = await freeDualPort(20000, 30000, avoid);
  avoid.add(webrtc);
  const dataDir = makeTempDir(`sb-bench-cluster-${name}-`, tempDirs);
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    RECORDINGS_DIR: path.join(dataDir, 'recordings'),
    DATABASE_URL: databaseUrl,
    JWT_PRIVATE_KEY: pem,
    API_KEYS: BENCH_API_KEY,
    MEDIASOUP_WORKERS: '1',
    MEDIASOUP_LISTEN_IP: '127.0.0.1',
    MEDIASOUP_WEBRTC_PORT: String(webrtc),
    MEDIASOUP_RTC_MIN_PORT: String(mediaBase),
    MEDIASOUP_RTC_MAX_PORT: String(mediaBase + 99),
    RECORDING_MIN_PORT: String(mediaBase + 100),
    RECORDING_MAX_PORT: String(mediaBase + 189),
    LOG_LEVEL: 'warn',
    RATE_LIMIT_MAX: '10000000',
    SOCKET_RATE_LIMIT_PER_SECOND: '100000',
    SOCKET_RATE_LIMIT_BURST: '100000',
    ...(cluster ? { REDIS_URL, REDIS_KEY_PREFIX: state.prefix, NODE_ID: name, NODE_ADDRESS: `127.0.0.1:${port}` } : { NODE_ID: name }),
  };
  if (process.env.TMPDIR) env.TMPDIR = process.env.TMPDIR;
  const t0 = performance.now();
  const proc = spawnNodeProcess(name, SERVER_MAIN, { env });
  const srv = { name, proc, port, url: `http://127.0.0.1:${port}`, workers: new Set(), cluster };
  servers.add(srv);
  const { ms } = await waitForReady(proc, port, t0, { pollMs: 50, timeoutMs: 60_000 });
  for (const pid of childPids(proc.pid, { psFallback: true })) if (comm(pid)?.startsWith('mediasoup-work')) srv.workers.add(pid);
  log(`  ${name}: ready in ${Math.round(ms)} ms on port ${port} (${cluster ? 'cluster, Redis' : 'single node, no Redis'}; media ${webrtc}, ${mediaBase}-${mediaBase + 189})`);
  return srv;
}

let signing;
const token = (user) => mintRs256(signing.signingKey, signing.kid, switchboardClaims({ sub: user, name: user, role: 'participant' }, 3600, randomUUID()));

/** Connects with its own token (websocket only) and joins `room`; returns { socket, pid, callId, joinMs }. */
function connectAndJoin(srv, user, room, timeoutMs = 15_000) {
  return new Promise((resolve, reject) => {
    const socket = io(srv.url, { transports: ['websocket'], auth: { token: token(user) }, reconnection: false, forceNew: true, timeout: timeoutMs });
    sockets.add(socket);
    const timer = setTimeout(() => reject(new Error(`${user}: connect+join to ${srv.name} timed out`)), timeoutMs);
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${user}: connect to ${srv.name} failed: ${err.message}`));
    });
    socket.once('connect', () => {
      const t = performance.now();
      socket.emit('join', { room }, (ack) => {
        clearTimeout(timer);
        if (!ack?.ok) return reject(new Error(`${user}: join ${room} on ${srv.name}: ${JSON.stringify(ack?.error ?? ack)}`));
        resolve({ socket, pid: ack.participant_id, callId: ack.room_state.call_id, joinMs: performance.now() - t });
      });
    });
  });
}

// ---------------------------------------------------------------- relay (ping-pong)

/** A pair A -> B in one room; B answers every offer at once. */
async function makePair(label, room, srvA, srvB) {
  const a = await connectAndJoin(srvA, `${room}-a`, room);
  const b = await connectAndJoin(srvB, `${room}-b`, room);
  const pair = { label, a, b, errors: 0, lost: 0, strays: 0, pending: null, seq: 0 };
  b.socket.on('offer', (m) => b.socket.emit('answer', { call_id: m.call_id, to: m.from, sdp: m.sdp }));
  a.socket.on('answer', (m) => {
    const [, seq, t0] = /^bench (\d+) ([\d.]+)/.exec(m.sdp) ?? [];
    const p = pair.pending;
    if (!p || Number(seq) !== p.seq) return void pair.strays++;
    pair.pending = null;
    clearTimeout(p.timer);
    p.resolve(performance.now() - Number(t0));
  });
  for (const s of [a.socket, b.socket]) s.on('signaling-error', () => pair.errors++);
  return pair;
}

const pad = (n) => 'a=x-bench-padding:'.padEnd(Math.max(0, n), 'x');
function pingPong(pair) {
  return new Promise((resolve) => {
    const seq = ++pair.seq;
    const head = `bench ${seq} ${performance.now().toFixed(4)}\r\n`;
    pair.pending = {
      seq,
      resolve,
      timer: setTimeout(() => {
        pair.pending = null;
        pair.lost++;
        resolve(null);
      }, PING_TIMEOUT_MS),
    };
    pair.a.socket.emit('offer', { call_id: pair.a.callId, to: pair.b.pid, sdp: head + pad(opts.sdpBytes - head.length) });
  });
}

async function relayPhase(pairs, redis) {
  // Background rate (heartbeats) over an idle window, for the per-message figures.
  const idle0 = await commandStats(redis);
  const ti = performance.now();
  await sleep(MIN_IDLE_MS);
  const idle = diff(idle0, await commandStats(redis));
  const idleS = (performance.now() - ti) / 1000;
  log(`  idle: ${sum(idle)} Redis commands in ${idleS.toFixed(1)} s (${(sum(idle) / idleS).toFixed(1)}/s: heartbeats)`);

  const run = async (perCase, measure) => {
    const started = performance.now();
    for (let round = 0; ; round++) {
      const order = pairs.map((_, i) => pairs[(i + round) % pairs.length]);
      let any = false;
      for (const pair of order) {
        const done = measure ? pair.rtts.length + pair.lostMeasured : pair.warm;
        const n = Math.min(BLOCK, perCase - done);
        if (n <= 0) continue;
        any = true;
        const s0 = measure && pair.cluster ? await commandStats(redis) : null;
        const t0 = performance.now();
        for (let i = 0; i < n; i++) {
          const rtt = await pingPong(pair);
          if (!measure) pair.warm++;
          else if (rtt == null) pair.lostMeasured++;
          else pair.rtts.push(rtt);
        }
        if (s0) {
          pair.blockS += (performance.now() - t0) / 1000;
          addTo(pair.cmds, diff(s0, await commandStats(redis)));
        }
      }
      if (!any) return false;
      if (measure && performance.now() - started > RELAY_BUDGET_MS) return true;
    }
  };
  for (const p of pairs) Object.assign(p, { warm: 0, rtts: [], lostMeasured: 0, cmds: {}, blockS: 0 });
  await run(opts.warmup, false);
  const lostWarm = pairs.reduce((s, p) => s + p.lost, 0);
  const t0 = performance.now();
  const truncated = await run(opts.pings, true);
  const wallS = (performance.now() - t0) / 1000;
  return {
    idle,
    idleS,
    wallS,
    truncated,
    lostWarm,
    rows: pairs.map((p) => {
      const msgs = 2 * p.rtts.length; // offer + answer
      const bg = addTo({}, idle, p.blockS / idleS);
      const net = Object.fromEntries(Object.entries(p.cmds).map(([k, v]) => [k, v - (bg[k] ?? 0)]));
      return {
        label: p.label,
        stats: percentiles(p.rtts),
        lost: p.lostMeasured,
        errors: p.errors,
        strays: p.strays,
        perMsg: p.cluster && msgs ? sum(net) / msgs : null,
        perMsgBreakdown: p.cluster && msgs ? Object.entries(net).map(([k, v]) => [k, v / msgs]).filter(([, v]) => v >= 0.01).sort((x, y) => y[1] - x[1]) : null,
      };
    }),
  };
}

// ---------------------------------------------------------------- joins (Redis commands)

const HEARTBEAT_SCRIPT = /redis\.call\('(ZADD|ZRANGEBYSCORE)'/;

/** MONITOR: top-level commands per name from the nodes' connections, heartbeat scripts apart, foreign ones counted. */
async function startMonitor(redis, ownAddrs, nodeAddrs) {
  const m = await redis.monitor();
  state.monitor = m;
  const counts = { top: {}, heartbeats: 0, lua: 0, foreign: 0, byNode: {} };
  m.on('monitor', (_time, argv, source) => {
    const name = String(argv[0] ?? '').toLowerCase();
    if (source === 'lua') return void counts.lua++;
    if (ownAddrs.has(source)) return;
    const node = nodeAddrs.get(source);
    if (!node) return void counts.foreign++;
    if (name === 'eval' && HEARTBEAT_SCRIPT.test(argv[1] ?? '')) return void counts.heartbeats++;
    counts.top[name] = (counts.top[name] ?? 0) + 1;
    counts.byNode[node] = (counts.byNode[node] ?? 0) + 1;
  });
  const snap = () => structuredClone(counts);
  return { snap, stop: () => m.disconnect() };
}

function monitorDiff(a, b) {
  return { top: diff(a.top, b.top), heartbeats: b.heartbeats - a.heartbeats, foreign: b.foreign - a.foreign, byNode: diff(a.byNode, b.byNode) };
}

async function joinPhase(label, redis, mon, plan) {
  // The window: first INFO before the first connect, last INFO after the settle time.
  const s0 = await commandStats(redis);
  const m0 = mon.snap();
  const t0 = performance.now();
  const joined = [];
  for (const { srv, user, room } of plan) joined.push(await connectAndJoin(srv, user, room));
  await sleep(SETTLE_MS);
  const s1 = await commandStats(redis);
  await sleep(50); // MONITOR lines trail the commands a little
  const m1 = mon.snap();
  const T = performance.now() - t0;
  // Idle window right after, of the same length (at least MIN_IDLE_MS so each node heartbeats in it).
  const idleMs = Math.max(T, MIN_IDLE_MS);
  const i0 = await commandStats(redis);
  const mi0 = mon.snap();
  await sleep(idleMs);
  const i1 = await commandStats(redis);
  await sleep(50);
  const mi1 = mon.snap();
  const phase = diff(s0, s1);
  const idle = diff(i0, i1);
  const pm = monitorDiff(m0, m1);
  const im = monitorDiff(mi0, mi1);
  // Background in the phase window: the idle window's commands per heartbeat script times the heartbeat scripts seen in the phase.
  const scale = im.heartbeats > 0 ? pm.heartbeats / im.heartbeats : T / idleMs;
  const bg = addTo({}, idle, scale);
  const N = plan.length;
  const net = {};
  for (const k of new Set([...Object.keys(phase), ...Object.keys(bg)])) net[k] = (phase[k] ?? 0) - (bg[k] ?? 0);
  const total = sum(net) / N;
  const top = sum(pm.top) / N;
  const breakdown = Object.keys(net)
    .map((k) => [k, net[k] / N, (pm.top[k] ?? 0) / N])
    .filter(([, v, t]) => Math.abs(v) >= 0.05 || t > 0)
    .sort((x, y) => y[1] - x[1]);
  log(`  ${label}: ${N} joins in ${(T / 1000).toFixed(2)} s (incl. ${SETTLE_MS} ms settle): ${sum(phase)} commands; idle ${(idleMs / 1000).toFixed(1)} s: ${sum(idle)} (heartbeat scripts ${pm.heartbeats} vs ${im.heartbeats} idle) -> ${total.toFixed(2)}/join, ${top.toFixed(2)} round trips/join`);
  return {
    label,
    n: N,
    windowS: T / 1000,
    idleS: idleMs / 1000,
    raw: sum(phase),
    background: sum(bg),
    idleRaw: sum(idle),
    heartbeats: [pm.heartbeats, im.heartbeats],
    perJoin: total,
    roundTrips: top,
    inScripts: total - top,
    byNode: Object.fromEntries(Object.entries(pm.byNode).map(([k, v]) => [k, v / N])),
    foreign: pm.foreign + im.foreign,
    breakdown,
    joinMs: percentiles(joined.map((j) => j.joinMs)),
    joined,
  };
}

// ---------------------------------------------------------------- main

const results = { failures: [] };

async function main() {
  if (!existsSync(SERVER_MAIN)) throw new Error(`${SERVER_MAIN} is missing: run npm run build first`);
  const startedAt = performance.now();
  const meta = { ...machineMeta(), mem_total_gb: memTotalGb() };
  results.meta = meta;
  const watchdog = setTimeout(() => {
    console.error(`\nbench: exceeded ${WATCHDOG_MS / 1000} s; aborting`);
    cleanup().finally(() => process.exit(1));
  }, WATCHDOG_MS);
  watchdog.unref();

  const redis = new Redis(REDIS_URL, { connectionName: 'bench-cluster:probe', maxRetriesPerRequest: 2 });
  state.redis = redis;
  meta.redis_version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
  const others = (await redis.client('LIST')).split('\n').filter((l) => l && !/ name=bench-cluster:/.test(l));
  meta.other_clients_at_start = others.length;
  log(`bench: Node ${process.version}, ${meta.cpu_model}, ${meta.cpu_cores} cores; Redis ${meta.redis_version} (${others.length} other client(s) connected)`);

  state.prefix = `bench-cluster-${randomBytes(4).toString('hex')}:`;
  const dbName = `bench_cluster_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${dbName}"`);
  state.dbName = dbName;
  const dbUrl = new URL(ADMIN_DB_URL);
  dbUrl.pathname = `/${dbName}`;
  log(`  database ${dbName}, Redis key prefix ${state.prefix}`);

  signing = createSigningKey(makeTempDir('sb-bench-cluster-key-', tempDirs));
  const avoid = new Set();
  const mediaBase = 30000 + 200 * Math.floor(Math.random() * 45); // 3 blocks of 200 ports, 30000-39599
  const common = { pem: signing.pem, databaseUrl: dbUrl.toString(), avoid };
  // The first node migrates the fresh database; the others start together after it.
  const node0 = await startServer('node-0', { ...common, cluster: true, mediaBase });
  const [node1, base] = await Promise.all([
    startServer('node-1', { ...common, cluster: true, mediaBase: mediaBase + 200 }),
    startServer('single', { ...common, cluster: false, mediaBase: mediaBase + 400 }),
  ]);

  // Which Redis connections are whose (for MONITOR).
  const ownAddrs = new Set();
  const nodeAddrs = new Map();
  for (const line of (await redis.client('LIST')).split('\n')) {
    const addr = / addr=(\S+)/.exec(line)?.[1];
    const name = / name=(\S*)/.exec(line)?.[1] ?? '';
    if (!addr) continue;
    if (name.startsWith('bench-cluster:')) ownAddrs.add(addr);
    else if (name.startsWith('switchboard:node-')) nodeAddrs.set(addr, name.split(':')[1]);
  }
  meta.node_connections = nodeAddrs.size;

  // ---- (1) relay
  log(`\n== relay round trip: ${opts.warmup} warm-up + ${opts.pings} sequential ping-pongs per case, SDP ${opts.sdpBytes} B, interleaved in blocks of ${BLOCK}`);
  const pairs = [
    Object.assign(await makePair('(a) same node, cluster (node-0 <-> node-0)', 'r-same', node0, node0), { cluster: true }),
    Object.assign(await makePair('(b) cross node, cluster (node-0 <-> node-1)', 'r-cross', node0, node1), { cluster: true }),
    Object.assign(await makePair('(c) same node, no Redis (single)', 'r-base', base, base), { cluster: false }),
  ];
  results.relay = await relayPhase(pairs, redis);
  if (results.relay.lostWarm) results.failures.push(`relay: ${results.relay.lostWarm} ping-pongs lost during the warm-up`);
  for (const r of results.relay.rows) {
    log(`  ${r.label}: n ${r.stats.n} p50 ${r.stats.p50} p99 ${r.stats.p99} max ${r.stats.max} ms; lost ${r.lost}, errors ${r.errors}${r.perMsg != null ? `; ${r.perMsg.toFixed(2)} Redis commands/message` : ''}`);
    if (r.lost || r.errors) results.failures.push(`relay ${r.label}: ${r.lost} lost, ${r.errors} signaling errors`);
    if (r.stats.n < opts.pings) results.failures.push(`relay ${r.label}: only ${r.stats.n} of ${opts.pings} ping-pongs measured (60 s bound)`);
  }

  // ---- (2) Redis commands per join
  log(`\n== Redis commands per join: ${opts.joins} first joins (fresh rooms), then ${opts.joins} joins to those rooms; MONITOR on`);
  const mon = await startMonitor(redis, ownAddrs, nodeAddrs);
  await sleep(200);
  const tag = randomBytes(3).toString('hex');
  const nodes = [node0, node1];
  // Warm-up, outside the windows: each node opens a room and joins one through the other node
  // (ioredis sends a Lua script's first call on a connection as EVAL, later ones as EVALSHA).
  for (let i = 0; i < 2; i++) {
    await connectAndJoin(nodes[i], `jw-${tag}-${i}-a`, `rw-${tag}-${i}`);
    await connectAndJoin(nodes[1 - i], `jw-${tag}-${i}-b`, `rw-${tag}-${i}`);
  }
  await sleep(SETTLE_MS);
  const first = await joinPhase(
    'first join (opens the room)',
    redis,
    mon,
    Array.from({ length: opts.joins }, (_, i) => ({ srv: nodes[i % 2], user: `jf-${tag}-${i}`, room: `rj-${tag}-${i}` })),
  );
  const second = await joinPhase(
    'join to an existing room',
    redis,
    mon,
    Array.from({ length: opts.joins }, (_, i) => ({ srv: nodes[(i + 1) % 2], user: `js-${tag}-${i}`, room: `rj-${tag}-${i}` })),
  );
  mon.stop();
  state.monitor = null;
  // Where the rooms' media went (read after the measurements).
  let local = 0;
  for (let i = 0; i < opts.joins; i++) {
    const rec = JSON.parse((await redis.get(`${state.prefix}room:rj-${tag}-${i}`)) ?? 'null');
    if (rec?.mediaNode === nodes[i % 2].name) local++;
  }
  first.mediaLocal = local;
  results.joins = [first, second];
  for (const j of results.joins) if (j.foreign) results.failures.push(`${j.foreign} commands from other Redis clients during the ${j.label} windows: the counts are not clean`);
  const othersEnd = (await redis.client('LIST')).split('\n').filter((l) => l && !/ name=(bench-cluster|switchboard):/.test(l));
  meta.other_clients_at_end = othersEnd.length;
  meta.wall_s = Math.round((performance.now() - startedAt) / 100) / 10;
}

// ---------------------------------------------------------------- report

function report() {
  const m = results.meta ?? {};
  const out = [''];
  out.push(`Switchboard cluster benchmark  ${m.date}`);
  out.push(`Node ${m.node} | ${m.platform} | ${m.cpu_model} | ${m.cpu_cores} cores | ${m.mem_total_gb} GB RAM`);
  out.push(
    `socket.io ${packageVersion('socket.io')}, socket.io-client ${packageVersion('socket.io-client')}, @socket.io/redis-adapter ${packageVersion('@socket.io/redis-adapter')}, ioredis ${packageVersion('ioredis')} | Redis ${m.redis_version} | PostgreSQL (fresh database)`,
  );
  out.push('Servers: node-0 + node-1 (REDIS_URL, shared Redis + PostgreSQL, 1 mediasoup worker each) and a single node without Redis (same database); all on 127.0.0.1, sharing the cores with the client.');
  const rl = results.relay;
  if (rl) {
    out.push('');
    out.push(`(1) Relay round trip (RTT, ms): A sends offer (${opts.sdpBytes} B SDP, timestamp-tagged) to B, B answers at once; RTT on A's clock = 2 relays through the server(s).`);
    out.push(`    ${opts.warmup} warm-up + ${opts.pings} sequential ping-pongs per case, cases interleaved in blocks of ${BLOCK}; ${rl.wallS.toFixed(1)} s measured${rl.truncated ? ' (stopped by the 60 s bound)' : ''}.`);
    out.push(
      table(
        ['case', 'n', 'p50', 'p90', 'p99', 'max', 'mean', 'lost', 'errors', 'Redis cmds/msg'],
        rl.rows.map((r) => [r.label, r.stats.n, r.stats.p50, r.stats.p90, r.stats.p99, r.stats.max, r.stats.mean, r.lost, r.errors, r.perMsg != null ? r.perMsg.toFixed(2) : 'n/a']),
      ),
    );
    const base = rl.rows[2]?.stats;
    for (const r of rl.rows.slice(0, 2)) {
      if (base?.p50) out.push(`    ${r.label.slice(0, 3)} vs (c): p50 +${r3(r.stats.p50 - base.p50)} ms (x${r2(r.stats.p50 / base.p50)}), p99 +${r3(r.stats.p99 - base.p99)} ms (x${r2(r.stats.p99 / base.p99)})`);
    }
    for (const r of rl.rows.filter((x) => x.perMsgBreakdown)) {
      out.push(`    ${r.label.slice(0, 3)} Redis commands per relayed message: ${r.perMsgBreakdown.map(([k, v]) => `${k.toUpperCase()} ${v.toFixed(2)}`).join(', ')}`);
    }
    out.push(`    (commandstats around each block minus the idle rate: ${sum(rl.idle)} commands in ${rl.idleS.toFixed(1)} s idle)`);
  }
  if (results.joins) {
    out.push('');
    out.push(`(2) Redis commands per join (N=${opts.joins} each; new connection + own token + join; alternating node-0/node-1, the second participant through the other node;`);
    out.push('    after one warm-up join of each kind on each node, outside the windows).');
    out.push(
      '    INFO commandstats (sum of calls=, server-wide; counts commands run inside Lua scripts too) before/after, minus an idle window of the same length (>= 4 s)\n' +
        '    right after, scaled by the heartbeat scripts MONITOR saw in each window. Round trips = top-level commands from the nodes (MONITOR, heartbeats excluded).',
    );
    out.push(
      table(
        ['phase', 'window s', 'raw cmds', 'background', 'cmds/join', 'round trips/join', 'in Lua/join', 'round trips node-0/node-1', 'join ack p50/p99 ms'],
        results.joins.map((j) => [
          j.label,
          j.windowS.toFixed(2),
          j.raw,
          `${j.background.toFixed(1)} (idle ${j.idleS.toFixed(1)} s: ${j.idleRaw})`,
          j.perJoin.toFixed(2),
          j.roundTrips.toFixed(2),
          j.inScripts.toFixed(2),
          `${(j.byNode['node-0'] ?? 0).toFixed(2)}/${(j.byNode['node-1'] ?? 0).toFixed(2)}`,
          `${j.joinMs.p50}/${j.joinMs.p99}`,
        ]),
      ),
    );
    const [f, s] = results.joins;
    out.push(`    first joins: the room's media was placed on the joining node for ${f.mediaLocal}/${f.n} rooms, on the other node (media open forwarded over Redis pub/sub) for ${f.n - f.mediaLocal}.`);
    out.push('');
    out.push('    Breakdown per join (commands with >= 0.05/join): total executed (commandstats, background removed) / of which top-level round trips (MONITOR)');
    const names = [...new Set([...f.breakdown, ...s.breakdown].map(([k]) => k))];
    const get = (j, k) => j.breakdown.find(([n]) => n === k) ?? [k, 0, 0];
    names.sort((a, b) => get(f, b)[1] + get(s, b)[1] - (get(f, a)[1] + get(s, a)[1]));
    out.push(
      table(
        ['command', 'first join: total', 'top-level', 'existing room: total', 'top-level'],
        names.map((k) => [k.toUpperCase(), get(f, k)[1].toFixed(2), get(f, k)[2].toFixed(2), get(s, k)[1].toFixed(2), get(s, k)[2].toFixed(2)]),
      ),
    );
    out.push(`    Join ack latencies were taken with MONITOR on (Redis slower); they are not a join benchmark.`);
  }
  out.push('');
  out.push(
    `Redis is shared server-wide: nothing else may use it during the run. Other clients connected: ${m.other_clients_at_start ?? '?'} at start, ${m.other_clients_at_end ?? '?'} at end; ` +
      `commands from foreign connections seen by MONITOR in the join windows: ${results.joins ? results.joins.reduce((s, j) => s + j.foreign, 0) : '?'}. Own probes (INFO, CLIENT, MONITOR) are left out of the sums.`,
  );
  out.push(`Cleanup: ${cleanupReport.join('; ')}`);
  out.push(`Wall time ${m.wall_s ?? '?'} s.`);
  out.push(results.failures.length ? `FAILED:\n${results.failures.map((x) => `  - ${x}`).join('\n')}` : 'OK: no lost messages, no signaling errors, clean counts');
  console.log(out.join('\n'));
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
  if (results.failures.length) exitCode = 1;
  process.exit(exitCode);
}
