#!/usr/bin/env node
/**
 * SFU media benchmark for Switchboard (a benchmark, not a test). One run, 127.0.0.1 only.
 *
 * Real WebRTC peers: server/test/helpers/media-peer.mjs children (mediasoup-client on
 * @roamhq/wrtc, one process each), driven over IPC by a small controller here (modelled
 * on server/test/helpers/mediaPeers.ts). Two targets, started side by side:
 *
 *   switchboard  dist/server/main.js (embedded database, 1 mediasoup worker, JWT auth)
 *   baseline     scripts/bench-sfu-baseline.mjs: plain Socket.IO + one mediasoup
 *                worker/router, no auth, no validation, no database; same codecs and
 *                transport settings as Switchboard
 *
 * On each target a long-lived subscriber S joins room R with consumeAll and publishes
 * nothing. Then, --warmup + --iterations times per target (targets alternate each
 * iteration, the order flipping every round), a FRESH publisher child P is spawned and,
 * once its process is ready and idle, told to `start`: connect (token in the handshake),
 * join R, get-router-rtp-capabilities, device.load, create send and recv transports,
 * produce mic (audio) then camera (video 320x240 @ 15 fps, the harness default). We wait
 * for S's first decoded frame of P's camera producer, then stop P (S must see both of
 * its consumers closed) before the next iteration. All clocks are this host's epoch ms.
 *
 *   (a) produce -> first frame   camera producer's producedAt (in P, when produce()
 *                                resolved, i.e. after the server's produce ack) to S's
 *                                first decoded frame of it (RTCVideoSink, byProducer)
 *       consume -> first frame   S's consumer createdAt (after recvTransport.consume(),
 *                                just before resume-consumer) to that first frame
 *   (c) join -> media            "from the new publisher starting its socket connection
 *                                to the subscriber's first decoded frame": t0 = Date.now()
 *                                in this controller immediately before sending `start` to
 *                                the idle, ready child (start calls io() synchronously on
 *                                receipt; the IPC hop is measured and reported, ~<1 ms),
 *                                t1 = S's firstFrameAt of P's camera producer.
 *
 * Warm-up iterations are excluded from the statistics. Reported: p50/p95/min/max/mean
 * (nearest-rank percentiles) per target, the Switchboard - baseline difference of p50 and
 * p95 (our control-plane overhead), and the median of per-round paired differences.
 *
 *   node scripts/bench-sfu.mjs [--iterations 20] [--warmup 2] [--settle-ms 300]
 *        [--width 320 --height 240 --fps 15] [--no-audio] [--out FILE]
 *
 * Needs a build (npm run build). Bounded: every wait has a timeout, the whole run a
 * watchdog. Servers (own process groups, SIGTERM then SIGKILL) and peer children are
 * stopped on every exit path, temporary directories removed. Exit code 1 on failure.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  BENCH_API_KEY,
  MediaPeer,
  ROOT,
  SERVER_MAIN as MAIN,
  childPids,
  comm,
  cpuSeconds,
  createSigningKey,
  freeDualPort,
  httpGet,
  integerOption,
  isAlive,
  loadavg,
  machineCpu,
  machineMeta,
  median as medianOf,
  memTotalGb,
  mintRs256,
  nearestRank,
  packageVersion,
  spawnNodeProcess,
  switchboardClaims,
  table,
  tempDir as makeTempDir,
  onExitKillAndRemove,
  onTerminationSignals,
} from './bench-lib.mjs';

const BASELINE = path.join(ROOT, 'scripts', 'bench-sfu-baseline.mjs');
const PEER = path.join(ROOT, 'server', 'test', 'helpers', 'media-peer.mjs');
const require = createRequire(path.join(ROOT, 'package.json'));

const API_KEY = BENCH_API_KEY;
const ROOM = 'bench-sfu';
const FIRST_FRAME_TIMEOUT_MS = 15_000;
const START_TIMEOUT_MS = 30_000;
const PEER_READY_TIMEOUT_MS = 20_000;
const SERVER_READY_TIMEOUT_MS = 90_000;

// ---------------------------------------------------------------- options

function usage(code) {
  (code ? console.error : console.log)(
    'usage: node scripts/bench-sfu.mjs [--iterations N=20] [--warmup W=2] [--settle-ms 300]\n' +
      '         [--width 320] [--height 240] [--fps 15] [--no-audio] [--out FILE]',
  );
  process.exit(code);
}
let args;
try {
  args = parseArgs({
    options: {
      iterations: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '2' },
      'settle-ms': { type: 'string', default: '300' },
      width: { type: 'string', default: '320' },
      height: { type: 'string', default: '240' },
      fps: { type: 'string', default: '15' },
      'no-audio': { type: 'boolean', default: false },
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
  iterations: int('iterations', args.iterations, 1, 500),
  warmup: int('warmup', args.warmup, 0, 20),
  settleMs: int('settle-ms', args['settle-ms'], 0, 10_000),
  width: int('width', args.width, 16, 1920),
  height: int('height', args.height, 16, 1080),
  fps: int('fps', args.fps, 1, 60),
  audio: !args['no-audio'],
  out: args.out ? path.resolve(args.out) : undefined,
};

// ---------------------------------------------------------------- cleanup

const servers = new Set(); // { name, child, pid, exited, exitInfo, tail() }
const peers = new Set(); // Peer
const tempDirs = new Set();
let cleaningUp = null;

const log = (msg) => console.error(msg);
const tempDir = (prefix) => makeTempDir(prefix, tempDirs);

async function stopServer(srv, killAfterMs = 15_000) {
  if (!servers.has(srv)) return null;
  const t0 = performance.now();
  let forced = false;
  if (!srv.exitInfo) {
    try {
      process.kill(srv.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const done = await Promise.race([srv.exited.then(() => true), sleep(killAfterMs).then(() => false)]);
    if (!done) {
      forced = true;
      log(`  ! ${srv.name} (pid ${srv.pid}) still running ${killAfterMs} ms after SIGTERM: SIGKILL to its process group`);
      for (const target of [-srv.pid, srv.pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await Promise.race([srv.exited, sleep(2_000)]);
    }
  }
  // mediasoup workers left behind (they are in the server's process group)
  const left = [...srv.workerPids].filter(isAlive);
  if (left.length) {
    await sleep(1_000);
    for (const pid of left.filter(isAlive)) {
      log(`  ! ${srv.name}: killing leftover mediasoup-worker pid ${pid}`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  servers.delete(srv);
  return { stop_ms: Math.round(performance.now() - t0), forced, exit: srv.exitInfo };
}

async function cleanup() {
  cleaningUp ??= (async () => {
    await Promise.all([...peers].map((p) => p.stop(3_000).catch(() => p.kill())));
    await Promise.all([...servers].map((s) => stopServer(s)));
    for (const dir of tempDirs) {
      rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    }
  })();
  return cleaningUp;
}

const termination = onTerminationSignals({ doing: 'stopping peers and servers, cleaning up...', cleanup });
onExitKillAndRemove(function* () {
  for (const p of peers) yield p.child.pid;
  for (const s of servers) yield* [-s.pid, s.pid, ...s.workerPids];
}, tempDirs);

// ---------------------------------------------------------------- helpers

const r1 = (x) => (x == null || Number.isNaN(x) ? null : Math.round(x * 10) / 10);

/** Median of the finite values. */
const median = (xs) => medianOf(xs, (x) => x != null && Number.isFinite(x));

