#!/usr/bin/env node
/**
 * Capacity of ONE mediasoup worker (a benchmark, not a test).
 *
 * How many consumers one worker (= one core) forwards, with synthetic RTP:
 *   - P producer PlainTransports (comedia, rtcpMux false), each with a VP8 video producer
 *     and (unless --no-audio) an Opus audio producer, fed in real time by one ffmpeg per
 *     transport (lavfi testsrc -> libvpx, sine -> libopus, -f rtp to 127.0.0.1);
 *   - C consumer PlainTransports (comedia false, rtcpMux true, one consumer each, optional
 *     SRTP with --srtp) connected to UDP sockets of a sink process
 *     (scripts/bench-worker-capacity-sink.mjs) that counts RTP packets/bytes per SSRC;
 *     consumers are spread round-robin over all producers (video and audio alike).
 * For each step C in --steps the consumers are added, then after --settle seconds the
 * script measures for --hold seconds:
 *   - worker CPU % of one core (/proc/<pid>/stat utime+stime delta / wall / CLK_TCK),
 *     worker RSS (/proc/<pid>/status VmRSS),
 *   - RTP packets/s and Mbit/s received by the sink, the share of consumers that received
 *     anything, delivery ratio = sink packets / sum over consumers of their producer's
 *     input packets (producer.getStats() deltas),
 *   - a cross-check on --sample consumers: consumer.getStats() packetCount delta vs the
 *     sink's count for the same SSRC,
 *   - derived: CPU per consumer (ms of CPU per second, total and marginal over C=0) and
 *     packets forwarded per worker CPU-second,
 *   - CPU of the ffmpeg encoders, the sink, this process, and the whole machine
 *     (/proc/stat), so interference on small machines can be judged.
 * At the end: least-squares line worker CPU % = a + b*C -> consumers at 100 % of a core
 * (extrapolated when not reached), compared with mediasoup's guidance ("Scalability" in
 * mediasoup's docs: a worker handles roughly 500 consumers, depending on bitrate etc.).
 *
 *   node scripts/bench-worker-capacity.mjs [--steps 0,50,100,200,400,600,800]
 *       [--producers 2] [--no-audio] [--srtp] [--settle 2] [--hold 8]
 *       [--video-bitrate 500] (kbit/s) [--audio-bitrate 48] [--size 640x360] [--fps 30]
 *       [--sink-sockets 16] [--sample 10] [--port-min 46000] [--out result.json]
 *       [--quiet-wait 0] [--quiet-other 40]          (--help describes them)
 *
 * --quiet-wait S: on a shared machine, before each measurement window wait up to S seconds
 * (1 s samples) until the CPU used by processes other than ours is below --quiet-other %
 * (percent of one core); the "other %" column shows what the window actually saw.
 *
 * Everything is on 127.0.0.1. Bounded: ffmpeg inputs end by themselves (lavfi duration),
 * the sink has a hard timeout, and a global timer aborts the run; ffmpeg processes, the sink
 * and the worker are stopped on every exit path (normal end, error, SIGINT/SIGTERM).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { IpcClient } from './lib/ipc.mjs';
import { parseOptions } from './lib/options.mjs';
import { BenchRun, writeJson } from './lib/runner.mjs';
import { ROOT, clockTicksPerSecond, cpuModel, machineCpu } from './lib/system.mjs';
import { snapshot, stepRow, waitForQuiet } from './worker-capacity/measure.mjs';
import { derive, report } from './worker-capacity/report.mjs';

/** @typedef {import('./worker-capacity/measure.mjs').ProducerEntry} ProducerEntry */
/** @typedef {import('./worker-capacity/measure.mjs').ConsumerEntry} ConsumerEntry */
/** @typedef {import('./worker-capacity/measure.mjs').SinkSnapshot} SinkSnapshot */
/** @typedef {import('./worker-capacity/report.mjs').StepRow} StepRow */

const SINK = path.join(ROOT, 'scripts', 'bench-worker-capacity-sink.mjs');
const require = createRequire(path.join(ROOT, 'package.json'));
const { createWorker, version: mediasoupVersion } = require('mediasoup');

// ---------------------------------------------------------------- options

