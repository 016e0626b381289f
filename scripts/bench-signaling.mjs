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
 * Load comes from generator processes (scripts/bench-signaling-gen.mjs, forked by
 * scripts/signaling/generators.mjs), each with its own source address 127.0.0.<2+g> when binding to it works. Tokens are RS256 minted
 * in the generators with a key this script generates (the server gets it as
 * JWT_PRIVATE_KEY_FILE). Everything goes to 127.0.0.0/8. Needs a build (npm run build).
 *
 *   node scripts/bench-signaling.mjs [--connections 10000] [--relay-seconds 10] [--warmup 2]
 *        [--relay-pairs 100] [--relay-rates 1000,5000] [--repeats 3] [--join-rate 500]
 *        [--join-seconds 10] [--ramp-concurrency 200] [--generators auto] [--sdp-bytes 3000]
 *        [--phases connections,relay,joins] [--no-loaded-relay] [--postgres] [--out FILE]
 *        (--help describes them)
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
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './lib/net.mjs';
import { OUT_OPTION, integerIn, parseOptions } from './lib/options.mjs';
import { createDatabase } from './lib/postgres.mjs';
import { BenchRun } from './lib/runner.mjs';
import { LIMITS_OUT_OF_THE_WAY, assertBuilt, minimalEnv, startBaseline, startSwitchboard, switchboardEnv } from './lib/servers.mjs';
import { addCounts, latencySummary, mb, r1, r2, sumOf } from './lib/stats.mjs';
import { ROOT, cpuSeconds, machineMeta, memTotalGb, statusKb } from './lib/system.mjs';
import { createSigningKey } from './lib/tokens.mjs';
import { Generators, localAddressWorks } from './signaling/generators.mjs';
import { metrics } from './signaling/metrics.mjs';
import { cpuCores, relayRun, summariseRelay } from './signaling/relay.mjs';
import { report } from './signaling/report.mjs';

/** @typedef {import('./lib/processes.mjs').Proc} Proc */
/** @typedef {import('./signaling/generators.mjs').JoinRateResult} GenJoinRate */
/** @typedef {import('./signaling/report.mjs').SignalingResults} SignalingResults */
/** @typedef {import('./signaling/report.mjs').ConnectionsResult} ConnectionsResult */
/** @typedef {import('./signaling/report.mjs').RelayResult} RelayResult */
/** @typedef {import('./signaling/report.mjs').JoinRow} JoinRow */
/** @typedef {import('./signaling/report.mjs').ServerStop} ServerStop */
/** A server under test: Switchboard or the bare Socket.IO relay. */
/** @typedef {{ proc: Proc, port: number, url: string }} Target */

const BARE = path.join(ROOT, 'scripts', 'bench-signaling-bare.mjs');
const require = createRequire(path.join(ROOT, 'package.json'));

const READY_POLL_MS = 20;
const READY_TIMEOUT_MS = 90_000;
const IDLE_MS = 2_000;
const SERVER_KILL_AFTER_MS = 30_000;
const SOCKETS_PER_GENERATOR = 15_000; // fd hard limit is 20,000 per process
const PHASES = ['connections', 'relay', 'joins'];

// ---------------------------------------------------------------- options