function stats(values) {
  const a = values.filter((v) => v != null && Number.isFinite(v)).sort((x, y) => x - y);
  if (!a.length) return { n: 0, p50: null, p95: null, min: null, max: null, mean: null };
  const q = (p) => nearestRank(a, p);
  return { n: a.length, p50: q(50), p95: q(95), min: a[0], max: a[a.length - 1], mean: r1(a.reduce((s, v) => s + v, 0) / a.length) };
}

function spawnServer(name, script, { env, argv = [] }) {
  const srv = spawnNodeProcess(name, script, { env, args: argv, stdin: 'pipe' });
  srv.workerPids = new Set();
  servers.add(srv);
  return srv;
}

function findWorkers(srv) {
  for (const pid of childPids(srv.pid)) if (comm(pid)?.startsWith('mediasoup-work')) srv.workerPids.add(pid);
  return [...srv.workerPids];
}

/** CPU seconds of the server's Node process and of its mediasoup worker(s). */
function serverCpu(srv) {
  return { node: cpuSeconds(srv.pid), worker: [...srv.workerPids].reduce((s, pid) => s + (cpuSeconds(pid) ?? 0), 0) };
}

// ---------------------------------------------------------------- tokens

let signingKey = null;
let kid = '';
function mintToken(sub, name, room) {
  return mintRs256(signingKey, kid, switchboardClaims({ sub, name, room, role: 'participant' }, 3600, randomUUID()));
}