const { values: args, fail } = parseOptions('node scripts/bench-worker-capacity.mjs', {
  steps: { type: 'integers', default: [0, 50, 100, 200, 400, 600, 800], min: 0, max: 5000, help: 'consumer counts measured, non-decreasing' },
  producers: { type: 'integer', default: 2, min: 1, max: 8, help: 'producer transports, one ffmpeg each' },
  'no-audio': { type: 'boolean', help: 'video producers only' },
  srtp: { type: 'boolean', help: 'SRTP on the consumer transports' },
  settle: { type: 'number', default: 2, min: 0, max: 60, arg: 'S', help: 'seconds after adding consumers before measuring' },
  hold: { type: 'number', default: 8, min: 1, max: 120, arg: 'S', help: 'seconds measured per step' },
  'video-bitrate': { type: 'integer', default: 500, min: 50, max: 10_000, arg: 'KBPS', help: 'video per producer, kbit/s' },
  'audio-bitrate': { type: 'integer', default: 48, min: 8, max: 256, arg: 'KBPS', help: 'audio per producer, kbit/s' },
  size: { type: 'string', default: '640x360', arg: 'WxH', help: 'video size' },
  fps: { type: 'integer', default: 30, min: 1, max: 60, help: 'video frame rate' },
  'sink-sockets': { type: 'integer', default: 16, min: 1, max: 256, help: 'UDP sockets of the sink the consumers send to' },
  sample: { type: 'integer', default: 10, min: 0, max: 100, help: "consumers whose own stats are checked against the sink's count" },
  'port-min': { type: 'integer', default: 46000, min: 1024, max: 65000, arg: 'PORT', help: "lowest of the worker's UDP ports" },
  'quiet-wait': {
    type: 'number',
    default: 0,
    min: 0,
    max: 600,
    arg: 'S',
    help: 'wait up to S s per step for the load of other processes to drop below --quiet-other',
  },
  'quiet-other': { type: 'number', default: 40, min: 1, max: 1000, arg: 'PCT', help: "other processes' CPU, % of one core, that counts as quiet" },
  out: { type: 'string', arg: 'FILE', help: 'also write the results as JSON to FILE' },
});

const STEPS = args.steps;
for (let i = 1; i < STEPS.length; i++) {
  if (/** @type {number} */ (STEPS[i]) < /** @type {number} */ (STEPS[i - 1])) fail('--steps must be non-decreasing (consumers are only added between steps)');
}
const PRODUCERS = args.producers;
const AUDIO = !args['no-audio'];
const SRTP = args.srtp;
const SETTLE_S = args.settle;
const HOLD_S = args.hold;
const VIDEO_KBPS = args['video-bitrate'];
const AUDIO_KBPS = args['audio-bitrate'];
const SIZE = args.size;
if (!/^\d+x\d+$/.test(SIZE)) fail('--size must look like 640x360');
const FPS = args.fps;
const SINK_SOCKETS = args['sink-sockets'];
const SAMPLE = args.sample;
const PORT_MIN = args['port-min'];
const QUIET_WAIT_S = args['quiet-wait'];
const QUIET_OTHER_PCT = args['quiet-other'];
const MAX_C = /** @type {number} */ (STEPS[STEPS.length - 1]);
// Producers: 2 ports each (rtcpMux false); consumers: 1 port each (rtcpMux true); + slack.
const PORT_MAX = Math.max(PORT_MIN + 1999, PORT_MIN + 2 * PRODUCERS + MAX_C + 100);
if (PORT_MAX > 65535) fail(`port range ${PORT_MIN}-${PORT_MAX} exceeds 65535; lower --port-min or the step counts`);

const CREATE_CONCURRENCY = 16;
const CLK_TCK = clockTicksPerSecond();
// Whole-run bound: per step (consumer creation is ~ms each) + start-up + slack.
const RUN_BOUND_S = Math.ceil(STEPS.length * (SETTLE_S + HOLD_S + QUIET_WAIT_S + 5) + MAX_C * 0.05 + 60);
const FFMPEG_DURATION_S = RUN_BOUND_S + 10;