const { values: o, fail } = parseOptions('node scripts/bench-signaling.mjs', {
  connections: { type: 'integer', default: 10_000, min: 2, max: 60_000, help: '(a) connections opened and joined, two per room' },
  'relay-seconds': { type: 'integer', default: 10, min: 1, max: 300, arg: 'S', help: '(b) seconds measured per relay run' },
  warmup: { type: 'integer', default: 2, min: 0, max: 60, arg: 'S', help: '(b) seconds of relay before each measurement' },
  'relay-pairs': { type: 'integer', default: 100, min: 1, max: 2_000, help: '(b) two-party rooms that relay' },
  'relay-rates': { type: 'integers', default: [1000, 5000], min: 1, max: 100_000, help: '(b) total offers per second, a run each' },
  repeats: { type: 'integer', default: 3, min: 1, max: 10, help: '(b) runs per rate and target, alternating; medians reported' },
  'join-rate': { type: 'integer', default: 500, min: 1, max: 10_000, help: '(c) new connections (connect + join) per second' },
  'join-seconds': { type: 'integer', default: 10, min: 1, max: 120, arg: 'S', help: '(c) seconds of joins' },
  'ramp-concurrency': { type: 'integer', default: 200, min: 1, max: 5_000, help: '(a) connect + join attempts in flight' },
  generators: { type: 'string', default: 'auto', arg: 'N|auto', help: 'load generator processes, 1-16; auto: enough for the sockets' },
  'sdp-bytes': { type: 'integer', default: 3000, min: 100, max: 60_000, help: 'size of the relayed offer' },
  phases: { type: 'string', default: PHASES.join(','), arg: 'LIST', help: 'the phases to run' },
  'no-loaded-relay': { type: 'boolean', help: 'skip the relay runs with the connections of (a) open' },
  postgres: { type: 'boolean', help: 'run the servers on fresh PostgreSQL databases instead of the embedded one' },
  out: OUT_OPTION,
});
const opts = {
  connections: o.connections,
  relaySeconds: o['relay-seconds'],
  warmup: o.warmup,
  relayPairs: o['relay-pairs'],
  relayRates: o['relay-rates'],
  repeats: o.repeats,
  joinRate: o['join-rate'],
  joinSeconds: o['join-seconds'],
  rampConcurrency: o['ramp-concurrency'],
  generators: o.generators === 'auto' ? null : integerIn('generators', o.generators, 1, 16, fail),
  sdpBytes: o['sdp-bytes'],
  phases: new Set(o.phases.split(',').map((p) => p.trim())),
  loadedRelay: !o['no-loaded-relay'],
  postgres: o.postgres,
  out: o.out ? path.resolve(o.out) : undefined,
};
for (const p of opts.phases) if (!PHASES.includes(p)) fail(`--phases: no phase ${JSON.stringify(p)} (there are ${PHASES.join(', ')})`);
const joinTotal = opts.joinRate * opts.joinSeconds;
const maxSockets = Math.max(opts.connections, 2 * opts.relayPairs * 2, joinTotal);
const G = opts.generators ?? Math.max(2, Math.ceil(maxSockets / SOCKETS_PER_GENERATOR));
if (Math.ceil(maxSockets / G) > SOCKETS_PER_GENERATOR)
  fail(`--generators ${G} is too few for ${maxSockets} sockets (at most ${SOCKETS_PER_GENERATOR} per generator)`);
const dbLabel = opts.postgres ? 'postgres' : 'pglite';

const run = new BenchRun({ doing: 'stopping servers and generators, cleaning up...' });
/** @param {string} msg */
const log = (msg) => console.error(msg);

/** @type {Generators} */
let gens;

// ---------------------------------------------------------------- servers

let keyFile = '';

/** @param {string} label */
async function startSwitchboardServer(label) {
  const port = await freePort();
  const dataDir = run.tempDir('sb-bench-sig-');
  const databaseUrl = opts.postgres ? (await createDatabase(run, 'bench_sig')).url : undefined;
  /** @type {Record<string, string>} */
  const extra = {
    RECORDINGS_DIR: path.join(dataDir, 'recordings'),
    JWT_PRIVATE_KEY_FILE: keyFile,
    MAX_CONNECTIONS: '25000',
    ...LIMITS_OUT_OF_THE_WAY,
    RECONNECT_GRACE_SECONDS: '0',
  };
  // Diagnostics only (e.g. --cpu-prof --cpu-prof-dir=/tmp/x): passed to the server as NODE_OPTIONS.
  if (process.env.BENCH_SERVER_NODE_OPTIONS) extra.NODE_OPTIONS = process.env.BENCH_SERVER_NODE_OPTIONS;
  const name = `switchboard[${dbLabel},${label}]`;
  const env = switchboardEnv({ port, dataDir, databaseUrl, extra });
  const srv = await startSwitchboard(run, { name, port, env, pollMs: READY_POLL_MS, timeoutMs: READY_TIMEOUT_MS, stop: { killAfterMs: SERVER_KILL_AFTER_MS } });
  await sleep(IDLE_MS);
  if (srv.proc.exitInfo) throw new Error(`${name} exited while idle:\n${srv.proc.tail()}`);
  const rssIdleKb = /** @type {number} */ (statusKb(srv.proc.pid, 'VmRSS'));
  log(`  ${name}: ready in ${Math.round(srv.readyMs)} ms on port ${port}; idle RSS ${mb(rssIdleKb)} MB`);
  return { ...srv, rssIdleKb };
}