// ---------------------------------------------------------------- media peer controller (IPC)

class Peer extends MediaPeer {
  constructor(name) {
    super(name, { script: PEER, registry: peers, log, readyTimeoutMs: PEER_READY_TIMEOUT_MS, pollMs: 25 });
  }

  stats() {
    return this.request('stats', {});
  }
}

// ---------------------------------------------------------------- targets

let keyFile = '';

async function startSwitchboard() {
  const port = await freeDualPort(20000, 30000);
  const webRtcPort = await freeDualPort(30000, 40000);
  const dataDir = tempDir('sb-bench-sfu-');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? os.tmpdir(),
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    RECORDINGS_DIR: path.join(dataDir, 'recordings'),
    MEDIASOUP_WORKERS: '1',
    MEDIASOUP_LISTEN_IP: '127.0.0.1',
    MEDIASOUP_WEBRTC_PORT: String(webRtcPort),
    LOG_LEVEL: 'warn',
    API_KEYS: API_KEY,
    JWT_PRIVATE_KEY_FILE: keyFile,
    RATE_LIMIT_MAX: '10000000',
    SOCKET_RATE_LIMIT_PER_SECOND: '100000',
    SOCKET_RATE_LIMIT_BURST: '100000',
    RECONNECT_GRACE_SECONDS: '0',
    EMPTY_ROOM_TIMEOUT_SECONDS: '600',
  };
  if (process.env.TMPDIR) env.TMPDIR = process.env.TMPDIR;
  const t0 = performance.now();
  const srv = spawnServer('switchboard', MAIN, { env });
  for (;;) {
    if (srv.exitInfo) throw new Error(`switchboard exited (${JSON.stringify(srv.exitInfo)}) before /ready:\n${srv.tail()}`);
    const res = await httpGet(port, '/ready');
    if (res.status === 200) break;
    if (performance.now() - t0 > SERVER_READY_TIMEOUT_MS) throw new Error(`switchboard: no 200 from /ready within ${SERVER_READY_TIMEOUT_MS} ms:\n${srv.tail()}`);
    await sleep(50);
  }
  srv.readyMs = Math.round(performance.now() - t0);
  await sleep(500);
  findWorkers(srv);
  srv.url = `http://127.0.0.1:${port}`;
  srv.port = port;
  srv.webRtcPort = webRtcPort;
  srv.token = (sub) => mintToken(sub, sub, ROOM);
  log(`  switchboard: ready in ${srv.readyMs} ms, ${srv.url}, WebRTC 127.0.0.1:${webRtcPort}, mediasoup worker pid(s) ${[...srv.workerPids].join(',') || '?'}`);
  return srv;
}

