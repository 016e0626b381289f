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
 *        [--width 320 --height 240 --fps 15] [--no-audio] [--out FILE]    (--help describes them)
 *
 * Needs a build (npm run build). Bounded: every wait has a timeout, the whole run a
 * watchdog. Servers (own process groups, SIGTERM then SIGKILL) and peer children are
 * stopped on every exit path, temporary directories removed. Exit code 1 on failure.
 */
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MediaPeer, mediaMeta } from './lib/media-peer.mjs';
import { freeDualPort } from './lib/net.mjs';
import { OUT_OPTION, parseOptions } from './lib/options.mjs';
import { BenchRun } from './lib/runner.mjs';
import { assertBuilt, minimalEnv, startBaseline, startMediaSwitchboard } from './lib/servers.mjs';
import { r1 } from './lib/stats.mjs';
import { ROOT, cpuSeconds, loadavg, machineCpu, packageVersion } from './lib/system.mjs';
import { createSigningKey } from './lib/tokens.mjs';
import { report, summarise } from './sfu/report.mjs';

/** @typedef {import('./lib/processes.mjs').Proc} Proc */
/** @typedef {import('./sfu/report.mjs').Row} Row */
/** @typedef {import('./sfu/report.mjs').SfuResults} SfuResults */

const BASELINE = path.join(ROOT, 'scripts', 'bench-sfu-baseline.mjs');

const ROOM = 'bench-sfu';
const FIRST_FRAME_TIMEOUT_MS = 15_000;
const START_TIMEOUT_MS = 30_000;
const PEER_READY_TIMEOUT_MS = 20_000;

// ---------------------------------------------------------------- options

const { values: o } = parseOptions('node scripts/bench-sfu.mjs', {
  iterations: { type: 'integer', default: 20, min: 1, max: 500, help: 'measured joins per target' },
  warmup: { type: 'integer', default: 2, min: 0, max: 20, help: 'joins per target before them, not counted' },
  'settle-ms': { type: 'integer', default: 300, min: 0, max: 10_000, arg: 'MS', help: 'idle time of a ready publisher before it starts' },
  width: { type: 'integer', default: 320, min: 16, max: 1920, help: "the publisher's video width" },
  height: { type: 'integer', default: 240, min: 16, max: 1080, help: "the publisher's video height" },
  fps: { type: 'integer', default: 15, min: 1, max: 60, help: "the publisher's frame rate" },
  'no-audio': { type: 'boolean', help: 'publish video only' },
  out: OUT_OPTION,
});
const opts = {
  iterations: o.iterations,
  warmup: o.warmup,
  settleMs: o['settle-ms'],
  width: o.width,
  height: o.height,
  fps: o.fps,
  audio: !o['no-audio'],
  out: o.out ? path.resolve(o.out) : undefined,
};

// ---------------------------------------------------------------- helpers

const run = new BenchRun({ doing: 'stopping peers and servers, cleaning up...' });
/** @param {string} msg */
const log = (msg) => console.error(msg);

/** @param {string} name */
const newPeer = (name) => new MediaPeer(run, name, { log, readyTimeoutMs: PEER_READY_TIMEOUT_MS, pollMs: 25 });

/**
 * A server under test (Switchboard or the baseline) with its mediasoup worker(s).
 * @typedef {object} Server
 * @property {string} name
 * @property {Proc} proc
 * @property {string} url
 * @property {number} port
 * @property {number} webRtcPort
 * @property {number} readyMs
 * @property {Set<number>} workerPids
 * @property {(sub: string) => string} token
 */

/**
 * The worker(s) now, added to those seen before.
 * @param {Server} srv
 */
function findWorkers(srv) {
  for (const pid of srv.proc.mediasoupWorkers()) srv.workerPids.add(pid);
  return [...srv.workerPids];
}

/**
 * CPU seconds of the server's Node process and of its mediasoup worker(s).
 * @param {Server} srv
 */
