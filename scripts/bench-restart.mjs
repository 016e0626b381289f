#!/usr/bin/env node
/**
 * Restart benchmark for Switchboard (a benchmark, not a test). One run measures, on a single
 * node with the embedded database and the limiters out of the way (LIMITS_OUT_OF_THE_WAY):
 *
 *   (a) stop: the time from SIGTERM, and from SIGINT, to the process's exit, and its exit
 *       code, with each of --connections Socket.IO connections open (token in the handshake,
 *       two per room); a fresh server per case. The same for the bare baseline, a bare
 *       Socket.IO server (scripts/bench-signaling-bare.mjs) holding as many connections,
 *       closed with io.close() on the signal;
 *   (b) reconnect: with --reconnect-connections open, SIGTERM, then the same server started
 *       again on the same port and DATA_DIR: the time from the new process's spawn until
 *       every client is connected again and has joined its room again (the join acked). The
 *       clients come back by themselves, as the SDK's do (socket.io-client's reconnection;
 *       see connect in scripts/bench-signaling-gen.mjs); nothing here reconnects them. The
 *       same for the bare baseline.
 *
 * Every connection of (a) and (b) reconnects like that, so a server that stops has clients
 * knocking while it does, as it would in production.
 *
 * --main PATH chooses the server's build (default dist/server/main.js, npm run build), e.g.
 * an older checkout's, to compare two builds with the same script; the server's own settings
 * (DRAIN_TIMEOUT_MS, SHUTDOWN_TIMEOUT_MS, RECONNECT_GRACE_SECONDS) keep their defaults. A
 * server still running --timeout seconds after the signal is killed (SIGKILL) and recorded
 * as a timeout; clients not all back --reconnect-timeout seconds after the spawn are recorded
 * as such too. Those are results, not failures: the run fails (exit 1) only when the
 * measurement itself did (connections that did not join, a server that died before its signal).
 *
 * Load comes from the generator processes of bench-signaling (scripts/signaling/generators.mjs),
 * each with its own source address 127.0.0.<2+g> when binding to it works; tokens are RS256,
 * minted in the generators with a key this script generates. Everything goes to 127.0.0.0/8.
 *
 *   node scripts/bench-restart.mjs [--main dist/server/main.js] [--connections 0,1000,10000]
 *        [--signals SIGTERM,SIGINT] [--reconnect-connections 1000] [--timeout 45]
 *        [--reconnect-timeout 30] [--no-bare] [--out FILE]   (--help describes them all)
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './lib/net.mjs';
import { OUT_OPTION, integerIn, parseOptions } from './lib/options.mjs';
import { killQuietly } from './lib/processes.mjs';
import { BenchRun } from './lib/runner.mjs';
import { LIMITS_OUT_OF_THE_WAY, SERVER_MAIN, assertBuilt, minimalEnv, startBaseline, startSwitchboard, switchboardEnv } from './lib/servers.mjs';
import { latencySummary, mb, r1, r2, table, verdict } from './lib/stats.mjs';
import { ROOT, cpuSeconds, loadavg, machineMeta, memTotalGb, statusKb } from './lib/system.mjs';
import { createSigningKey } from './lib/tokens.mjs';
import { Generators, localAddressWorks } from './signaling/generators.mjs';
import { metrics } from './signaling/metrics.mjs';

/** @typedef {import('./lib/processes.mjs').Proc} Proc */
/** @typedef {'switchboard' | 'bare'} Kind */
/** @typedef {{ proc: Proc, port: number, url: string, readyMs: number }} Server */

const BARE = path.join(ROOT, 'scripts', 'bench-signaling-bare.mjs');
const require = createRequire(path.join(ROOT, 'package.json'));

const READY_POLL_MS = 20;
const READY_TIMEOUT_MS = 90_000;
const SETTLE_TIMEOUT_MS = 60_000;
const RECONNECT_POLL_MS = 100;
/** Servers that are not measured are stopped with SIGINT (an old build's SIGTERM waits DRAIN_TIMEOUT_MS). */
const UNMEASURED_STOP = /** @type {const} */ ({ signal: 'SIGINT', killAfterMs: 30_000 });
const SOCKETS_PER_GENERATOR = 15_000; // fd hard limit is 20,000 per process
const SIGNALS = ['SIGTERM', 'SIGINT'];

