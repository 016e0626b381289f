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
 *   (--help describes them)
 *
 * Environment: BENCH_REDIS_URL (default redis://127.0.0.1:6379), TEST_DATABASE_URL (admin
 * connection, default postgresql://postgres@127.0.0.1:5432/postgres). Needs npm run build.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAndJoin, makePair, pingPong, sockets, useTokens } from './cluster/clients.mjs';
import { addTo, commandStats, deleteKeys, diff, monitorDiff, startMonitor, sum } from './cluster/redis.mjs';
import { BLOCK, report } from './cluster/report.mjs';
import { freeDualPort, freePort } from './lib/net.mjs';
import { parseOptions } from './lib/options.mjs';
import { createDatabase } from './lib/postgres.mjs';
import { BenchRun } from './lib/runner.mjs';
import { LIMITS_OUT_OF_THE_WAY, SERVER_MAIN, assertBuilt, switchboardEnv, waitForReady } from './lib/servers.mjs';
import { latencySummary } from './lib/stats.mjs';
import { ROOT, isAlive, machineMeta, memTotalGb } from './lib/system.mjs';
import { createSigningKey } from './lib/tokens.mjs';

/** @typedef {import('./lib/processes.mjs').Proc} Proc */
/** @typedef {import('./cluster/redis.mjs').Counts} Counts */
/** @typedef {import('./cluster/report.mjs').ClusterResults} ClusterResults */
/** @typedef {import('./cluster/report.mjs').RelayPhase} RelayPhase */
/** @typedef {import('./cluster/report.mjs').JoinCounts} JoinCounts */

const require = createRequire(path.join(ROOT, 'package.json'));
// require, not import: the CommonJS build, as the servers load it.
const { Redis } = require('ioredis');

/** @typedef {import('./cluster/clients.mjs').Pair} Pair */
/** @typedef {InstanceType<typeof Redis>} RedisClient */

const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const WATCHDOG_MS = 170_000;
const RELAY_BUDGET_MS = 60_000;
const SETTLE_MS = 1_000;
const MIN_IDLE_MS = 4_000;

// ---------------------------------------------------------------- options

const { values: opts } = parseOptions('node scripts/bench-cluster.mjs', {
  pings: { type: 'integer', default: 2000, min: 1, max: 100_000, help: 'measured ping-pongs per relay case' },
  warmup: { type: 'integer', default: 200, min: 0, max: 10_000, help: 'ping-pongs per case before them' },
  joins: { type: 'integer', default: 50, min: 1, max: 500, help: 'joins of each kind (first join, existing room)' },
  'sdp-bytes': { type: 'integer', default: 3000, min: 64, max: 60_000, help: 'size of the relayed offer' },
});
const sdpBytes = opts['sdp-bytes'];

// ---------------------------------------------------------------- cleanup

const run = new BenchRun({ doing: 'closing clients, stopping servers, deleting keys, dropping the database...' });
/** @param {string} msg */
const log = (msg) => console.error(msg);
/** @typedef {{ name: string, proc: Proc, port: number, url: string, cluster: boolean }} Server */
/** @type {Server[]} */
const servers = [];
/** MONITOR while the join phases run. */
/** @type {{ stop: () => void } | null} */
let monitor = null;
/** What cleanup did, for the report. */
/** @type {string[]} */
const cleanupReport = [];

run.beforeStopping(() => {
  for (const s of sockets) s.disconnect();
  sockets.clear();
  monitor?.stop();
});
// One at a time: a stopping cluster node hands its rooms' media to a live peer; two
// stopping together would forward to each other and wait for RPC timeouts.
run.beforeStopping(async () => {
  const stopped = [];
  for (const srv of servers.splice(0)) {
    const st = await run.stop(srv.proc);
    stopped.push({ name: srv.name, exit: st.code ?? st.signal, alive: [...(isAlive(srv.proc.pid) ? [srv.proc.pid] : []), ...srv.proc.leftovers()] });
  }
  const left = stopped.flatMap((s) => s.alive);
  cleanupReport.push(
    `servers stopped: ${stopped.map((s) => `${s.name} (exit ${s.exit})`).join(', ') || 'none'}; processes left: ${left.length ? left.join(', ') : 'none'}`,
  );
});

// ---------------------------------------------------------------- servers and clients

/**
 * A cluster node (REDIS_URL, its key prefix, NODE_ID, NODE_ADDRESS) or, with cluster false,
 * a single node without Redis; media ports from mediaBase (190 of them).
 * @param {string} name
 * @param {{ pem: string, databaseUrl: string, cluster: boolean, prefix: string, mediaBase: number, avoid: Set<number> }} o
 */
async function startServer(name, { pem, databaseUrl, cluster, prefix, mediaBase, avoid }) {
  const port = await freePort();
  const webrtc = await freeDualPort(20000, 30000, avoid);
  avoid.add(webrtc);
  const dataDir = run.tempDir(`sb-bench-cluster-${name}-`);
  const env = switchboardEnv({
    port,
    dataDir,
    databaseUrl,
    extra: {
      RECORDINGS_DIR: path.join(dataDir, 'recordings'),
      JWT_PRIVATE_KEY: pem,
      MEDIASOUP_LISTEN_IP: '127.0.0.1',
      MEDIASOUP_WEBRTC_PORT: String(webrtc),
      MEDIASOUP_RTC_MIN_PORT: String(mediaBase),
      MEDIASOUP_RTC_MAX_PORT: String(mediaBase + 99),
      RECORDING_MIN_PORT: String(mediaBase + 100),
      RECORDING_MAX_PORT: String(mediaBase + 189),
      ...LIMITS_OUT_OF_THE_WAY,
      ...(cluster ? { REDIS_URL, REDIS_KEY_PREFIX: prefix, NODE_ID: name, NODE_ADDRESS: `127.0.0.1:${port}` } : { NODE_ID: name }),
    },
  });
  const t0 = performance.now();
  // SIGINT: shut down without the SIGTERM drain wait.
  const proc = run.spawnNode(name, SERVER_MAIN, { env, stop: { signal: 'SIGINT', killAfterMs: 10_000 } });
  /** @type {Server} */
  const srv = { name, proc, port, url: `http://127.0.0.1:${port}`, cluster };
  servers.push(srv); // in start order, which cleanup stops them in
  const { ms } = await waitForReady(proc, port, t0, { pollMs: 50, timeoutMs: 60_000 });
  proc.mediasoupWorkers();
  log(
    `  ${name}: ready in ${Math.round(ms)} ms on port ${port} (${cluster ? 'cluster, Redis' : 'single node, no Redis'}; media ${webrtc}, ${mediaBase}-${mediaBase + 189})`,
  );
  return srv;
}

/**
 * The relay round trips of every pair, interleaved in blocks, with Redis commands per message.
 * @param {Pair[]} pairs
 * @param {RedisClient} redis
 * @returns {Promise<RelayPhase>}
 */
async function relayPhase(pairs, redis) {
  // Background rate (heartbeats) over an idle window, for the per-message figures.
  const idle0 = await commandStats(redis);
  const ti = performance.now();
  await sleep(MIN_IDLE_MS);
  const idle = diff(idle0, await commandStats(redis));
  const idleS = (performance.now() - ti) / 1000;
  log(`  idle: ${sum(idle)} Redis commands in ${idleS.toFixed(1)} s (${(sum(idle) / idleS).toFixed(1)}/s: heartbeats)`);

  /**
   * Ping-pongs every pair up to perCase; true if stopped by the time bound.
   * @param {number} perCase
   * @param {boolean} measure
   */
  const rounds = async (perCase, measure) => {
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
          const rtt = await pingPong(pair, sdpBytes);
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
  await rounds(opts.warmup, false);
  const lostWarm = pairs.reduce((s, p) => s + p.lost, 0);
  const t0 = performance.now();
  const truncated = await rounds(opts.pings, true);
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
        stats: latencySummary(p.rtts),
        lost: p.lostMeasured,
        errors: p.errors,
        strays: p.strays,
        perMsg: p.cluster && msgs ? sum(net) / msgs : null,
        perMsgBreakdown:
          p.cluster && msgs
            ? Object.entries(net)
                .map(([k, v]) => /** @type {[string, number]} */ ([k, v / msgs]))
                .filter(([, v]) => v >= 0.01)
                .sort((x, y) => y[1] - x[1])
            : null,
      };
    }),
  };
}

