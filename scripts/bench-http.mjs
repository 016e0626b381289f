#!/usr/bin/env node
/**
 * HTTP benchmark for Switchboard (a benchmark, not a test): one run measures
 *
 *   1. start-up time: spawn `node dist/server/main.js` -> first 200 from GET /ready
 *      (polled every 20 ms), cold (fresh DATA_DIR: dev keys + migrations) and warm
 *      (second start on the same DATA_DIR / database);
 *   2. idle RSS of the server after ready + 2 s, and of its mediasoup-worker child(ren);
 *   3. throughput with autocannon (run in this process; servers run in their own):
 *      POST /auth/token, GET /calls/:id, and a bare-Fastify baseline
 *      (scripts/bench-bare-server.mjs: GET /bare, POST /bare).
 *
 * Everything goes to 127.0.0.1. Needs a build (npm run build -> dist/).
 *
 *   node scripts/bench-http.mjs [--duration 10] [--warmup 2] [--connections 10]
 *                               [--out result.json] [--postgres]
 *                               [--rate-limit-max 10000000]      (--help lists them)
 *
 * --rate-limit-max N is passed to the server as RATE_LIMIT_MAX (default 10000000, so its
 * per-client limiter stays in the request path without answering 429; 0 turns it off).
 *
 * --postgres also benchmarks the server on a fresh PostgreSQL database
 * (CREATE DATABASE bench_<random> through TEST_DATABASE_URL, default
 * postgresql://postgres@127.0.0.1:5432/postgres; dropped WITH (FORCE) at the end).
 *
 * Exit code 1 if any target saw errors, timeouts, non-2xx or unexpected statuses.
 * Child servers are stopped on every exit path (SIGTERM, SIGKILL after 5 s) and
 * temporary directories removed.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, request } from './lib/net.mjs';
import { OUT_OPTION, parseOptions } from './lib/options.mjs';
import { createDatabase } from './lib/postgres.mjs';
import { BenchRun } from './lib/runner.mjs';
import { BENCH_API_KEY, assertBuilt, minimalEnv, startBaseline, startSwitchboard, switchboardEnv } from './lib/servers.mjs';
import { mb, r1, table, verdict } from './lib/stats.mjs';
import { ROOT, childPids, comm, machineMeta, memTotalGb, statusKb } from './lib/system.mjs';

/** @typedef {import('./lib/processes.mjs').Proc} Proc */

/**
 * What autocannon reports, the fields used here (it ships no types).
 * @typedef {object} CannonResult
 * @property {{ average: number, stddev: number, total: number }} requests
 * @property {{ p50: number, p99: number, average: number, max: number }} latency
 * @property {number} errors
 * @property {number} timeouts
 * @property {number} non2xx
 * @property {number} duration
 * @property {Record<string, { count: number }>} [statusCodeStats]
 */
/** @typedef {Promise<CannonResult> & { stop(): void }} CannonRun */

const BARE = path.join(ROOT, 'scripts', 'bench-bare-server.mjs');
const require = createRequire(path.join(ROOT, 'package.json'));
/** @type {(options: object) => CannonRun} */
const autocannon = require('autocannon');

const API_KEY = BENCH_API_KEY;
const TOKEN_BODY = JSON.stringify({ user_id: 'bench-user', room: 'bench-room', role: 'participant' });
const READY_POLL_MS = 20;
const READY_TIMEOUT_MS = 60_000;
const IDLE_MS = 2_000;

// ---------------------------------------------------------------- options

const { values: o } = parseOptions('node scripts/bench-http.mjs', {
  duration: { type: 'integer', default: 10, min: 1, max: 600, arg: 'S', help: 'seconds measured per target' },
  warmup: { type: 'integer', default: 2, min: 1, max: 60, arg: 'S', help: 'seconds of load before each measurement, discarded' },
  connections: { type: 'integer', default: 10, min: 1, max: 1000, help: 'autocannon connections, pipelining 1' },
  out: OUT_OPTION,
  'rate-limit-max': { type: 'integer', default: 10_000_000, min: 0, max: 10_000_000, help: "the server's RATE_LIMIT_MAX; 0 turns its limiter off" },
  postgres: { type: 'boolean', help: 'also benchmark the server on a fresh PostgreSQL database' },
});
const opts = {
  duration: o.duration,
  warmup: o.warmup,
  connections: o.connections,
  pipelining: 1,
  out: o.out ? path.resolve(o.out) : undefined,
  rateLimitMax: String(o['rate-limit-max']),
  postgres: o.postgres,
};