async function startBaseline(avoid) {
  const webRtcPort = await freeDualPort(30000, 40000, avoid);
  const t0 = performance.now();
  const srv = spawnServer('baseline', BASELINE, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? os.tmpdir() },
    argv: ['0', String(webRtcPort)],
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`baseline: no LISTENING line within 20 s:\n${srv.tail()}`)), 20_000);
    const check = () => {
      const m = /^LISTENING (\d+)/m.exec(srv.tail());
      if (m) {
        clearTimeout(timer);
        srv.child.stdout.off('data', check);
        resolve(Number(m[1]));
      }
    };
    srv.child.stdout.on('data', check);
    srv.exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`baseline exited ${JSON.stringify(e)}:\n${srv.tail()}`));
    });
    check();
  });
  srv.readyMs = Math.round(performance.now() - t0);
  await sleep(500);
  findWorkers(srv);
  srv.url = `http://127.0.0.1:${port}`;
  srv.port = port;
  srv.webRtcPort = webRtcPort;
  srv.token = () => 'none';
  log(`  baseline: ready in ${srv.readyMs} ms, ${srv.url}, WebRTC 127.0.0.1:${webRtcPort}, mediasoup worker pid(s) ${[...srv.workerPids].join(',') || '?'}`);
  return srv;
}

async function startSubscriber(target) {
  const sub = new Peer(`${target.name}-S`);
  await sub.waitReady();
  const res = await sub.request(
    'start',
    { url: target.srv.url, token: target.srv.token('bench-sub'), room: ROOM, displayName: 'Subscriber', consumeAll: true, maxLifetimeMs: 30 * 60_000 },
    START_TIMEOUT_MS,
  );
  target.sub = sub;
  target.subId = res.participant_id;
  log(`  ${target.name}: subscriber ${res.participant_id} joined ${ROOM} (call ${res.call_id})`);
}

/** One join: fresh publisher, start, S's first decoded frame of its camera, stop. */
async function iteration(target, index, warm) {
  const { srv, sub } = target;
  const pubName = `${target.name}-P${index}`;
  const row = { target: target.name, index, warmup: warm };
  const pub = new Peer(pubName);
  try {
    await pub.waitReady();
    // IPC hop estimate for this child (request -> reply of a trivial command).
    const i0 = performance.now();
    await pub.request('stats', {});
    row.ipc_rtt_ms = r1(performance.now() - i0);
    if (opts.settleMs) await sleep(opts.settleMs);
    findWorkers(srv);
    const cpu0 = serverCpu(srv);
    const w0 = performance.now();
    let t0 = 0;
    const started = await pub.request(
      'start',
      {
        url: srv.url,
        token: srv.token(`bench-pub-${index}`),
        room: ROOM,
        displayName: pubName,
        consumeAll: false,
        publish: { audio: opts.audio, video: true, width: opts.width, height: opts.height, fps: opts.fps },
        maxLifetimeMs: 120_000,
      },
      START_TIMEOUT_MS,
      () => {
        t0 = Date.now();
      },
    );
    const tStartReply = Date.now();
    const cam = started.producers.camera;
    const mic = started.producers.mic;
    if (!cam) throw new Error(`${pubName}: no camera producer in start result`);
    const s = await sub.waitFor((st) => st.byProducer[cam]?.firstFrameAt, FIRST_FRAME_TIMEOUT_MS, 20, `first frame of ${cam}`);
    // Give audio a moment too (usually already there); not required.
    let sa = s;
    if (mic && !s.byProducer[mic]?.firstFrameAt) {
      sa = await sub.waitFor((st) => st.byProducer[mic]?.firstFrameAt, 3_000, 20, `first audio of ${mic}`).catch(() => s);
    }
    const wallMs = performance.now() - w0;
    const cpu1 = serverCpu(srv);
    const ps = await pub.stats();
    const pCam = ps.producers.find((p) => p.producer_id === cam);
    const pMic = mic ? ps.producers.find((p) => p.producer_id === mic) : null;
    const cCam = s.consumers.find((c) => c.producer_id === cam);
    const ff = s.byProducer[cam].firstFrameAt;
    row.t0 = t0;
    row.producer_id = cam;
    row.connect_to_first_frame_ms = ff - t0;
    row.produce_to_first_frame_ms = ff - pCam.producedAt;
    row.consume_to_first_frame_ms = cCam ? ff - cCam.createdAt : null;
    row.connect_to_start_reply_ms = tStartReply - t0;
    row.connect_to_camera_produced_ms = pCam.producedAt - t0;
    row.connect_to_mic_produced_ms = pMic ? pMic.producedAt - t0 : null;
    row.camera_produced_to_consumer_created_ms = cCam ? cCam.createdAt - pCam.producedAt : null;
    // Not reported in the table: RTCAudioSink calls back every 10 ms from the moment the
    // track exists (concealment/silence before any packet), so this is not "first audio".
    row.audio_produce_to_first_callback_ms = pMic && sa.byProducer[mic]?.firstFrameAt ? sa.byProducer[mic].firstFrameAt - pMic.producedAt : null;
    row.server_cpu_ms = {
      node: cpu0.node != null && cpu1.node != null ? Math.round((cpu1.node - cpu0.node) * 1000) : null,
      worker: Math.round((cpu1.worker - cpu0.worker) * 1000),
    };
    row.window_ms = Math.round(wallMs);
    row.peer_errors = pub.errors.length;
    // Leave: stop P; S must see both consumers closed before the next iteration.
    await pub.stop();
    await sub.waitFor(
      (st) => [cam, mic].filter(Boolean).every((id) => st.consumers.filter((c) => c.producer_id === id).every((c) => c.closed)),
      5_000,
      25,
      `consumers of ${pubName} closed`,
    );
    row.ok = true;
  } catch (err) {
    row.ok = false;
    row.error = err?.message ?? String(err);
    log(`  ! ${pubName}: ${row.error}`);
    pub.kill();
    await Promise.race([pub.exited, sleep(2_000)]);
  }
  return row;
}