// ---------------------------------------------------------------- joins (Redis commands)

/**
 * Redis commands per join over `plan` (one join after the other), background removed.
 * @param {string} label
 * @param {RedisClient} redis
 * @param {Awaited<ReturnType<typeof startMonitor>>} mon
 * @param {{ srv: Server, user: string, room: string }[]} plan
 * @returns {Promise<JoinCounts>}
 */
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
  /** @type {Counts} */
  const net = {};
  for (const k of new Set([...Object.keys(phase), ...Object.keys(bg)])) net[k] = (phase[k] ?? 0) - (bg[k] ?? 0);
  const total = sum(net) / N;
  const top = sum(pm.top) / N;
  const breakdown = Object.keys(net)
    .map((k) => /** @type {[string, number, number]} */ ([k, (net[k] ?? 0) / N, (pm.top[k] ?? 0) / N]))
    .filter(([, v, t]) => Math.abs(v) >= 0.05 || t > 0)
    .sort((x, y) => y[1] - x[1]);
  log(
    `  ${label}: ${N} joins in ${(T / 1000).toFixed(2)} s (incl. ${SETTLE_MS} ms settle): ${sum(phase)} commands; idle ${(idleMs / 1000).toFixed(1)} s: ${sum(idle)} (heartbeat scripts ${pm.heartbeats} vs ${im.heartbeats} idle) -> ${total.toFixed(2)}/join, ${top.toFixed(2)} round trips/join`,
  );
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
    joinMs: latencySummary(joined.map((j) => j.joinMs)),
    joined,
  };
}