// ---------------------------------------------------------------- options

const { values: o, fail } = parseOptions(
  'node scripts/bench-restart.mjs',
  {
    main: { type: 'string', default: path.relative(process.cwd(), SERVER_MAIN) || SERVER_MAIN, arg: 'PATH', help: 'the server build to measure' },
    connections: { type: 'integers', default: [0, 1000, 10_000], min: 0, max: 20_000, help: '(a) connections open at the signal, a case each' },
    signals: { type: 'string', default: SIGNALS.join(','), arg: 'LIST', help: '(a) the signals, a case each' },
    'reconnect-connections': { type: 'integer', default: 1000, min: 0, max: 20_000, help: '(b) connections that must come back (0: skip (b))' },
    timeout: { type: 'integer', default: 45, min: 1, max: 300, arg: 'S', help: 'seconds from the signal to SIGKILL (recorded as a timeout)' },
    'reconnect-timeout': { type: 'integer', default: 30, min: 1, max: 300, arg: 'S', help: '(b) seconds from the spawn for every client to be back' },
    'ramp-concurrency': { type: 'integer', default: 200, min: 1, max: 5_000, help: 'connect + join attempts in flight' },
    generators: { type: 'string', default: 'auto', arg: 'N|auto', help: 'load generator processes, 1-16; auto: enough for the sockets' },
    group: { type: 'boolean', help: "signal the server's process group (as a terminal's Ctrl-C does), not only the server" },
    'no-bare': { type: 'boolean', help: 'skip the bare Socket.IO baseline' },
    out: OUT_OPTION,
  },
  'Time to stop on SIGTERM/SIGINT with connections open, and to get every client back after a restart.',
);
const opts = {
  main: path.resolve(o.main),
  connections: o.connections,
  signals: o.signals.split(',').map((s) => s.trim()),
  reconnectConnections: o['reconnect-connections'],
  timeoutMs: o.timeout * 1000,
  reconnectTimeoutMs: o['reconnect-timeout'] * 1000,
  rampConcurrency: o['ramp-concurrency'],
  generators: o.generators === 'auto' ? null : integerIn('generators', o.generators, 1, 16, fail),
  group: o.group,
  bare: !o['no-bare'],
  out: o.out ? path.resolve(o.out) : undefined,
};
for (const s of opts.signals) if (!SIGNALS.includes(s)) fail(`--signals: ${JSON.stringify(s)} is not one of ${SIGNALS.join(', ')}`);
const maxSockets = Math.max(...opts.connections, opts.reconnectConnections);
const G = opts.generators ?? Math.max(2, Math.ceil(maxSockets / SOCKETS_PER_GENERATOR));
if (Math.ceil(maxSockets / G) > SOCKETS_PER_GENERATOR)
  fail(`--generators ${G} is too few for ${maxSockets} sockets (at most ${SOCKETS_PER_GENERATOR} per generator)`);
for (const n of [...opts.connections, opts.reconnectConnections]) if (n % 2) fail(`connection counts must be even (two per room): ${n}`);

const run = new BenchRun({ doing: 'stopping servers and generators, cleaning up...' });
/** @param {string} msg */
const log = (msg) => console.error(msg);
/** Wall-clock ms with performance.now()'s resolution, as the generators stamp their rejoins. */
const epochNow = () => performance.timeOrigin + performance.now();

/** @typedef {import('./lib/stats.mjs').LatencySummary} LatencySummary */
/**
 * @typedef {object} StopRow
 * @property {Kind} target
 * @property {number} connections asked for
 * @property {number} joined open (joined) when the signal was sent
 * @property {string} signal
 * @property {number | null} exit_code null when a signal ended it
 * @property {string | null} exit_signal
 * @property {number | null} ms signal to exit; null on a timeout
 * @property {boolean} timed_out still running after --timeout (then SIGKILLed)
 * @property {boolean} [bare_fallback] the bare server's fallback, not io.close(), ended it
 * @property {number[]} orphans mediasoup workers left running after the exit (killed)
 * @property {number} ready_ms
 * @property {number | null} ramp_s
 * @property {number | null} rss_mb at the signal
 * @property {string} loadavg the machine's load averages at the signal (it may be shared)
 * @property {string} [tail] the server's last output, when it did not exit with 0
 */