// ---------------------------------------------------------------- helpers

const run = new BenchRun({ doing: 'stopping servers and cleaning up...' });
/** The autocannon run in progress, stopped first at cleanup. */
/** @type {CannonRun | null} */
let currentLoad = null;
run.beforeStopping(() => currentLoad?.stop());

/** @param {string} msg */
const log = (msg) => console.error(msg);
/** @param {number} ms */
const fmtMs = (ms) => `${Math.round(ms)} ms`;

/**
 * RSS of the process and of its mediasoup-worker children (reported separately).
 * @param {Proc} proc
 */
function memory(proc) {
  const kids = childPids(proc.pid).map((pid) => {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      /* gone */
    }
    return { pid, name: comm(pid), cmd, rssKb: statusKb(pid, 'VmRSS') };
  });
  const workers = kids.filter((k) => k.name?.startsWith('mediasoup-work') || /mediasoup-worker/.test(k.cmd));
  proc.remember(workers.map((w) => w.pid));
  const others = kids.filter((k) => !workers.includes(k));
  const serverKb = statusKb(proc.pid, 'VmRSS');
  const workersKb = workers.reduce((s, w) => s + (w.rssKb ?? 0), 0);
  return {
    server_rss_mb: mb(serverKb),
    server_peak_rss_mb: mb(statusKb(proc.pid, 'VmHWM')),
    mediasoup_workers: workers.length,
    mediasoup_workers_rss_mb: mb(workersKb),
    total_rss_mb: mb((serverKb ?? 0) + workersKb),
    other_children: others.map((k) => ({ pid: k.pid, name: k.name, rss_mb: mb(k.rssKb) })),
  };
}
/** @typedef {ReturnType<typeof memory>} Memory */

/**
 * @param {number} port
 * @param {string} dataDir
 * @param {string | undefined} databaseUrl
 */
const serverEnv = (port, dataDir, databaseUrl) =>
  // The server's per-client limiter (default 1200/min) would turn a load test into
  // a 429 test; a high ceiling keeps the limiter in the request path but never trips it.
  switchboardEnv({ port, dataDir, databaseUrl, extra: { RATE_LIMIT_MAX: opts.rateLimitMax } });

// ---------------------------------------------------------------- phases

/**
 * @typedef {object} StartupEntry
 * @property {string} db
 * @property {string} phase
 * @property {number} port
 * @property {number | null} [ready_ms]
 * @property {number} [ready_polls]
 * @property {string} [ready_signal]
 * @property {Memory} [idle]
 * @property {Memory} [after_load]
 * @property {number} [stop_ms]
 * @property {{ code: number | null, signal: string | null, forced_kill: boolean }} [exit]
 */

/**
 * @typedef {object} Target
 * @property {string} label
 * @property {string} db
 * @property {number} port
 * @property {string} method
 * @property {string} urlPath
 * @property {Record<string, string>} [headers]
 * @property {string} [body]
 * @property {number} expect the status every response must have
 * @property {(text: string) => boolean} [check] of the sanity request's body
 */

const results = {
  /** @type {Record<string, unknown> & Partial<ReturnType<typeof machineMeta>>} */
  meta: {},
  options: { ...opts, out: opts.out ?? null, ready_poll_ms: READY_POLL_MS, idle_ms: IDLE_MS },
  /** @type {StartupEntry[]} */
  startup: [],
  /** @type {ReturnType<typeof throughputRow>[]} */
  throughput: [],
  /** @type {string[]} */
  failures: [],
  ok: false,
};

/**
 * Start the real server, time it to /ready, idle 2 s, read memory. Returns the live proc.
 * @param {string} db
 * @param {string} phase
 * @param {string} dataDir
 * @param {string | undefined} databaseUrl
 */