// ---------------------------------------------------------------- main

/** @type {ClusterResults} */
const results = { failures: [] };

async function main() {
  assertBuilt();
  const startedAt = performance.now();
  /** @type {Record<string, any>} */
  const meta = { ...machineMeta(), mem_total_gb: memTotalGb() };
  results.meta = meta;
  run.watchdog(WATCHDOG_MS);

  const redis = new Redis(REDIS_URL, { connectionName: 'bench-cluster:probe', maxRetriesPerRequest: 2 });
  run.afterStopping(() => redis.disconnect());
  meta.redis_version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
  const others = String(await redis.client('LIST'))
    .split('\n')
    .filter((l) => l && !/ name=bench-cluster:/.test(l));
  meta.other_clients_at_start = others.length;
  log(`bench: Node ${process.version}, ${meta.cpu_model}, ${meta.cpu_cores} cores; Redis ${meta.redis_version} (${others.length} other client(s) connected)`);

  const prefix = `bench-cluster-${randomBytes(4).toString('hex')}:`;
  // Cleanup runs these last first: the Redis keys go, then the database, then its check.
  /** @type {import('./lib/postgres.mjs').Database | null} */
  let db = null;
  run.afterStopping(async () => {
    if (!db) return;
    try {
      cleanupReport.push(`database ${db.name}: ${(await db.exists()) ? 'STILL PRESENT' : 'dropped'}`);
    } catch (err) {
      cleanupReport.push(`! checking database ${db.name} failed: ${err instanceof Error ? err.message : err}`);
    }
  });
  db = await createDatabase(run, 'bench_cluster');
  run.afterStopping(async () => {
    try {
      const { deleted, remaining } = await deleteKeys(redis, prefix);
      cleanupReport.push(`Redis keys '${prefix}*': ${deleted} deleted, ${remaining} left`);
    } catch (err) {
      cleanupReport.push(`! deleting the Redis keys '${prefix}*' failed: ${err instanceof Error ? err.message : err}`);
    }
  });
  log(`  database ${db.name}, Redis key prefix ${prefix}`);

  const signing = createSigningKey(run.tempDir('sb-bench-cluster-key-'));
  useTokens(signing.token);
  /** @type {Set<number>} */
  const avoid = new Set();
  const mediaBase = 30000 + 200 * Math.floor(Math.random() * 45); // 3 blocks of 200 ports, 30000-39599
  const common = { pem: signing.pem, databaseUrl: db.url, prefix, avoid };
  // The first node migrates the fresh database; the others start together after it.
  const node0 = await startServer('node-0', { ...common, cluster: true, mediaBase });
  const [node1, base] = await Promise.all([
    startServer('node-1', { ...common, cluster: true, mediaBase: mediaBase + 200 }),
    startServer('single', { ...common, cluster: false, mediaBase: mediaBase + 400 }),
  ]);

  // Which Redis connections are whose (for MONITOR).
  const ownAddrs = new Set();
  const nodeAddrs = new Map();
  for (const line of String(await redis.client('LIST')).split('\n')) {
    const addr = / addr=(\S+)/.exec(line)?.[1];
    const name = / name=(\S*)/.exec(line)?.[1] ?? '';
    if (!addr) continue;
    if (name.startsWith('bench-cluster:')) ownAddrs.add(addr);
    else if (name.startsWith('switchboard:node-')) nodeAddrs.set(addr, name.split(':')[1]);
  }
  meta.node_connections = nodeAddrs.size;

  // ---- (1) relay
  log(`\n== relay round trip: ${opts.warmup} warm-up + ${opts.pings} sequential ping-pongs per case, SDP ${sdpBytes} B, interleaved in blocks of ${BLOCK}`);
  const pairs = [
    await makePair('(a) same node, cluster (node-0 <-> node-0)', 'r-same', node0, node0, true),
    await makePair('(b) cross node, cluster (node-0 <-> node-1)', 'r-cross', node0, node1, true),
    await makePair('(c) same node, no Redis (single)', 'r-base', base, base, false),
  ];
  const relay = await relayPhase(pairs, redis);
  results.relay = relay;
  if (relay.lostWarm) results.failures.push(`relay: ${relay.lostWarm} ping-pongs lost during the warm-up`);
  for (const r of relay.rows) {
    log(
      `  ${r.label}: n ${r.stats.n} p50 ${r.stats.p50} p99 ${r.stats.p99} max ${r.stats.max} ms; lost ${r.lost}, errors ${r.errors}${r.perMsg != null ? `; ${r.perMsg.toFixed(2)} Redis commands/message` : ''}`,
    );
    if (r.lost || r.errors) results.failures.push(`relay ${r.label}: ${r.lost} lost, ${r.errors} signaling errors`);
    if (r.stats.n < opts.pings) results.failures.push(`relay ${r.label}: only ${r.stats.n} of ${opts.pings} ping-pongs measured (60 s bound)`);
  }

  // ---- (2) Redis commands per join
  log(`\n== Redis commands per join: ${opts.joins} first joins (fresh rooms), then ${opts.joins} joins to those rooms; MONITOR on`);
  const mon = await startMonitor(redis, ownAddrs, nodeAddrs);
  monitor = mon;
  await sleep(200);
  const tag = randomBytes(3).toString('hex');
  // Warm-up, outside the windows: each node opens a room and joins one through the other node
  // (ioredis sends a Lua script's first call on a connection as EVAL, later ones as EVALSHA).
  for (const [i, [x, y]] of [
    [node0, node1],
    [node1, node0],
  ].entries()) {
    await connectAndJoin(x, `jw-${tag}-${i}-a`, `rw-${tag}-${i}`);
    await connectAndJoin(y, `jw-${tag}-${i}-b`, `rw-${tag}-${i}`);
  }
  await sleep(SETTLE_MS);
  const first = await joinPhase(
    'first join (opens the room)',
    redis,
    mon,
    Array.from({ length: opts.joins }, (_, i) => ({ srv: i % 2 ? node1 : node0, user: `jf-${tag}-${i}`, room: `rj-${tag}-${i}` })),
  );
  const second = await joinPhase(
    'join to an existing room',
    redis,
    mon,
    Array.from({ length: opts.joins }, (_, i) => ({ srv: (i + 1) % 2 ? node1 : node0, user: `js-${tag}-${i}`, room: `rj-${tag}-${i}` })),
  );
  mon.stop();
  monitor = null;
  // Where the rooms' media went (read after the measurements).
  let local = 0;
  for (let i = 0; i < opts.joins; i++) {
    const rec = JSON.parse((await redis.get(`${prefix}room:rj-${tag}-${i}`)) ?? 'null');
    if (rec?.mediaNode === (i % 2 ? node1 : node0).name) local++;
  }
  first.mediaLocal = local;
  results.joins = [first, second];
  for (const j of results.joins)
    if (j.foreign) results.failures.push(`${j.foreign} commands from other Redis clients during the ${j.label} windows: the counts are not clean`);
  const othersEnd = String(await redis.client('LIST'))
    .split('\n')
    .filter((l) => l && !/ name=(bench-cluster|switchboard):/.test(l));
  meta.other_clients_at_end = othersEnd.length;
  meta.wall_s = Math.round((performance.now() - startedAt) / 100) / 10;
}

await run.finish({ main, results, report: () => report(results, { pings: opts.pings, warmup: opts.warmup, joins: opts.joins, sdpBytes }, cleanupReport) });