/**
 * @typedef {object} ReconnectRow
 * @property {Kind} target
 * @property {number} connections
 * @property {number} joined
 * @property {StopRow} stop the SIGTERM that ended the first process
 * @property {number} restart_ready_ms spawn of the new process to /ready 200 (bare: LISTENING)
 * @property {number} reconnected clients back (rejoin acked) after the spawn
 * @property {number | null} all_back_ms spawn to the last of them; null unless all came back in time
 * @property {boolean} timed_out not all back within --reconnect-timeout
 * @property {LatencySummary | null} rejoin_after_spawn_ms spawn to each client's rejoin
 * @property {Record<string, number>} errors refusals and failed rejoins the clients saw
 * @property {Record<string, number>} disconnect_reasons how each client was last disconnected
 */

const results = {
  /** @type {Record<string, unknown>} */
  meta: {},
  options: { ...opts, out: opts.out ?? null },
  /** @type {StopRow[]} */
  stops: [],
  /** @type {ReconnectRow[]} */
  reconnects: [],
  /** @type {string[]} what was measured and is worth a look (timeouts, exit codes other than 0) */
  notes: [],
  /** @type {string[]} */
  failures: [],
  ok: false,
};

/** @type {Generators} */
let gens;
let keyFile = '';
let setCount = 0;

// ---------------------------------------------------------------- servers

/**
 * A Switchboard server of opts.main on `port` with `dataDir` (a restart passes the same ones).
 * @param {string} label
 * @param {{ port?: number, dataDir?: string }} [at]
 */
async function startServer(label, at = {}) {
  const port = at.port ?? (await freePort());
  const dataDir = at.dataDir ?? run.tempDir('sb-bench-restart-');
  const env = switchboardEnv({
    port,
    dataDir,
    extra: {
      RECORDINGS_DIR: path.join(dataDir, 'recordings'),
      JWT_PRIVATE_KEY_FILE: keyFile,
      MAX_CONNECTIONS: '25000',
      ...LIMITS_OUT_OF_THE_WAY,
    },
  });
  const srv = await startSwitchboard(run, {
    name: `switchboard[${label}]`,
    main: opts.main,
    port,
    env,
    pollMs: READY_POLL_MS,
    timeoutMs: READY_TIMEOUT_MS,
    tailBytes: 16_384,
    stop: UNMEASURED_STOP,
  });
  log(`  ${srv.proc.name}: ready in ${Math.round(srv.readyMs)} ms on port ${port}`);
  return { ...srv, dataDir };
}

/**
 * The bare Socket.IO server on `port` (0: any).
 * @param {string} label
 * @param {number} [port]
 * @returns {Promise<Server>}
 */
async function startBare(label, port = 0) {
  const bare = await startBaseline(run, {
    name: `bare-socket.io[${label}]`,
    script: BARE,
    args: [String(port)],
    env: { ...minimalEnv(), HOST: '127.0.0.1' },
    stop: UNMEASURED_STOP,
  });
  log(`  ${bare.proc.name}: listening on port ${bare.port} after ${Math.round(bare.readyMs)} ms`);
  return bare;
}

/**
 * Until the server is quiet: the participants gauge at `joined` (Switchboard) and under 0.1 s
 * of CPU in a second (the write-behind queue drained); SETTLE_TIMEOUT_MS at most.
 * @param {Server} srv
 * @param {Kind} kind
 * @param {number} joined
 */