function serverCpu(srv) {
  return { node: cpuSeconds(srv.proc.pid), worker: [...srv.workerPids].reduce((s, pid) => s + (cpuSeconds(pid) ?? 0), 0) };
}

// ---------------------------------------------------------------- targets

/** @param {string} keyFile @param {import('./lib/tokens.mjs').MintToken} token */
async function startSwitchboard(keyFile, token) {
  const s = await startMediaSwitchboard(run, { name: 'switchboard', dataDir: run.tempDir('sb-bench-sfu-'), keyFile });
  /** @type {Server} */
  const srv = {
    name: 'switchboard',
    proc: s.proc,
    url: s.url,
    port: s.port,
    webRtcPort: s.webRtcPort,
    readyMs: s.readyMs,
    workerPids: new Set(s.workerPids),
    token: (sub) => token({ sub, name: sub, room: ROOM, role: 'participant' }),
  };
  log(
    `  switchboard: ready in ${srv.readyMs} ms, ${srv.url}, WebRTC 127.0.0.1:${srv.webRtcPort}, mediasoup worker pid(s) ${[...srv.workerPids].join(',') || '?'}`,
  );
  return srv;
}

/** @param {Set<number>} avoid */
async function startBaselineServer(avoid) {
  const webRtcPort = await freeDualPort(30000, 40000, avoid);
  const b = await startBaseline(run, {
    name: 'baseline',
    script: BASELINE,
    args: ['0', String(webRtcPort)],
    env: minimalEnv(),
    stdin: 'pipe',
    stop: { killAfterMs: 15_000 },
  });
  await sleep(500);
  /** @type {Server} */
  const srv = {
    name: 'baseline',
    proc: b.proc,
    url: b.url,
    port: b.port,
    webRtcPort,
    readyMs: Math.round(b.readyMs),
    workerPids: new Set(),
    token: () => 'none',
  };
  findWorkers(srv);
  log(`  baseline: ready in ${srv.readyMs} ms, ${srv.url}, WebRTC 127.0.0.1:${webRtcPort}, mediasoup worker pid(s) ${[...srv.workerPids].join(',') || '?'}`);
  return srv;
}

/** @typedef {{ name: string, srv: Server, sub: MediaPeer, subId: string }} Target */

/**
 * The target's long-lived subscriber S: joins ROOM, consumes everything, publishes nothing.
 * @param {string} name
 * @param {Server} srv
 * @returns {Promise<Target>}
 */
async function startSubscriber(name, srv) {
  const sub = newPeer(`${name}-S`);
  await sub.waitReady();
  const res = await sub.request(
    'start',
    { url: srv.url, token: srv.token('bench-sub'), room: ROOM, displayName: 'Subscriber', consumeAll: true, maxLifetimeMs: 30 * 60_000 },
    START_TIMEOUT_MS,
  );
  log(`  ${name}: subscriber ${res.participant_id} joined ${ROOM} (call ${res.call_id})`);
  return { name, srv, sub, subId: res.participant_id };
}

/**
 * @param {Server} srv
 */
async function stopServer(srv) {
  const st = await run.stop(srv.proc);
  return { stop_ms: Math.round(st.ms), forced: st.forced, exit: srv.proc.exitInfo };
}

/** A producer and a consumer in a media peer's stats (server/test/helpers/media-peer.mjs). */
/** @typedef {{ producer_id: string, producedAt: number }} ProducerStats */
/** @typedef {{ producer_id: string, createdAt: number, closed: boolean }} ConsumerStats */

/**
 * One join: fresh publisher, start, S's first decoded frame of its camera, stop.
 * @param {Target} target
 * @param {number} index
 * @param {boolean} warm
 */
