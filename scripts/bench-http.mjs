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
 *                               [--rate-limit-max 10000000]
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
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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
  freePort,
  integerOption,
  isAlive,
  machineMeta,
  memTotalGb,
  request,
  spawnNodeProcess,
  statusKb,
  table,
  tempDir as makeTempDir,
  onExitKillAndRemove,
  onTerminationSignals,
  waitForReady,
} from './bench-lib.mjs';

const BARE = path.join(ROOT, 'scripts', 'bench-bare-server.mjs');
const require = createRequire(path.join(ROOT, 'package.json'));
const autocannon = require('autocannon');

const API_KEY = BENCH_API_KEY;
const TOKEN_BODY = JSON.stringify({ user_id: 'bench-user', room: 'bench-room', role: 'participant' });
const READY_POLL_MS = 20;
const READY_TIMEOUT_MS = 60_000;
const IDLE_MS = 2_000;
const KILL_AFTER_MS = 5_000;

// ---------------------------------------------------------------- options

function usage(code) {
  (code ? console.error : console.log)(
    'usage: node scripts/bench-http.mjs [--duration S=10] [--warmup S=2] [--connections N=10] [--out FILE] [--postgres]\n' +
      '                                   [--rate-limit-max N=10000000 (server RATE_LIMIT_MAX; 0 disables the limiter)]',
  );
  process.exit(code);
}

let args;
try {
  args = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      connections: { type: 'string', default: '10' },
      out: { type: 'string' },
      'rate-limit-max': { type: 'string', default: '10000000' },
      postgres: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }).values;
} catch (err) {
  console.error(err.message);
  usage(2);
}
if (args.help) usage(0);

const positiveInt = (name, raw, max) => integerOption(name, raw, 1, max, () => usage(2));
const opts = {
  duration: positiveInt('duration', args.duration, 600),
  warmup: positiveInt('warmup', args.warmup, 60),
  connections: positiveInt('connections', args.connections, 1000),
  pipelining: 1,
  out: args.out ? path.resolve(args.out) : undefined,
  rateLimitMax: args['rate-limit-max'] === '0' ? '0' : String(positiveInt('rate-limit-max', args['rate-limit-max'], 10_000_000)),
  postgres: args.postgres,
};

// ---------------------------------------------------------------- cleanup

/** Live child processes: { name, child, pid, exited, exitInfo, tail(), descendants:Set<number> } */
const children = new Set();
const tempDirs = new Set();
/** Async undo steps (e.g. DROP DATABASE), run last-in first-out. */
const undo = [];
let currentLoad = null;
let cleaningUp = null;