async function settle(srv, kind, joined) {
  const t0 = performance.now();
  let lastCpu = cpuSeconds(srv.proc.pid) ?? 0;
  for (;;) {
    await sleep(1_000);
    if (srv.proc.exitInfo) throw new Error(`${srv.proc.name} exited while settling:\n${srv.proc.tail()}`);
    const cpu = cpuSeconds(srv.proc.pid) ?? 0;
    const busy = cpu - lastCpu;
    lastCpu = cpu;
    const counted = kind === 'bare' || (await metrics(srv.port)).participants === joined;
    if (counted && busy < 0.1) return;
    if (performance.now() - t0 > SETTLE_TIMEOUT_MS) {
      log(`  ! ${srv.proc.name}: not settled after ${SETTLE_TIMEOUT_MS} ms; measuring anyway`);
      return;
    }
  }
}

/**
 * Sends `signal` (to the process group with --group) and waits for the exit, opts.timeoutMs at
 * most; then SIGKILL. Returns the exit and the ms from the signal to it.
 * @param {Server} srv
 * @param {string} signal
 */
async function signalAndWait(srv, signal) {
  const { proc } = srv;
  proc.mediasoupWorkers(); // remembered: one left running after the exit is an orphan
  const t0 = performance.now();
  killQuietly(opts.group ? -proc.pid : proc.pid, /** @type {NodeJS.Signals} */ (signal));
  const exited = await Promise.race([proc.exited.then(() => true), sleep(opts.timeoutMs).then(() => false)]);
  const ms = performance.now() - t0;
  const st = await run.stop(proc, { signal: 'SIGKILL', killAfterMs: 2_000 });
  const tail = proc.tail();
  return {
    ms: exited ? r1(ms) : null,
    timed_out: !exited,
    exit_code: st.code,
    exit_signal: st.signal,
    orphans: st.orphans,
    bare_fallback: /io\.close\(\) did not finish within/.test(tail) || undefined,
    tail: exited && st.code === 0 ? undefined : tail.slice(-2_000),
  };
}

// ---------------------------------------------------------------- cases

/**
 * Starts a server of `kind`, opens `n` reconnecting connections and waits until it is quiet.
 * @param {Kind} kind
 * @param {number} n
 * @param {string} label
 */
async function loaded(kind, n, label) {
  const set = `r${++setCount}`;
  const prefix = `${set}-`;
  if (kind === 'switchboard' && n > 0) await gens.mint(prefix, n);
  const srv = kind === 'switchboard' ? await startServer(label) : { ...(await startBare(label)), dataDir: '' };
  let joined = 0;
  let rampS = null;
  if (n > 0) {
    const c = await gens.connectSet({
      set,
      url: srv.url,
      kind,
      prefix,
      total: n,
      roomPrefix: 'restart-',
      concurrency: opts.rampConcurrency,
      listenOffers: false,
      timeoutMs: 600_000,
      reconnect: true,
    });
    joined = c.joined;
    rampS = r2(c.ms / 1000);
    log(`  joined ${c.joined}/${n} in ${rampS} s (${r1(c.joined / (c.ms / 1000))}/s), failed ${c.failed} ${JSON.stringify(c.errors)}`);
    if (c.failed) results.failures.push(`${label}: ${c.failed} of ${n} connections failed to join ${JSON.stringify(c.errors)}`);
  }
  await settle(srv, kind, joined);
  return { srv, set, joined, rampS, rssMb: mb(statusKb(srv.proc.pid, 'VmRSS')) };
}

/**
 * (a) One stop: `n` connections open, then `signal`.
 * @param {Kind} kind
 * @param {number} n
 * @param {string} signal
 * @returns {Promise<StopRow>}
 */
async function stopCase(kind, n, signal) {
  const label = `${kind} ${n} ${signal}`;
  log(`\n== stop: ${label}`);
  const { srv, set, joined, rampS, rssMb } = await loaded(kind, n, label);
  try {
    return await measureStop(srv, kind, n, joined, signal, rampS, rssMb);
  } finally {
    await gens.closeSet(set);
  }
}

/**
 * @param {Server} srv
 * @param {Kind} kind
 * @param {number} n
 * @param {number} joined
 * @param {string} signal
 * @param {number | null} rampS
 * @param {number | null} rssMb
 * @returns {Promise<StopRow>}
 */