// ---------------------------------------------------------------- report

const METRICS = [
  ['connect_to_first_frame_ms', '(c) connect -> S first video frame'],
  ['produce_to_first_frame_ms', '(a) camera produced -> S first frame'],
  ['consume_to_first_frame_ms', '(a) S consumer created -> first frame'],
  ['connect_to_camera_produced_ms', '    connect -> camera producedAt (P)'],
  ['connect_to_mic_produced_ms', '    connect -> mic producedAt (P)'],
  ['camera_produced_to_consumer_created_ms', '    camera produced -> S consumer created'],
  ['ipc_rtt_ms', '    IPC round trip to P (ctrl<->child)'],
];

const results = { meta: {}, options: { ...opts, out: opts.out ?? null }, rows: [], summary: {}, failures: [] };

function summarise() {
  for (const name of ['switchboard', 'baseline']) {
    const rows = results.rows.filter((r) => r.target === name && !r.warmup && r.ok);
    const s = { n_ok: rows.length, n_failed: results.rows.filter((r) => r.target === name && !r.warmup && !r.ok).length };
    for (const [key] of METRICS) s[key] = stats(rows.map((r) => r[key]));
    s.server_cpu_ms_per_join = {
      node: r1(median(rows.map((r) => r.server_cpu_ms?.node))),
      worker: r1(median(rows.map((r) => r.server_cpu_ms?.worker))),
    };
    s.warmup = results.rows.filter((r) => r.target === name && r.warmup).map((r) => r.connect_to_first_frame_ms ?? r.error);
    results.summary[name] = s;
  }
  const sb = results.summary.switchboard;
  const bl = results.summary.baseline;
  results.summary.overhead = {};
  for (const [key] of METRICS.slice(0, 4)) {
    // Paired by round (same index, adjacent in time).
    const paired = [];
    for (const r of results.rows.filter((x) => x.target === 'switchboard' && !x.warmup && x.ok)) {
      const b = results.rows.find((x) => x.target === 'baseline' && x.index === r.index && x.ok);
      if (b && r[key] != null && b[key] != null) paired.push(r[key] - b[key]);
    }
    results.summary.overhead[key] = {
      p50_diff: sb[key].p50 != null && bl[key].p50 != null ? sb[key].p50 - bl[key].p50 : null,
      p95_diff: sb[key].p95 != null && bl[key].p95 != null ? sb[key].p95 - bl[key].p95 : null,
      mean_diff: sb[key].mean != null && bl[key].mean != null ? r1(sb[key].mean - bl[key].mean) : null,
      paired_median_diff: median(paired),
      paired_n: paired.length,
    };
  }
}