async function startServer(db, phase, dataDir, databaseUrl) {
  const port = await freePort();
  const name = `switchboard[${db},${phase}]`;
  const { proc, readyMs, polls } = await startSwitchboard(run, {
    name,
    port,
    env: serverEnv(port, dataDir, databaseUrl),
    pollMs: READY_POLL_MS,
    timeoutMs: READY_TIMEOUT_MS,
  });
  log(`  ${name}: ready in ${fmtMs(readyMs)} (${polls} polls); idling ${IDLE_MS / 1000} s`);
  await sleep(IDLE_MS);
  if (proc.exitInfo) throw new Error(`${name} exited while idle:\n${proc.tail()}`);
  const mem = memory(proc);
  log(`  ${name}: idle RSS server ${mem.server_rss_mb} MB, ${mem.mediasoup_workers} mediasoup-worker(s) ${mem.mediasoup_workers_rss_mb} MB`);
  /** @type {StartupEntry} */
  const entry = { db, phase, port, ready_ms: r1(readyMs), ready_polls: polls, idle: mem };
  results.startup.push(entry);
  return { proc, port, entry };
}

/** @param {{ proc: Proc, entry: StartupEntry }} srv */
async function stopServer(srv) {
  const stop = await run.stop(srv.proc);
  srv.entry.stop_ms = Math.round(stop.ms);
  srv.entry.exit = { code: stop.code, signal: stop.signal, forced_kill: stop.forced };
  log(`  ${srv.proc.name}: stopped in ${fmtMs(stop.ms)} (exit ${stop.code ?? stop.signal})`);
  if (stop.forced || stop.code !== 0 || stop.orphans.length) {
    results.failures.push(`${srv.proc.name}: unclean stop (code ${stop.code}, signal ${stop.signal}, forced ${stop.forced}, orphans ${stop.orphans.length})`);
  }
}

/** @param {object} options autocannon's */
function runCannon(options) {
  const inst = autocannon(options);
  currentLoad = inst;
  return Promise.resolve(inst).finally(() => {
    if (currentLoad === inst) currentLoad = null;
  });
}

/**
 * @param {CannonResult} r
 * @param {number} expect
 */
function badCounts(r, expect) {
  const unexpected = Object.entries(r.statusCodeStats ?? {})
    .filter(([code]) => Number(code) !== expect)
    .reduce((s, [, v]) => s + v.count, 0);
  const problems = [];
  if (r.errors) problems.push(`${r.errors} errors`);
  if (r.timeouts) problems.push(`${r.timeouts} timeouts`);
  if (r.non2xx) problems.push(`${r.non2xx} non-2xx`);
  if (unexpected) problems.push(`${unexpected} responses other than ${expect} (${JSON.stringify(r.statusCodeStats)})`);
  if (!r.requests.total) problems.push('no completed requests');
  return problems;
}

/**
 * @param {Target} target
 * @param {CannonResult} warm
 * @param {CannonResult} r
 * @param {string[]} problems
 */
const throughputRow = ({ label, db, method, urlPath, expect }, warm, r, problems) => ({
  target: label,
  db,
  method,
  path: urlPath,
  expect_status: expect,
  rps_mean: Math.round(r.requests.average * 10) / 10,
  rps_stddev: Math.round(r.requests.stddev * 10) / 10,
  latency_p50_ms: r.latency.p50,
  latency_p99_ms: r.latency.p99,
  // autocannon's latency histogram has 1 ms resolution (sub-ms responses count as 0), so the
  // mean is also given by Little's law: closed loop, pipelining 1 -> connections / throughput.
  latency_mean_ms_autocannon: Math.round(r.latency.average * 100) / 100,
  latency_mean_ms_littles_law: r.requests.average ? Math.round(((opts.connections * 1000) / r.requests.average) * 1000) / 1000 : null,
  latency_max_ms: r.latency.max,
  total_requests: r.requests.total,
  non2xx: r.non2xx,
  errors: r.errors,
  timeouts: r.timeouts,
  status_codes: Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])),
  duration_s: r.duration,
  warmup: { total_requests: warm.requests.total, non2xx: warm.non2xx, errors: warm.errors, timeouts: warm.timeouts },
  problems,
});

/**
 * Sanity request, warm-up (discarded), measured run.
 * @param {Target} target
 */