async function measureStop(srv, kind, n, joined, signal, rampS, rssMb) {
  if (srv.proc.exitInfo) throw new Error(`${srv.proc.name} exited before the ${signal}:\n${srv.proc.tail()}`);
  const load = loadavg();
  const st = await signalAndWait(srv, signal);
  /** @type {StopRow} */
  const row = {
    target: kind,
    connections: n,
    joined,
    signal,
    ...st,
    ready_ms: Math.round(srv.readyMs),
    ramp_s: rampS,
    rss_mb: rssMb,
    loadavg: load,
  };
  const what = `${kind}, ${joined} connections, ${signal}`;
  if (row.timed_out) results.notes.push(`${what}: still running ${opts.timeoutMs / 1000} s after the signal (killed)`);
  else if (row.exit_code !== 0) results.notes.push(`${what}: exit ${row.exit_code ?? row.exit_signal} after ${row.ms} ms`);
  if (row.bare_fallback) results.notes.push(`${what}: io.close() did not finish; the bare server's fallback ended it`);
  if (row.orphans.length) results.notes.push(`${what}: ${row.orphans.length} mediasoup worker(s) outlived the server`);
  log(`  ${srv.proc.name}: ${row.timed_out ? `TIMEOUT after ${opts.timeoutMs} ms` : `exit ${row.exit_code ?? row.exit_signal} ${row.ms} ms after ${signal}`}`);
  return row;
}

/**
 * (b) `n` connections, SIGTERM, the same server again on the same port (and DATA_DIR): every
 * client back?
 * @param {Kind} kind
 * @param {number} n
 * @returns {Promise<ReconnectRow>}
 */
async function reconnectCase(kind, n) {
  const label = `${kind} ${n} restart`;
  log(`\n== reconnect: ${label}`);
  const { srv, set, joined, rampS, rssMb } = await loaded(kind, n, label);
  try {
    const stop = await measureStop(srv, kind, n, joined, 'SIGTERM', rampS, rssMb);
    const spawnedAt = epochNow();
    const again = kind === 'switchboard' ? await startServer(`${label}ed`, { port: srv.port, dataDir: srv.dataDir }) : await startBare(`${label}ed`, srv.port);
    for (;;) {
      const r = await gens.reconnects(set, spawnedAt);
      if (r.rejoined >= joined || epochNow() - spawnedAt > opts.reconnectTimeoutMs) break;
      await sleep(RECONNECT_POLL_MS);
    }
    const r = await gens.reconnects(set, spawnedAt, true);
    const inTime = r.rejoinAt.filter((t) => t - spawnedAt <= opts.reconnectTimeoutMs);
    const allBack = inTime.length >= joined;
    /** @type {ReconnectRow} */
    const row = {
      target: kind,
      connections: n,
      joined,
      stop,
      restart_ready_ms: Math.round(again.readyMs),
      reconnected: inTime.length,
      all_back_ms: allBack && r.lastRejoinAt != null ? r1(r.lastRejoinAt - spawnedAt) : null,
      timed_out: !allBack,
      rejoin_after_spawn_ms: inTime.length ? latencySummary(inTime.map((t) => t - spawnedAt)) : null,
      errors: r.errors,
      disconnect_reasons: r.disconnectReasons,
    };
    log(
      `  back: ${row.reconnected}/${joined} ${allBack ? `all within ${row.all_back_ms} ms of the spawn` : `(TIMEOUT: not all within ${opts.reconnectTimeoutMs} ms)`}; ` +
        `ready ${row.restart_ready_ms} ms; errors ${JSON.stringify(r.errors)}; last disconnects ${JSON.stringify(r.disconnectReasons)}`,
    );
    if (!allBack) results.notes.push(`${kind}, ${joined} connections: ${row.reconnected} back within ${opts.reconnectTimeoutMs / 1000} s of the restart`);
    await gens.closeSet(set);
    await run.stop(again.proc, UNMEASURED_STOP);
    return row;
  } finally {
    await gens.closeSet(set);
  }
}