const VIDEO_PT = 101;
const AUDIO_PT = 100;
const VIDEO_SSRC_BASE = 0x11110000;
const AUDIO_SSRC_BASE = 0x22220000;

// ---------------------------------------------------------------- processes

const run = new BenchRun({ doing: 'stopping ffmpeg, sink and worker' });
run.watchdog(RUN_BOUND_S * 1000);

/** The sink process (scripts/bench-worker-capacity-sink.mjs); resolves with its UDP ports. */
async function startSink() {
  const proc = run.forkNode('sink', SINK, { args: [String(RUN_BOUND_S + 30)], order: 0, stop: { killAfterMs: 1000 } });
  const sink = new IpcClient(proc);
  /** @type {number[]} */
  const ports = await sink.request('start', { sockets: SINK_SOCKETS }, 30_000);
  return { proc, ports, snapshot: /** @returns {Promise<SinkSnapshot>} */ () => sink.request('snapshot', {}, 30_000) };
}

// ---------------------------------------------------------------- ffmpeg

/**
 * One encoder: lavfi test video (and a sine tone) in real time, to a producer's RTP ports.
 * @param {number} i
 * @param {{ ssrc: number, port: number, rtcpPort: number }} video
 * @param {{ ssrc: number, port: number, rtcpPort: number } | null} audio
 */
function startFfmpeg(i, video, audio) {
  const [w, h] = SIZE.split('x');
  const a = ['-hide_banner', '-loglevel', 'error', '-nostats', '-nostdin'];
  a.push('-re', '-f', 'lavfi', '-i', `testsrc=size=${w}x${h}:rate=${FPS}:duration=${FFMPEG_DURATION_S}`);
  if (audio) a.push('-re', '-f', 'lavfi', '-i', `sine=frequency=${440 + 110 * i}:sample_rate=48000:duration=${FFMPEG_DURATION_S}`);
  a.push(
    '-map',
    '0:v',
    '-c:v',
    'libvpx',
    '-deadline',
    'realtime',
    '-cpu-used',
    '8',
    '-threads',
    '1',
    '-b:v',
    `${VIDEO_KBPS}k`,
    '-minrate',
    `${VIDEO_KBPS}k`,
    '-maxrate',
    `${VIDEO_KBPS}k`,
    '-bufsize',
    `${VIDEO_KBPS}k`,
    '-g',
    String(FPS),
    '-pix_fmt',
    'yuv420p',
    '-ssrc',
    String(video.ssrc),
    '-payload_type',
    String(VIDEO_PT),
    '-pkt_size',
    '1200',
    '-f',
    'rtp',
    `rtp://127.0.0.1:${video.port}?rtcpport=${video.rtcpPort}&pkt_size=1200`,
  );
  if (audio) {
    a.push(
      '-map',
      '1:a',
      '-c:a',
      'libopus',
      '-b:a',
      `${AUDIO_KBPS}k`,
      '-ac',
      '2',
      '-ar',
      '48000',
      '-application',
      'voip',
      '-frame_duration',
      '20',
      '-ssrc',
      String(audio.ssrc),
      '-payload_type',
      String(AUDIO_PT),
      '-f',
      'rtp',
      `rtp://127.0.0.1:${audio.port}?rtcpport=${audio.rtcpPort}`,
    );
  }
  const proc = run.spawnProgram(`ffmpeg #${i}`, 'ffmpeg', { args: a, tailBytes: 2000, order: 0, stop: { signal: 'SIGKILL', killAfterMs: 1000 } });
  proc.exited.then((e) => {
    if (!run.cleaningUp) console.error(`[bench] ffmpeg #${i} exited (code ${e.code}, signal ${e.signal}): ${e.error ?? proc.tail().trim()}`);
  });
  return proc;
}

// ---------------------------------------------------------------- main