async function measure(target) {
  const { label, db, port, method, urlPath, headers = {}, body, expect, check } = target;
  const first = await request(port, method, urlPath, { headers, body, timeoutMs: 5_000 });
  if (first.status !== expect || (check && !check(first.text ?? ''))) {
    throw new Error(`${label}: sanity request got ${first.status || first.error} (want ${expect}): ${first.text?.slice(0, 300)}`);
  }
  const base = {
    url: `http://127.0.0.1:${port}${urlPath}`,
    method,
    headers,
    body,
    connections: opts.connections,
    pipelining: opts.pipelining,
    timeout: 10,
  };
  log(`  ${label} [${db}]: warm-up ${opts.warmup} s, measure ${opts.duration} s`);
  const warm = await runCannon({ ...base, duration: opts.warmup });
  const r = await runCannon({ ...base, duration: opts.duration });
  const problems = [...badCounts(warm, expect).map((p) => `warm-up: ${p}`), ...badCounts(r, expect)];
  const row = throughputRow(target, warm, r, problems);
  results.throughput.push(row);
  log(
    `    ${row.rps_mean} req/s, p50 ${row.latency_p50_ms} ms, p99 ${row.latency_p99_ms} ms, ${row.total_requests} requests` +
      (problems.length ? `  !! ${problems.join('; ')}` : ''),
  );
  if (problems.length) results.failures.push(`${label} [${db}]: ${problems.join('; ')}`);
  return row;
}

const apiHeaders = { 'x-api-key': API_KEY };
const jsonHeaders = { ...apiHeaders, 'content-type': 'application/json' };

/**
 * @param {string} db
 * @param {string} dataDir
 * @param {string | undefined} databaseUrl
 */
async function switchboardPhase(db, dataDir, databaseUrl) {
  log(`\n== Switchboard on ${db}`);
  const cold = await startServer(db, 'cold', dataDir, databaseUrl);
  await stopServer(cold);
  const warm = await startServer(db, 'warm', dataDir, databaseUrl);
  try {
    const created = await request(warm.port, 'POST', '/calls', {
      headers: jsonHeaders,
      body: JSON.stringify({ room_id: 'bench-room' }),
      timeoutMs: 10_000,
    });
    if (created.status !== 201) throw new Error(`POST /calls answered ${created.status || created.error}: ${created.text}`);
    const callId = JSON.parse(created.text).id;
    if (!callId) throw new Error(`POST /calls returned no id: ${created.text}`);

    await measure({
      label: 'POST /auth/token',
      db,
      port: warm.port,
      method: 'POST',
      urlPath: '/auth/token',
      headers: jsonHeaders,
      body: TOKEN_BODY,
      expect: 201,
      check: (t) => typeof JSON.parse(t).token === 'string',
    });
    await measure({
      label: 'GET /calls/:id',
      db,
      port: warm.port,
      method: 'GET',
      urlPath: `/calls/${encodeURIComponent(callId)}`,
      headers: apiHeaders,
      expect: 200,
      check: (t) => JSON.parse(t).id === callId,
    });
    warm.entry.after_load = memory(warm.proc);
  } finally {
    await stopServer(warm);
  }
}

async function barePhase() {
  log('\n== Bare Fastify baseline (scripts/bench-bare-server.mjs)');
  const port = await freePort();
  /** @type {StartupEntry} */
  const entry = { db: '-', phase: 'bare-fastify', port };
  results.startup.push(entry);
  const bare = await startBaseline(run, { name: 'bare-fastify', script: BARE, args: [String(port)], env: { ...minimalEnv(), HOST: '127.0.0.1' } });
  try {
    entry.ready_ms = r1(bare.readyMs);
    entry.ready_signal = 'LISTENING line';
    await sleep(IDLE_MS);
    entry.idle = memory(bare.proc);
    log(`  bare-fastify: listening in ${fmtMs(bare.readyMs)}; idle RSS ${entry.idle.server_rss_mb} MB`);
    await measure({ label: 'GET /bare', db: '-', port, method: 'GET', urlPath: '/bare', expect: 200, check: (t) => JSON.parse(t).ok === true });
    await measure({
      label: 'POST /bare',
      db: '-',
      port,
      method: 'POST',
      urlPath: '/bare',
      headers: { 'content-type': 'application/json' },
      body: TOKEN_BODY,
      expect: 200,
      check: (t) => JSON.stringify(JSON.parse(t)) === TOKEN_BODY,
    });
  } finally {
    const stop = await run.stop(bare.proc);
    entry.stop_ms = Math.round(stop.ms);
    entry.exit = { code: stop.code, signal: stop.signal, forced_kill: stop.forced };
  }
}