async function startBare() {
  const bare = await startBaseline(run, {
    name: 'bare-socket.io',
    script: BARE,
    args: ['0'],
    env: { ...minimalEnv(), HOST: '127.0.0.1' },
    stop: { killAfterMs: SERVER_KILL_AFTER_MS },
  });
  await sleep(500);
  log(`  bare-socket.io: listening on port ${bare.port}; idle RSS ${mb(statusKb(bare.proc.pid, 'VmRSS'))} MB`);
  return bare;
}

/**
 * @param {Target} srv
 * @returns {Promise<ServerStop>}
 */
async function stopServer(srv) {
  const st = await run.stop(srv.proc);
  log(`  ${srv.proc.name}: stopped in ${Math.round(st.ms)} ms (exit ${st.code ?? st.signal}${st.forced ? ', forced' : ''})`);
  return { stop_ms: Math.round(st.ms), exit_code: st.code, signal: st.signal, forced_kill: st.forced };
}

// ---------------------------------------------------------------- phases

/** @type {SignalingResults} */
const results = {
  meta: {},
  options: { ...opts, phases: [...opts.phases], out: opts.out ?? null },
  connections: null,
  relay: null,
  joins: null,
  failures: [],
  ok: false,
};

async function phaseConnections() {
  const N = opts.connections;
  log(`\n== (a) ${N} connections [${dbLabel}]`);
  const mintMs = await gens.mint('a-', N);
  log(`  minted ${N} tokens in ${Math.round(mintMs)} ms (in the generators)`);
  const srv = await startSwitchboardServer('connections');
  /** @type {ConnectionsResult} */
  const out = { db: dbLabel, n: N, generators: G, ramp_concurrency: opts.rampConcurrency, ready_ms: Math.round(srv.readyMs) };
  results.connections = out;
  try {
    out.rss_before_mb = mb(srv.rssIdleKb);
    out.metrics_before = await metrics(srv.port);
    const cpu0 = /** @type {number} */ (cpuSeconds(srv.proc.pid));
    const c = await gens.connectSet({
      set: 'a',
      url: srv.url,
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
    const cpu1 = /** @type {number} */ (cpuSeconds(srv.proc.pid));
    out.ramp_server_cpu_cores = r2((cpu1 - cpu0) / (c.ms / 1000));
    out.ramp_connect_to_ack_ms = c.connect_to_ack_ms;
    out.ramp_join_emit_to_ack_ms = c.join_emit_to_ack_ms;
    out.local_addresses = c.local_addresses;
    log(
      `  joined ${c.joined}/${N} in ${out.ramp_s} s (${out.ramp_joins_per_s}/s), failed ${c.failed} ${JSON.stringify(c.errors)}; local addresses ${c.local_addresses.join(', ')}`,
    );
    if (c.failed) results.failures.push(`connections: ${c.failed} of ${N} failed to join ${JSON.stringify(c.errors)}`);

    // Settle: gauges caught up and the write-behind queue drained (no CPU use for a while).
    const settleStart = performance.now();
    let lastCpu = /** @type {number} */ (cpuSeconds(srv.proc.pid));
    for (;;) {
      await sleep(1_000);
      const m = await metrics(srv.port);
      const cpu = /** @type {number} */ (cpuSeconds(srv.proc.pid));
      const busy = cpu - lastCpu;
      lastCpu = cpu;
      if ((m.participants === c.joined && busy < 0.1) || performance.now() - settleStart > 60_000) break;
    }
    await sleep(2_000);
    const rssAfterKb = /** @type {number} */ (statusKb(srv.proc.pid, 'VmRSS'));
    out.settle_s = r1((performance.now() - settleStart) / 1000);
    out.rss_after_mb = mb(rssAfterKb);
    out.rss_peak_mb = mb(statusKb(srv.proc.pid, 'VmHWM'));
    out.kb_per_connection = r2((rssAfterKb - srv.rssIdleKb) / Math.max(1, c.joined));
    out.metrics_after = await metrics(srv.port);
    const mb0 = out.metrics_before;
    const mb1 = out.metrics_after;
    out.heap_used_delta_mb = mb1.heap_used_mb != null && mb0.heap_used_mb != null ? r1(mb1.heap_used_mb - mb0.heap_used_mb) : null;
    out.heap_kb_per_connection = out.heap_used_delta_mb != null ? r2((out.heap_used_delta_mb * 1024) / Math.max(1, c.joined)) : null;
    out.gauges_match = mb1.socket_connections === c.joined && mb1.participants === c.joined && mb1.rooms === Math.ceil(c.joined / 2);
    out.generators = await gens.all('stats', {}, 10_000);
    log(
      `  RSS ${out.rss_before_mb} -> ${out.rss_after_mb} MB (peak ${out.rss_peak_mb}): ${out.kb_per_connection} KB/connection; ` +
        `heap used ${mb0.heap_used_mb} -> ${mb1.heap_used_mb} MB; gauges connections ${mb1.socket_connections} participants ${mb1.participants} rooms ${mb1.rooms}`,
    );
    if (!out.gauges_match)
      results.failures.push(`connections: gauges (${mb1.socket_connections}/${mb1.participants}/${mb1.rooms}) do not match ${c.joined} joined`);

    if (opts.loadedRelay && opts.phases.has('relay')) {
      // Extra: relay latency with N connections open (uses the first pairs of the same set).
      log(`  relay with ${c.joined} connections open (pairs of set a; one run per rate)`);
      out.loaded_relay = [];
      await gens.all('limitPairs', { set: 'a', pairs: Math.ceil(opts.relayPairs / G) });
      for (const rate of opts.relayRates) {
        out.loaded_relay.push(await relayRun(gens, { set: 'a', rate, label: `switchboard+${c.joined} open`, srvProc: srv.proc }, opts, results.failures));
      }
    }
  } finally {
    out.stop = await stopServer(srv);
    await gens.closeSet('a');
  }

  // Baseline: the same N connections (no token) joined to two-party rooms on the bare Socket.IO server.
  const bare = await startBare();
  try {
    await sleep(IDLE_MS);
    const before = /** @type {number} */ (statusKb(bare.proc.pid, 'VmRSS'));
    const c = await gens.connectSet({
      set: 'a-bare',
      url: bare.url,
      kind: 'bare',
      prefix: 'a-',
      total: N,
      roomPrefix: 'bench-',
      concurrency: opts.rampConcurrency,
      listenOffers: false,
      timeoutMs: 600_000,
    });
    await sleep(3_000);
    const after = /** @type {number} */ (statusKb(bare.proc.pid, 'VmRSS'));
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
    log(
      `  bare socket.io: joined ${c.joined}/${N} in ${out.bare.ramp_s} s (${out.bare.ramp_joins_per_s}/s); RSS ${out.bare.rss_before_mb} -> ${out.bare.rss_after_mb} MB: ${out.bare.kb_per_connection} KB/connection`,
    );
  } finally {
    await stopServer(bare);
    await gens.closeSet('a-bare');
  }
}

async function phaseRelay() {
  const P = opts.relayPairs;
  log(
    `\n== (b) relay latency: ${P} pairs, ${opts.relayRates.join(' and ')} msgs/s, ${opts.relaySeconds} s after ${opts.warmup} s warm-up, ${opts.repeats}x, SDP ${opts.sdpBytes} B [${dbLabel}]`,
  );
  await gens.mint('b-', 2 * P);
  const sb = await startSwitchboardServer('relay');
  const bare = await startBare();
  /** @type {RelayResult} */
  const out = {
    db: dbLabel,
    pairs: P,
    sdp_bytes: opts.sdpBytes,
    seconds: opts.relaySeconds,
    warmup_s: opts.warmup,
    repeats: opts.repeats,
    runs: [],
    summary: [],
  };
  results.relay = out;
  try {
    const targets = {
      switchboard: { set: 'b-sb', srv: sb, kind: /** @type {const} */ ('switchboard') },
      bare: { set: 'b-bare', srv: bare, kind: /** @type {const} */ ('bare') },
    };
    for (const [name, t] of Object.entries(targets)) {
      const c = await gens.connectSet({
        set: t.set,
        url: t.srv.url,
        kind: t.kind,
        prefix: 'b-',
        total: 2 * P,
        roomPrefix: 'bench-relay-',
        concurrency: 50,
        listenOffers: true,
        timeoutMs: 120_000,
      });
      log(`  ${name}: ${c.joined} joined, ${c.failed} failed ${JSON.stringify(c.errors)}`);
      if (c.failed) throw new Error(`relay: ${name}: ${c.failed} connections failed ${JSON.stringify(c.errors)}`);
    }
    for (const rate of opts.relayRates) {
      for (let rep = 0; rep < opts.repeats; rep++) {
        /** @type {('switchboard' | 'bare')[]} */
        const order = rep % 2 === 0 ? ['switchboard', 'bare'] : ['bare', 'switchboard'];
        for (const name of order) {
          const row = await relayRun(gens, { set: targets[name].set, rate, label: name, srvProc: targets[name].srv.proc }, opts, results.failures);
          out.runs.push({ target: name, rep: rep + 1, ...row });
        }
      }
      const s = summariseRelay(out, 'switchboard', rate);
      const b = summariseRelay(out, 'bare', rate);
      s.p99_ratio_vs_bare = b.p99 ? r2(/** @type {number} */ (s.p99) / b.p99) : null;
      s.p50_ratio_vs_bare = b.p50 ? r2(/** @type {number} */ (s.p50) / b.p50) : null;
      out.summary.push(s, b);
    }
    out.switchboard_metrics_after = await metrics(sb.port);
  } finally {
    out.stop_switchboard = await stopServer(sb);
    out.stop_bare = await stopServer(bare);
    await gens.closeSet('b-sb');
    await gens.closeSet('b-bare');
  }
}

/**
 * Open-loop joins at --join-rate for --join-seconds against `srv` (fresh connections); returns the row.
 * @param {Target} srv
 * @param {'switchboard' | 'bare'} kind
 * @param {string} label
 * @returns {Promise<JoinRow>}
 */
async function joinRun(srv, kind, label) {
  const ranges = gens.splitEven(joinTotal);
  const cpu0 = { server: cpuSeconds(srv.proc.pid), gens: gens.cpuSeconds() };
  const t0 = performance.now();
  /** @type {GenJoinRate[]} */
  const rs = await gens.each(
    (g) => {
      const range = /** @type {import('./signaling/generators.mjs').Range} */ (ranges[g]);
      return [
        'joinrate',
        {
          set: `c-${kind}`,
          url: srv.url,
          kind,
          prefix: 'c-',
          ...range,
          roomPrefix: 'bench-join-',
          rate: (opts.joinRate * range.count) / joinTotal,
          timeoutMs: 60_000,
        },
      ];
    },
    opts.joinSeconds * 1000 + 120_000,
  );
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuCores(cpu0, { server: cpuSeconds(srv.proc.pid), gens: gens.cpuSeconds() }, wall);
  const lastAck = Math.max(...rs.map((r) => r.lastAckMs ?? 0)) / 1000;
  // Joins acknowledged per 1 s bucket (shows whether the server kept up or fell behind).
  const buckets = new Array(Math.ceil(lastAck) + 1).fill(0);
  for (const r of rs) for (const a of r.ackAt) buckets[Math.floor(a / 1000)]++;
  const joined = sumOf(rs, (r) => r.joined);
  /** @type {JoinRow} */
  const out = {
    target: label,
    target_rate: opts.joinRate,
    seconds: opts.joinSeconds,
    total: joinTotal,
    server_cpu_cores: cpu.server,
    generators_cpu_cores: cpu.gens,
    started: sumOf(rs, (r) => r.started),
    joined,
    failed: sumOf(rs, (r) => r.failed),
    errors: addCounts(rs.map((r) => r.errors)),
    start_span_s: r2(Math.max(...rs.map((r) => r.startSpanMs)) / 1000),
    last_ack_s: r2(lastAck),
    achieved_joins_per_s: r1(joined / lastAck),
    max_start_lag_ms: r1(Math.max(...rs.map((r) => r.maxStartLagMs))),
    connect_start_to_join_ack_ms: latencySummary(rs.flatMap((r) => r.totalMs)),
    connect_start_to_connected_ms: latencySummary(rs.flatMap((r) => r.connectMs)),
    join_emit_to_ack_ms: latencySummary(rs.flatMap((r) => r.joinMs)),
    acks_per_second: buckets,
    local_addresses: [...new Set(rs.flatMap((r) => r.localAddresses))],
  };
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
  log(
    `\n== (c) joins: ${opts.joinRate}/s for ${opts.joinSeconds} s (${joinTotal} new connections) on a fresh server, then on a bare Socket.IO server [${dbLabel}]`,
  );
  await gens.mint('c-', joinTotal);
  const srv = await startSwitchboardServer('joins');
  /** @type {NonNullable<SignalingResults['joins']>} */
  const joins = { db: dbLabel, rows: [] };
  results.joins = joins;
  try {
    const row = await joinRun(srv, 'switchboard', 'switchboard');
    joins.rows.push(row);
    await sleep(1_000);
    row.metrics_after = await metrics(srv.port);
    row.rss_after_mb = mb(statusKb(srv.proc.pid, 'VmRSS'));
  } finally {
    joins.stop = await stopServer(srv);
    await gens.closeSet('c-switchboard');
  }
  // Baseline: the same open-loop connect + join against the bare Socket.IO server (no token, no database).
  const bare = await startBare();
  try {
    joins.rows.push(await joinRun(bare, 'bare', 'bare'));
  } finally {
    await stopServer(bare);
    await gens.closeSet('c-bare');
  }
}

function budgetMs() {
  const relayRun = (opts.warmup + opts.relaySeconds + 5) * 1000;
  const relay = opts.relayRates.length * (2 * opts.repeats + 1) * relayRun;
  return 600_000 + relay + opts.connections * 30 + opts.joinSeconds * 1000 * 3;
}

// ---------------------------------------------------------------- main

async function main() {
  assertBuilt();
  const started = performance.now();
  results.meta = {
    ...machineMeta(),
    mem_total_gb: memTotalGb(),
    socket_io: require('socket.io/package.json').version,
    socket_io_client: require('socket.io-client/package.json').version,
    n: opts.connections,
    generators: G,
  };
  run.watchdog(budgetMs());

  log(`bench: Node ${process.version}, ${results.meta.cpu_model}, ${os.cpus().length} cores, N=${opts.connections}, ${G} generators, db ${dbLabel}`);
  const signing = createSigningKey(run.tempDir('sb-bench-sig-key-'));
  keyFile = signing.keyFile;

  const useLocal = await localAddressWorks();
  results.meta.local_addresses = useLocal;
  log(`  source addresses: ${useLocal ? `127.0.0.2..127.0.0.${1 + G} (one per generator)` : 'binding 127.0.0.2 failed; all generators use the default'}`);
  gens = new Generators(run, G, budgetMs() + 60_000);
  await gens.init(signing.pem, signing.kid, useLocal);

  if (opts.phases.has('connections')) await phaseConnections();
  if (opts.phases.has('relay')) await phaseRelay();
  if (opts.phases.has('joins')) await phaseJoins();

  results.meta.wall_s = Math.round((performance.now() - started) / 100) / 10;
  results.ok = results.failures.length === 0;
}

await run.finish({ main, results, report: () => report(results, opts, { generators: G, db: dbLabel }), out: opts.out });