async function iteration(target, index, warm) {
  const { srv, sub } = target;
  const pubName = `${target.name}-P${index}`;
  /** @type {Row} */
  const row = { target: target.name, index, warmup: warm };
  const pub = newPeer(pubName);
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
    const pCam = /** @type {ProducerStats} */ (ps.producers.find((/** @type {ProducerStats} */ p) => p.producer_id === cam));
    const pMic = mic ? ps.producers.find((/** @type {ProducerStats} */ p) => p.producer_id === mic) : null;
    const cCam = s.consumers.find((/** @type {ConsumerStats} */ c) => c.producer_id === cam);
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
      (st) =>
        [cam, mic]
          .filter(Boolean)
          .every((id) => st.consumers.filter((/** @type {ConsumerStats} */ c) => c.producer_id === id).every((/** @type {ConsumerStats} */ c) => c.closed)),
      5_000,
      25,
      `consumers of ${pubName} closed`,
    );
    row.ok = true;
  } catch (err) {
    row.ok = false;
    row.error = err instanceof Error ? err.message : String(err);
    log(`  ! ${pubName}: ${row.error}`);
    pub.kill();
    await Promise.race([pub.exited, sleep(2_000)]);
  }
  return row;
}

// ---------------------------------------------------------------- main

/** @type {SfuResults} */
const results = {
  meta: {},
  options: { ...opts, out: opts.out ?? null },
  rows: [],
  summary: {},
  failures: [],
};

async function main() {
  assertBuilt();
  const started = performance.now();
  results.meta = { ...mediaMeta(), socket_io: packageVersion('socket.io') };
  const perIterMs = 25_000;
  run.watchdog(180_000 + 2 * (opts.iterations + opts.warmup) * perIterMs);
  log(
    `bench-sfu: Node ${process.version}, ${results.meta.cpu_model}, ${os.cpus().length} cores; ${opts.iterations} joins per target after ${opts.warmup} warm-up`,
  );

  const { keyFile, token } = createSigningKey(run.tempDir('sb-bench-sfu-key-'));
  const sbSrv = await startSwitchboard(keyFile, token);
  const blSrv = await startBaselineServer(new Set([sbSrv.webRtcPort]));
  results.meta.servers = {
    switchboard: { ready_ms: sbSrv.readyMs, webrtc_port: sbSrv.webRtcPort },
    baseline: { ready_ms: blSrv.readyMs, webrtc_port: blSrv.webRtcPort },
  };
  const targets = { switchboard: await startSubscriber('switchboard', sbSrv), baseline: await startSubscriber('baseline', blSrv) };
  await sleep(500);

  const total = opts.warmup + opts.iterations;
  results.meta.loadavg_before = loadavg();
  const mc0 = machineCpu();
  for (let i = 0; i < total; i++) {
    const warm = i < opts.warmup;
    /** @type {('switchboard' | 'baseline')[]} */
    const order = i % 2 === 0 ? ['switchboard', 'baseline'] : ['baseline', 'switchboard'];
    const parts = [];
    for (const name of order) {
      const row = await iteration(targets[name], i, warm);
      results.rows.push(row);
      parts.push(
        `${name} ${row.ok ? `${row.connect_to_first_frame_ms}/${row.produce_to_first_frame_ms}/${row.consume_to_first_frame_ms}` : `FAILED (${row.error})`}`,
      );
      if (!row.ok && !warm) results.failures.push(`${name} join ${i}: ${row.error}`);
    }
    log(`  ${warm ? 'warm-up' : 'join'} ${i}: ${parts.join(' | ')}  (connect/produce/consume -> first frame, ms)`);
    for (const t of Object.values(targets)) {
      if (t.srv.proc.exitInfo) throw new Error(`${t.name} server exited during the run: ${JSON.stringify(t.srv.proc.exitInfo)}\n${t.srv.proc.tail()}`);
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
  summarise(results);
  results.ok = results.failures.length === 0;
}

await run.finish({
  main,
  results,
  report: () => {
    // After an abort: summarise what was measured, if anything.
    if (!results.summary.switchboard) {
      try {
        summarise(results);
      } catch {
        /* partial */
      }
    }
    report(results, opts);
  },
  out: opts.out,
});