// ---------------------------------------------------------------- report

function report() {
  const m = results.meta;
  const out = [];
  out.push('');
  out.push(`Switchboard HTTP benchmark  ${m.date}`);
  out.push(`Node ${m.node} | ${m.cpu_model} | ${m.cpu_cores} cores | ${m.mem_total_gb} GB RAM | autocannon ${m.autocannon}, fastify ${m.fastify}`);
  out.push(
    `load: ${opts.connections} connections, pipelining ${opts.pipelining}, ${opts.duration} s measured after ${opts.warmup} s warm-up, 127.0.0.1; server RATE_LIMIT_MAX=${opts.rateLimitMax}`,
  );
  out.push('');
  out.push(`Start-up (spawn -> first 200 from GET /ready, polled every ${READY_POLL_MS} ms) and RSS after ready + ${IDLE_MS / 1000} s idle`);
  out.push(
    table(
      ['server', 'db', 'start', 'ready ms', 'stop ms', 'server RSS MB', 'mediasoup-worker RSS MB', 'after load MB'],
      results.startup.map((s) => [
        s.phase === 'bare-fastify' ? 'bare fastify' : 'switchboard',
        s.db,
        s.phase === 'bare-fastify' ? '(LISTENING)' : s.phase,
        s.ready_ms,
        s.stop_ms,
        s.idle?.server_rss_mb,
        s.phase === 'bare-fastify' ? null : `${s.idle?.mediasoup_workers_rss_mb} (${s.idle?.mediasoup_workers})`,
        s.after_load ? `${s.after_load.server_rss_mb} (peak ${s.after_load.server_peak_rss_mb})` : null,
      ]),
    ),
  );
  out.push('');
  out.push('Throughput (autocannon; p50/p99 of 2xx responses at 1 ms resolution; mean* = connections / req/s)');
  out.push(
    table(
      ['target', 'db', 'req/s', 'p50 ms', 'p99 ms', 'mean* ms', 'total', 'non2xx', 'errors'],
      results.throughput.map((t) => [
        t.target,
        t.db,
        t.rps_mean,
        t.latency_p50_ms,
        t.latency_p99_ms,
        t.latency_mean_ms_littles_law?.toFixed(2),
        t.total_requests,
        t.non2xx,
        t.errors + t.timeouts,
      ]),
    ),
  );
  out.push('');
  out.push(verdict(results.failures, 'OK: no errors, timeouts or non-2xx responses'));
  console.log(out.join('\n'));
}

// ---------------------------------------------------------------- main

async function main() {
  assertBuilt();
  const started = performance.now();
  results.meta = {
    ...machineMeta(),
    available_parallelism: os.availableParallelism(),
    mem_total_gb: memTotalGb(),
    autocannon: require('autocannon/package.json').version,
    fastify: require('fastify/package.json').version,
  };

  // Hard bound on the whole run, whatever hangs.
  const loadRuns = 4 + (opts.postgres ? 2 : 0);
  run.watchdog(180_000 + loadRuns * (opts.duration + opts.warmup) * 1000);

  log(`bench: Node ${process.version}, ${results.meta.cpu_model}, ${os.cpus().length} cores`);
  await switchboardPhase('pglite', run.tempDir('sb-bench-pglite-'), undefined);
  await barePhase();
  if (opts.postgres) {
    const db = await createDatabase(run, 'bench');
    log(`\n  created database ${db.shown}`);
    await switchboardPhase('postgres', run.tempDir('sb-bench-pg-'), db.url);
  }

  results.meta.wall_s = Math.round((performance.now() - started) / 100) / 10;
  results.ok = results.failures.length === 0;
}

await run.finish({ main, results, report, out: opts.out });
