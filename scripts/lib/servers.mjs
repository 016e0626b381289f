/**
 * The servers a benchmark measures: Switchboard itself (the built dist/server/main.js) and
 * the bare baselines beside it (scripts/bench-*-bare*.mjs and the like), each a process of
 * its own tracked by a BenchRun.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freeDualPort, request } from './net.mjs';
import { ROOT } from './system.mjs';

/** @typedef {import('./runner.mjs').BenchRun} BenchRun */
/** @typedef {import('./processes.mjs').Proc} Proc */
/** @typedef {import('./processes.mjs').StopOptions} StopOptions */

/** The built server entry point (npm run build). */
export const SERVER_MAIN = path.join(ROOT, 'dist', 'server', 'main.js');
/** API key the benchmarks configure on the server they start (API_KEYS). */
export const BENCH_API_KEY = 'bench-api-key-0123456789abcdef';

/**
 * The server's limiters (1200 requests/min per client, and per socket) would turn a load
 * test into a 429 test: high ceilings keep them in the request path but never trip them.
 */
export const LIMITS_OUT_OF_THE_WAY = {
  RATE_LIMIT_MAX: '10000000',
  SOCKET_RATE_LIMIT_PER_SECOND: '100000',
  SOCKET_RATE_LIMIT_BURST: '100000',
  // Every benchmark client comes from 127.0.0.1; one user opens many rooms; sinks consume a lot.
  MAX_CONNECTIONS_PER_IP: '1000000',
  MAX_ROOMS_PER_USER: '1000000',
  MAX_CONSUMERS_PER_PARTICIPANT: '100000',
};

/**
 * Throws unless `npm run build` produced the server.
 * @param {string} [main] another build's entry point (e.g. an older checkout's)
 */
export function assertBuilt(main = SERVER_MAIN) {
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
}

/** PATH and HOME of this process, for children that need nothing else from its environment. */
export const minimalEnv = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? os.tmpdir() });

/**
 * A Switchboard server's environment: 127.0.0.1:port, DATA_DIR, one mediasoup worker, warn
 * logs, the bench API key, DATABASE_URL when given (else the embedded database), TMPDIR when
 * set here, plus `extra`.
 * @param {{ port: number, dataDir: string, databaseUrl?: string | undefined, extra?: Record<string, string> }} options
 * @returns {Record<string, string>}
 */
export function switchboardEnv({ port, dataDir, databaseUrl, extra = {} }) {
  /** @type {Record<string, string>} */
  const env = {
    ...minimalEnv(),
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    MEDIASOUP_WORKERS: '1',
    LOG_LEVEL: 'warn',
    API_KEYS: BENCH_API_KEY,
    ...extra,
  };
  if (process.env.TMPDIR) env.TMPDIR = process.env.TMPDIR;
  if (databaseUrl) env.DATABASE_URL = databaseUrl;
  return env;
}

/**
 * Polls GET /ready on 127.0.0.1:port every pollMs (1 s request timeout) until it answers 200.
 * t0 is the performance.now() of the spawn. Returns { ms: time since t0, polls }. Throws if
 * proc exits first or after timeoutMs, with its output tail.
 * @param {Proc} proc
 * @param {number} port
 * @param {number} t0
 * @param {{ pollMs: number, timeoutMs: number }} options
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

/**
 * @typedef {object} SwitchboardServer
 * @property {Proc} proc
 * @property {number} port
 * @property {string} url http://127.0.0.1:<port>
 * @property {number} readyMs spawn to the first 200 from /ready
 * @property {number} polls
 */

/**
 * Starts dist/server/main.js (or `main`) with `env` (see switchboardEnv) and waits until
 * /ready answers.
 * @param {BenchRun} run
 * @param {object} options
 * @param {string} options.name
 * @param {string} [options.main] the entry point, default SERVER_MAIN
 * @param {number} options.port the PORT in env
 * @param {Record<string, string>} options.env
 * @param {number} options.pollMs
 * @param {number} options.timeoutMs
 * @param {'ignore' | 'pipe'} [options.stdin]
 * @param {number} [options.tailBytes]
 * @param {number} [options.order]
 * @param {StopOptions} [options.stop]
 * @returns {Promise<SwitchboardServer>}
 */
export async function startSwitchboard(run, { name, main = SERVER_MAIN, port, env, pollMs, timeoutMs, stdin, tailBytes, order, stop }) {
  const t0 = performance.now();
  const proc = run.spawnNode(name, main, { env, stdin, tailBytes, order, stop });
  const { ms, polls } = await waitForReady(proc, port, t0, { pollMs, timeoutMs });
  return { proc, port, url: `http://127.0.0.1:${port}`, readyMs: ms, polls };
}

/**
 * @typedef {object} Baseline
 * @property {Proc} proc
 * @property {number} port the one its LISTENING line names
 * @property {string} url
 * @property {number} readyMs spawn to the LISTENING line
 */

/**
 * Starts a baseline server script that prints `LISTENING <port>` once it accepts
 * connections, and waits for that line (20 s at most).
 * @param {BenchRun} run
 * @param {{ name: string, script: string, args: string[], env: Record<string, string>, stdin?: 'ignore' | 'pipe', stop?: StopOptions }} options
 * @returns {Promise<Baseline>}
 */
export async function startBaseline(run, { name, script, args, env, stdin, stop }) {
  const t0 = performance.now();
  const proc = run.spawnNode(name, script, { env, args, stdin, stop });
  const [, port] = await proc.waitForOutput(/^LISTENING (\d+)/m, 20_000);
  return { proc, port: Number(port), url: `http://127.0.0.1:${port}`, readyMs: performance.now() - t0 };
}

/**
 * @typedef {SwitchboardServer & { webRtcPort: number, recordingsDir: string, workerPids: number[] }} MediaServer
 */

/**
 * Switchboard for the media benchmarks (bench:sfu, bench:recording): production mode, WebRTC
 * on one 127.0.0.1 port free for UDP and TCP, tokens signed with keyFile, the limiters out of
 * the way, no reconnect grace, empty rooms kept 10 minutes; /ready polled every 50 ms (90 s
 * at most), then 500 ms for its mediasoup worker to settle. readyMs is rounded.
 * @param {BenchRun} run
 * @param {{ name: string, dataDir: string, keyFile: string, extra?: Record<string, string>, tailBytes?: number }} options
 * @returns {Promise<MediaServer>}
 */
export async function startMediaSwitchboard(run, { name, dataDir, keyFile, extra = {}, tailBytes }) {
  const port = await freeDualPort(20000, 30000);
  const webRtcPort = await freeDualPort(30000, 40000);
  const recordingsDir = path.join(dataDir, 'recordings');
  const env = switchboardEnv({
    port,
    dataDir,
    extra: {
      NODE_ENV: 'production',
      RECORDINGS_DIR: recordingsDir,
      MEDIASOUP_LISTEN_IP: '127.0.0.1',
      MEDIASOUP_WEBRTC_PORT: String(webRtcPort),
      JWT_PRIVATE_KEY_FILE: keyFile,
      ...LIMITS_OUT_OF_THE_WAY,
      RECONNECT_GRACE_SECONDS: '0',
      EMPTY_ROOM_TIMEOUT_SECONDS: '600',
      ...extra,
    },
  });
  const srv = await startSwitchboard(run, { name, port, env, pollMs: 50, timeoutMs: 90_000, stdin: 'pipe', tailBytes, stop: { killAfterMs: 15_000 } });
  await sleep(500);
  return { ...srv, readyMs: Math.round(srv.readyMs), webRtcPort, recordingsDir, workerPids: srv.proc.mediasoupWorkers() };
}