function report() {
  const m = results.meta;
  const out = [''];
  out.push(`Switchboard SFU benchmark  ${m.date}`);
  out.push(`Node ${m.node} | ${m.cpu_model} | ${m.cpu_cores} cores | ${m.mem_total_gb} GB RAM | mediasoup ${m.mediasoup} | mediasoup-client ${m.mediasoup_client} | @roamhq/wrtc ${m.wrtc}`);
  out.push(
    `127.0.0.1 only; 1 mediasoup worker per server; publisher: ${opts.audio ? 'audio + ' : ''}video ${opts.width}x${opts.height}@${opts.fps} (VP8), fresh child per join; ` +
      `${opts.iterations} measured joins per target after ${opts.warmup} warm-up, targets alternating; all ms, host epoch clock`,
  );
  out.push('');
  const rows = [];
  for (const [key, label] of METRICS) {
    for (const name of ['switchboard', 'baseline']) {
      const s = results.summary[name]?.[key];
      if (!s) continue;
      rows.push([name === 'switchboard' ? label : '', name, s.n, s.p50, s.p95, s.min, s.max, s.mean]);
    }
  }
  out.push(table(['metric', 'target', 'n', 'p50', 'p95', 'min', 'max', 'mean'], rows));
  out.push('');
  out.push('Switchboard - baseline (our overhead), ms:');
  out.push(
    table(
      ['metric', 'p50 diff', 'p95 diff', 'mean diff', 'paired median diff (n)'],
      METRICS.slice(0, 4).map(([key, label]) => {
        const o = results.summary.overhead[key];
        return [label.trim(), o.p50_diff, o.p95_diff, o.mean_diff, `${o.paired_median_diff} (${o.paired_n})`];
      }),
    ),
  );
  const sb = results.summary.switchboard;
  const bl = results.summary.baseline;
  out.push('');
  out.push(
    `Server CPU per join (median, /proc, 10 ms ticks, join window incl. first frame): switchboard node ${sb.server_cpu_ms_per_join.node} ms + worker ${sb.server_cpu_ms_per_join.worker} ms; ` +
      `baseline node ${bl.server_cpu_ms_per_join.node} ms + worker ${bl.server_cpu_ms_per_join.worker} ms`,
  );
  out.push(`Machine: load average ${m.loadavg_before} before, ${m.loadavg_after} after; whole machine busy ${m.machine_busy_cores_during_joins} of ${m.cpu_cores} cores during the joins (all processes, incl. ours)`);
  out.push(`Warm-up (excluded) connect->first frame: switchboard ${JSON.stringify(sb.warmup)}, baseline ${JSON.stringify(bl.warmup)}`);
  out.push(`Per-join connect->first frame, switchboard: ${results.rows.filter((r) => r.target === 'switchboard' && !r.warmup).map((r) => r.connect_to_first_frame_ms ?? 'x').join(' ')}`);
  out.push(`Per-join connect->first frame, baseline:    ${results.rows.filter((r) => r.target === 'baseline' && !r.warmup).map((r) => r.connect_to_first_frame_ms ?? 'x').join(' ')}`);
  out.push('');
  out.push(results.failures.length ? `FAILED:\n${results.failures.map((f) => `  - ${f}`).join('\n')}` : `OK (wall ${m.wall_s} s)`);
  console.log(out.join('\n'));
}

// ---------------------------------------------------------------- main