/** SIGTERM, then SIGKILL to the whole process group after KILL_AFTER_MS. */
async function stopChild(proc) {
  const t0 = performance.now();
  let forced = false;
  if (!proc.exitInfo) {
    // Remember the mediasoup worker(s) first: they outlive a parent that exits without waiting for them.
    for (const pid of childPids(proc.pid)) if (comm(pid)?.startsWith('mediasoup-work')) proc.descendants.add(pid);
    try {
      process.kill(proc.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    const done = await Promise.race([proc.exited.then(() => true), sleep(KILL_AFTER_MS).then(() => false)]);
    if (!done) {
      forced = true;
      console.error(`  ! ${proc.name} (pid ${proc.pid}) still running ${KILL_AFTER_MS} ms after SIGTERM: SIGKILL`);
      for (const target of [-proc.pid, proc.pid]) {
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
  // Orphaned descendants (a mediasoup worker whose parent died): kill them too.
  const orphans = [];
  for (const pid of proc.descendants) {
    const name = comm(pid);
    if (name && name.startsWith('mediasoup-work') && isAlive(pid)) {
      await Promise.race([waitGone(pid), sleep(1_000)]);
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

async function waitGone(pid) {
  while (isAlive(pid)) await sleep(50);
}

async function cleanup() {
  cleaningUp ??= (async () => {
    try {
      currentLoad?.stop();
    } catch {
      /* not running */
    }
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

const termination = onTerminationSignals({ doing: 'stopping servers and cleaning up...', cleanup, announceRepeat: true });
// Last resort for any exit path: no child or temp dir outlives this process.
onExitKillAndRemove(function* () {
  for (const p of children) yield* [-p.pid, p.pid];
}, tempDirs);

// ---------------------------------------------------------------- helpers

const tempDir = (prefix) => makeTempDir(prefix, tempDirs);
/** Children of pid (ps as fallback when /proc lists none). */
const childPids = (pid) => procChildPids(pid, { psFallback: true });

/** Spawns a node script in its own process group (so a forced kill also reaches the mediasoup worker) and tracks it for cleanup. */
function spawnNode(name, script, { env, args: extra = [] }) {
  const proc = spawnNodeProcess(name, script, { env, args: extra });
  proc.descendants = new Set();
  children.add(proc);
  return proc;
}

const waitReady = (proc, port, t0) => waitForReady(proc, port, t0, { pollMs: READY_POLL_MS, timeoutMs: READY_TIMEOUT_MS });

const mb = (kb) => (kb == null ? null : Math.round((kb / 1024) * 10) / 10);

/** RSS of the process and of its mediasoup-worker children (reported separately). */
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
  for (const w of workers) proc.descendants.add(w.pid);
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

function serverEnv(port, dataDir, databaseUrl) {
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? os.tmpdir(),
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    MEDIASOUP_WORKERS: '1',
    LOG_LEVEL: 'warn',
    API_KEYS: API_KEY,
    // The server's per-client limiter (default 1200/min) would turn a load test into
    // a 429 test; a high ceiling keeps the limiter in the request path but never trips it.
    RATE_LIMIT_MAX: opts.rateLimitMax,
  };
  if (process.env.TMPDIR) env.TMPDIR = process.env.TMPDIR;
  if (databaseUrl) env.DATABASE_URL = databaseUrl;
  return env;
}

const log = (msg) => console.error(msg);
const fmtMs = (ms) => `${Math.round(ms)} ms`;

// ---------------------------------------------------------------- phases

const results = {
  meta: {},
  options: { ...opts, out: opts.out ?? null, ready_poll_ms: READY_POLL_MS, idle_ms: IDLE_MS },
  startup: [],
  throughput: [],
  failures: [],
  ok: false,
};

/** Start the real server, time it to /ready, idle 2 s, read memory. Returns the live proc. */
async function startServer(db, phase, dataDir, databaseUrl) {
  const port = await freePort();
  const name = `switchboard[${db},${phase}]`;
  const t0 = performance.now();
  const proc = spawnNode(name, MAIN, { env: serverEnv(port, dataDir, databaseUrl) });
  const ready = await waitReady(proc, port, t0);
  log(`  ${name}: ready in ${fmtMs(ready.ms)} (${ready.polls} polls); idling ${IDLE_MS / 1000} s`);
  await sleep(IDLE_MS);
  if (proc.exitInfo) throw new Error(`${name} exited while idle:\n${proc.tail()}`);
  const mem = memory(proc);
  log(`  ${name}: idle RSS server ${mem.server_rss_mb} MB, ${mem.mediasoup_workers} mediasoup-worker(s) ${mem.mediasoup_workers_rss_mb} MB`);
  const entry = { db, phase, port, ready_ms: Math.round(ready.ms * 10) / 10, ready_polls: ready.polls, idle: mem };
  results.startup.push(entry);
  return { proc, port, entry };
}

async function stopServer(srv) {
  const stop = await stopChild(srv.proc);
  srv.entry.stop_ms = Math.round(stop.ms);
  srv.entry.exit = { code: stop.code, signal: stop.signal, forced_kill: stop.forced };
  log(`  ${srv.proc.name}: stopped in ${fmtMs(stop.ms)} (exit ${stop.code ?? stop.signal})`);
  if (stop.forced || stop.code !== 0 || stop.orphans.length) {
    results.failures.push(`${srv.proc.name}: unclean stop (code ${stop.code}, signal ${stop.signal}, forced ${stop.forced}, orphans ${stop.orphans.length})`);
  }
}

function runCannon(o) {
  const inst = autocannon(o);
  currentLoad = inst;
  return Promise.resolve(inst).finally(() => {
    if (currentLoad === inst) currentLoad = null;
  });
}

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

/** Sanity request, 2 s warm-up (discarded), measured run. */
async function measure(target) {
  const { label, db, port, method, urlPath, headers = {}, body, expect, check } = target;
  const first = await request(port, method, urlPath, { headers, body, timeoutMs: 5_000 });
  if (first.status !== expect || (check && !check(first.text))) {
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
  const row = {
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
  };
  results.throughput.push(row);
  log(`    ${row.rps_mean} req/s, p50 ${row.latency_p50_ms} ms, p99 ${row.latency_p99_ms} ms, ${row.total_requests} requests` + (problems.length ? `  !! ${problems.join('; ')}` : ''));
  if (problems.length) results.failures.push(`${label} [${db}]: ${problems.join('; ')}`);
  return row;
}

const apiHeaders = { 'x-api-key': API_KEY };
const jsonHeaders = { ...apiHeaders, 'content-type': 'application/json' };

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
  const t0 = performance.now();
  const proc = spawnNode('bare-fastify', BARE, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? os.tmpdir(), HOST: '127.0.0.1' },
    args: [String(port)],
  });
  const entry = { db: '-', phase: 'bare-fastify', port };
  results.startup.push(entry);
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bare server: no LISTENING line in 20 s:\n${proc.tail()}`)), 20_000);
      const onData = (d) => {
        if (/^LISTENING \d+/m.test(proc.tail() + d)) {
          clearTimeout(timer);
          proc.child.stdout.off('data', onData);
          resolve();
        }
      };
      proc.child.stdout.on('data', onData);
      proc.exited.then((e) => {
        clearTimeout(timer);
        reject(new Error(`bare server exited ${JSON.stringify(e)}:\n${proc.tail()}`));
      });
    });
    entry.ready_ms = Math.round((performance.now() - t0) * 10) / 10;
    entry.ready_signal = 'LISTENING line';
    await sleep(IDLE_MS);
    entry.idle = memory(proc);
    log(`  bare-fastify: listening in ${fmtMs(entry.ready_ms)}; idle RSS ${entry.idle.server_rss_mb} MB`);
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
    const stop = await stopChild(proc);
    entry.stop_ms = Math.round(stop.ms);
    entry.exit = { code: stop.code, signal: stop.signal, forced_kill: stop.forced };
  }
}

async function createPostgresDatabase() {
  const pg = require('pg');
  const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const name = `bench_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = async (sql) => {
    const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000, query_timeout: 30_000 });
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
  const redacted = new URL(u);
  if (redacted.password) redacted.password = '***';
  return { url: u.toString(), name, shown: redacted.toString() };
}

// ---------------------------------------------------------------- report

function report() {
  const m = results.meta;
  const out = [];
  out.push('');
  out.push(`Switchboard HTTP benchmark  ${m.date}`);
  out.push(`Node ${m.node} | ${m.cpu_model} | ${m.cpu_cores} cores | ${m.mem_total_gb} GB RAM | autocannon ${m.autocannon}, fastify ${m.fastify}`);
  out.push(`load: ${opts.connections} connections, pipelining ${opts.pipelining}, ${opts.duration} s measured after ${opts.warmup} s warm-up, 127.0.0.1; server RATE_LIMIT_MAX=${opts.rateLimitMax}`);
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
  out.push(results.failures.length ? `FAILED:\n${results.failures.map((f) => `  - ${f}`).join('\n')}` : 'OK: no errors, timeouts or non-2xx responses');
  console.log(out.join('\n'));
}

function writeOut() {
  if (!opts.out) return;
  writeFileSync(opts.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`JSON written to ${opts.out}`);
}

// ---------------------------------------------------------------- main

async function main() {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
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
  const budgetMs = 180_000 + loadRuns * (opts.duration + opts.warmup) * 1000;
  const watchdog = setTimeout(() => {
    console.error(`\nbench: exceeded its ${Math.round(budgetMs / 1000)} s budget; aborting`);
    cleanup().finally(() => process.exit(1));
  }, budgetMs);
  watchdog.unref();

  log(`bench: Node ${process.version}, ${results.meta.cpu_model}, ${os.cpus().length} cores`);
  await switchboardPhase('pglite', tempDir('sb-bench-pglite-'), undefined);
  await barePhase();
  if (opts.postgres) {
    const db = await createPostgresDatabase();
    log(`\n  created database ${db.shown}`);
    await switchboardPhase('postgres', tempDir('sb-bench-pg-'), db.url);
  }

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