async function main() {
  const started = new Date();
  const cpuCount = os.cpus().length;

  // Background load before we start anything (others may share this machine).
  const bg0 = machineCpu();
  await sleep(1000);
  const bg1 = machineCpu();
  const backgroundBusyPct = (100 * cpuCount * (bg1.busy - bg0.busy)) / (bg1.total - bg0.total);

  const sink = await startSink();

  /** @type {import('mediasoup').types.Worker} */
  const worker = await createWorker({ logLevel: 'warn' });
  run.afterStopping(() => {
    if (!worker.closed) worker.close();
  });
  worker.on('died', (err) => {
    console.error(`[bench] mediasoup worker died: ${err?.message || err}`);
    run.cleanup().finally(() => process.exit(1));
  });
  const router = await worker.createRouter({
    mediaCodecs: [
      { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
      { kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: {} },
    ],
  });
  /** @type {import('mediasoup').types.TransportListenInfo} */
  const listenInfo = { protocol: 'udp', ip: '127.0.0.1', portRange: { min: PORT_MIN, max: PORT_MAX } };

  // Producers.
  /** @type {ProducerEntry[]} */
  const producers = [];
  const ffmpegs = [];
  for (let i = 0; i < PRODUCERS; i++) {
    const vt = await router.createPlainTransport({ listenInfo, rtcpMux: false, comedia: true });
    const vssrc = VIDEO_SSRC_BASE + i;
    const vp = await vt.produce({
      kind: 'video',
      rtpParameters: {
        codecs: [{ mimeType: 'video/VP8', payloadType: VIDEO_PT, clockRate: 90000 }],
        encodings: [{ ssrc: vssrc }],
      },
    });
    producers.push({ producer: vp, kind: 'video', ssrc: vssrc, index: i });
    /** @type {{ ssrc: number, port: number, rtcpPort: number } | null} */
    let audio = null;
    if (AUDIO) {
      const at = await router.createPlainTransport({ listenInfo, rtcpMux: false, comedia: true });
      const assrc = AUDIO_SSRC_BASE + i;
      const ap = await at.produce({
        kind: 'audio',
        rtpParameters: {
          codecs: [{ mimeType: 'audio/opus', payloadType: AUDIO_PT, clockRate: 48000, channels: 2 }],
          encodings: [{ ssrc: assrc }],
        },
      });
      producers.push({ producer: ap, kind: 'audio', ssrc: assrc, index: i });
      audio = { ssrc: assrc, port: at.tuple.localPort, rtcpPort: /** @type {{ localPort: number }} */ (at.rtcpTuple).localPort };
    }
    ffmpegs.push(startFfmpeg(i, { ssrc: vssrc, port: vt.tuple.localPort, rtcpPort: /** @type {{ localPort: number }} */ (vt.rtcpTuple).localPort }, audio));
  }

  // Wait until every producer receives media.
  const waitUntil = Date.now() + 15000;
  for (;;) {
    const counts = await Promise.all(producers.map((p) => p.producer.getStats()));
    if (counts.every((st) => st.some((s) => s.type === 'inbound-rtp' && /** @type {{ packetCount: number }} */ (s).packetCount > 0))) break;
    if (Date.now() > waitUntil) throw new Error('producers received no RTP from ffmpeg within 15 s');
    await sleep(200);
  }
  await sleep(2000); // let the encoders reach steady state

  /** @type {ConsumerEntry[]} */
  const consumers = [];
  let nextPort = 0;
  let reserved = 0; // indices are reserved synchronously so concurrent creations don't collide
  async function addConsumer() {
    const idx = reserved++;
    const prod = /** @type {ProducerEntry} */ (producers[idx % producers.length]);
    /** @type {import('mediasoup').types.PlainTransportOptions} */
    const tOpts = { listenInfo, rtcpMux: true, comedia: false };
    if (SRTP) Object.assign(tOpts, { enableSrtp: true, srtpCryptoSuite: 'AES_CM_128_HMAC_SHA1_80' });
    const transport = await router.createPlainTransport(tOpts);
    /** @type {{ ip: string, port: number, srtpParameters?: import('mediasoup').types.SrtpParameters }} */
    const cOpts = { ip: '127.0.0.1', port: /** @type {number} */ (sink.ports[nextPort++ % sink.ports.length]) };
    if (SRTP) cOpts.srtpParameters = { cryptoSuite: 'AES_CM_128_HMAC_SHA1_80', keyBase64: randomBytes(30).toString('base64') };
    await transport.connect(cOpts);
    const consumer = await transport.consume({
      producerId: prod.producer.id,
      rtpCapabilities: router.rtpCapabilities,
      paused: false,
    });
    const entry = { consumer, transport, prod, ssrc: /** @type {number} */ (consumer.rtpParameters.encodings?.[0]?.ssrc) };
    consumers[idx] = entry;
    return entry;
  }
  /** @param {number} target */
  async function growTo(target) {
    while (reserved < target) {
      const n = Math.min(CREATE_CONCURRENCY, target - reserved);
      const batch = [];
      for (let k = 0; k < n; k++) batch.push(addConsumer());
      await Promise.all(batch);
    }
  }

  const workerPid = worker.pid;
  const ffPids = ffmpegs.map((f) => f.pid);
  /** @type {import('./worker-capacity/measure.mjs').Rig} */
  const rig = { sinkSnapshot: sink.snapshot, sinkPid: sink.proc.pid, workerPid, ffPids, producers, consumers, cpuCount };
  const header = {
    date: started.toISOString(),
    machine: { cpuModel: cpuModel(), cpus: cpuCount, memGb: +(os.totalmem() / 2 ** 30).toFixed(1), kernel: os.release() },
    node: process.version,
    mediasoup: mediasoupVersion,
    ffmpeg: (() => {
      try {
        return execFileSync('ffmpeg', ['-version'], { encoding: 'utf8' }).split('\n')[0];
      } catch {
        return null;
      }
    })(),
    config: {
      steps: STEPS,
      producers: PRODUCERS,
      audio: AUDIO,
      srtp: SRTP,
      settleS: SETTLE_S,
      holdS: HOLD_S,
      videoKbps: VIDEO_KBPS,
      audioKbps: AUDIO_KBPS,
      size: SIZE,
      fps: FPS,
      sinkSockets: SINK_SOCKETS,
      sample: SAMPLE,
      portRange: [PORT_MIN, PORT_MAX],
      clkTck: CLK_TCK,
    },
    backgroundBusyPctBeforeStart: +backgroundBusyPct.toFixed(1),
  };
  console.log(
    `[bench] ${header.machine.cpuModel}, ${cpuCount} CPUs; node ${process.version}; mediasoup ${mediasoupVersion}; ` +
      `worker pid ${workerPid}; ${PRODUCERS} producer transport(s) x (VP8 ${VIDEO_KBPS}k${AUDIO ? ` + Opus ${AUDIO_KBPS}k` : ''}); ` +
      `consumers: PlainTransport rtcpMux${SRTP ? ' + SRTP AES_CM_128_HMAC_SHA1_80' : ', no SRTP'}; ` +
      `machine busy before start: ${backgroundBusyPct.toFixed(0)}% of ${cpuCount * 100}%`,
  );

  /** @type {StepRow[]} */
  const results = [];
  for (const target of STEPS) {
    const tc0 = performance.now();
    await growTo(target);
    const createMs = performance.now() - tc0;
    await sleep(SETTLE_S * 1000);

    /** @type {number[]} */
    const sampleIdx = [];
    if (consumers.length && SAMPLE) {
      const n = Math.min(SAMPLE, consumers.length);
      for (let k = 0; k < n; k++) sampleIdx.push(Math.floor((k * consumers.length) / n));
    }
    const quietWaitedS = QUIET_WAIT_S > 0 ? await waitForQuiet(rig, QUIET_WAIT_S, QUIET_OTHER_PCT) : 0;
    const a = await snapshot(rig, sampleIdx);
    await sleep(HOLD_S * 1000);
    const b = await snapshot(rig, sampleIdx);
    const { row, line } = stepRow(rig, a, b, { createMs, quietWaitedS, sampleIdx });
    results.push(row);
    console.log(line);
  }

  const derived = derive(results, producers, PRODUCERS);
  report(results, derived, { mediasoupVersion, cpuModel: header.machine.cpuModel, cpuCount, srtp: SRTP });
  const out = { ...header, producers: derived.input, results, fit: derived.fit, ffmpegCpuPctPerEncoder: derived.ffPerProducerPct };
  if (args.out) {
    writeJson(args.out, out);
    console.log(`[bench] wrote ${args.out}`);
  }
}

await run.finish({ main, results: { failures: [] } });