function budgetMs() {
  const perCase = (/** @type {number} */ n) => 120_000 + n * 20 + opts.timeoutMs;
  const stops = opts.signals.length * opts.connections.reduce((s, n) => s + perCase(n), 0);
  const reconnect = opts.reconnectConnections ? perCase(opts.reconnectConnections) + opts.reconnectTimeoutMs + READY_TIMEOUT_MS : 0;
  return 120_000 + (opts.bare ? 2 : 1) * (stops + reconnect);
}

/** The commit of the checkout the build is in, or null. */
function buildCommit() {
  try {
    return execFileSync('git', ['-C', path.dirname(opts.main), 'rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- main

async function main() {
  assertBuilt(opts.main);
  const started = performance.now();
  results.meta = {
    ...machineMeta(),
    mem_total_gb: memTotalGb(),
    main: opts.main,
    main_commit: buildCommit(),
    socket_io: require('socket.io/package.json').version,
    socket_io_client: require('socket.io-client/package.json').version,
    generators: G,
    database: 'pglite',
  };
  run.watchdog(budgetMs());
  log(
    `bench: Node ${process.version}, ${results.meta.cpu_model}, ${os.cpus().length} cores; server ${opts.main} (${results.meta.main_commit ?? '?'}); ${G} generators`,
  );
  const signing = createSigningKey(run.tempDir('sb-bench-restart-key-'));
  keyFile = signing.keyFile;
  const useLocal = await localAddressWorks();
  results.meta.local_addresses = useLocal;
  gens = new Generators(run, G, budgetMs() + 60_000);
  await gens.init(signing.pem, signing.kid, useLocal);

  /** @type {Kind[]} */
  const kinds = opts.bare ? ['switchboard', 'bare'] : ['switchboard'];
  for (const n of opts.connections) for (const signal of opts.signals) for (const kind of kinds) results.stops.push(await stopCase(kind, n, signal));
  if (opts.reconnectConnections > 0) for (const kind of kinds) results.reconnects.push(await reconnectCase(kind, opts.reconnectConnections));

  results.meta.wall_s = r1((performance.now() - started) / 1000);
  results.ok = results.failures.length === 0;
}

function report() {
  const m = results.meta;
  console.log(`\nSwitchboard restart benchmark  ${m.date}`);
  console.log(
    `server ${m.main} (commit ${m.main_commit ?? '?'}) | Node ${m.node} | ${m.cpu_model} | ${m.cpu_cores} cores | ${G} generators | embedded database`,
  );
  console.log(
    `signal to ${opts.group ? 'the process group' : 'the server process'}; killed after ${opts.timeoutMs / 1000} s; clients reconnect as the SDK does\n`,
  );
  console.log('(a) signal to exit');
  console.log(
    table(
      ['target', 'connections', 'signal', 'exit', 'ms', 'ramp s', 'RSS MB', 'load 1/5/15'],
      results.stops.map((s) => [s.target, s.joined, s.signal, s.timed_out ? 'TIMEOUT' : (s.exit_code ?? s.exit_signal), s.ms, s.ramp_s, s.rss_mb, s.loadavg]),
    ),
  );
  if (results.reconnects.length) {
    console.log(`\n(b) restart on the same port: spawn to every client back in its room (rejoin acked), within ${opts.reconnectTimeoutMs / 1000} s`);
    console.log(
      table(
        ['target', 'connections', 'SIGTERM exit', 'ms', 'ready ms', 'back', 'all back ms', 'p50 ms', 'p99 ms'],
        results.reconnects.map((r) => [
          r.target,
          r.joined,
          r.stop.timed_out ? 'TIMEOUT' : (r.stop.exit_code ?? r.stop.exit_signal),
          r.stop.ms,
          r.restart_ready_ms,
          `${r.reconnected}/${r.joined}`,
          r.timed_out ? 'TIMEOUT' : r.all_back_ms,
          r.rejoin_after_spawn_ms?.p50,
          r.rejoin_after_spawn_ms?.p99,
        ]),
      ),
    );
  }
  if (results.notes.length) console.log(`\nnotes:\n${results.notes.map((n) => `  - ${n}`).join('\n')}`);
  console.log(`\n${verdict(results.failures, 'OK: every case was measured')}`);
}

await run.finish({ main, results, report, out: opts.out });