async function main() {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
  const started = performance.now();
  const ver = packageVersion;
  results.meta = {
    ...machineMeta(),
    mem_total_gb: memTotalGb(),
    mediasoup: ver('mediasoup'),
    mediasoup_client: ver('mediasoup-client'),
    wrtc: ver('@roamhq/wrtc'),
    socket_io: ver('socket.io'),
  };
  const perIterMs = 25_000;
  const budgetMs = 180_000 + 2 * (opts.iterations + opts.warmup) * perIterMs;
  setTimeout(() => {
    log(`\nbench: exceeded its ${Math.round(budgetMs / 1000)} s budget; aborting`);
    cleanup().finally(() => process.exit(1));
  }, budgetMs).unref();
  log(`bench-sfu: Node ${process.version}, ${results.meta.cpu_model}, ${os.cpus().length} cores; ${opts.iterations} joins per target after ${opts.warmup} warm-up`);

  const dir = tempDir('sb-bench-sfu-key-');
  ({ keyFile, signingKey, kid } = createSigningKey(dir));

  const sbSrv = await startSwitchboard();
  const blSrv = await startBaseline(new Set([sbSrv.webRtcPort]));
  results.meta.servers = {
    switchboard: { ready_ms: sbSrv.readyMs, webrtc_port: sbSrv.webRtcPort },
    baseline: { ready_ms: blSrv.readyMs, webrtc_port: blSrv.webRtcPort },
  };
  const targets = { switchboard: { name: 'switchboard', srv: sbSrv }, baseline: { name: 'baseline', srv: blSrv } };
  await startSubscriber(targets.switchboard);
  await startSubscriber(targets.baseline);
  await sleep(500);

  const total = opts.warmup + opts.iterations;
  results.meta.loadavg_before = loadavg();
  const mc0 = machineCpu();
  for (let i = 0; i < total; i++) {
    const warm = i < opts.warmup;
    const order = i % 2 === 0 ? ['switchboard', 'baseline'] : ['baseline', 'switchboard'];
    const parts = [];
    for (const name of order) {
      const row = await iteration(targets[name], i, warm);
      results.rows.push(row);
      parts.push(`${name} ${row.ok ? `${row.connect_to_first_frame_ms}/${row.produce_to_first_frame_ms}/${row.consume_to_first_frame_ms}` : `FAILED (${row.error})`}`);
      if (!row.ok && !warm) results.failures.push(`${name} join ${i}: ${row.error}`);
    }
    log(`  ${warm ? 'warm-up' : 'join'} ${i}: ${parts.join(' | ')}  (connect/produce/consume -> first frame, ms)`);
    for (const t of Object.values(targets)) {
      if (t.srv.exitInfo) throw new Error(`${t.name} server exited during the run: ${JSON.stringify(t.srv.exitInfo)}\n${t.srv.tail()}`);
      if (t.sub.exitInfo) throw new Error(`${t.name} subscriber exited during the run: ${JSON.stringify(t.sub.exitInfo)}\n${t.sub.tail()}`);
    }
  }
  const mc1 = machineCpu();
  results.meta.machine_busy_cores_during_joins = Math.round(((mc1.busy - mc0.busy) / (mc1.total - mc0.total)) * os.cpus().length * 100) / 100;
  results.meta.loadavg_after = loadavg();
  results.meta.subscriber_errors = { switchboard: targets.switchboard.sub.errors, baseline: targets.baseline.sub.errors };
  for (const t of Object.values(targets)) {
    await t.sub.stop();
  }
  results.meta.stop = { switchboard: await stopServer(sbSrv), baseline: await stopServer(blSrv) };
  results.meta.wall_s = Math.round((performance.now() - started) / 100) / 10;
  summarise();
  results.ok = results.failures.length === 0;
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  exitCode = 1;
  results.failures.push(`aborted: ${err?.message ?? err}`);
  log(`\nbench aborted: ${err?.stack ?? err}`);
} finally {
  await cleanup();
}
if (!termination.signalled) {
  if (!results.summary.switchboard) {
    try {
      summarise();
    } catch {
      /* partial */
    }
  }
  try {
    report();
  } catch (err) {
    log(`report failed: ${err?.message ?? err}`);
  }
  if (opts.out) {
    writeFileSync(opts.out, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`JSON written to ${opts.out}`);
  }
  if (!results.ok) exitCode = 1;
  process.exit(exitCode);
}
