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
 *       [--quiet-wait 0] [--quiet-other 40]
 *
 * --quiet-wait S: on a shared machine, before each measurement window wait up to S seconds
 * (1 s samples) until the CPU used by processes other than ours is below --quiet-other %
 * (percent of one core); the "other %" column shows what the window actually saw.
 *
 * Everything is on 127.0.0.1. Bounded: ffmpeg inputs end by themselves (lavfi duration),
 * the sink has a hard timeout, and a global timer aborts the run; ffmpeg processes, the sink
 * and the worker are stopped on every exit path (normal end, error, SIGINT/SIGTERM).
 */
import { spawn, fork, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ROOT, cpuModel, cpuTicks, statusKb } from './bench-lib.mjs';

const SINK = path.join(ROOT, 'scripts', 'bench-worker-capacity-sink.mjs');
const require = createRequire(path.join(ROOT, 'package.json'));
const mediasoup = require('mediasoup');

// ---------------------------------------------------------------- options

const USAGE =
  'usage: node scripts/bench-worker-capacity.mjs [--steps 0,50,100,200,400,600,800] [--producers 2]\n' +
  '          [--no-audio] [--srtp] [--settle 2] [--hold 8] [--video-bitrate 500 (kbit/s)] [--audio-bitrate 48]\n' +
  '          [--size 640x360] [--fps 30] [--sink-sockets 16] [--sample 10] [--port-min 46000]\n' +
  '          [--quiet-wait 0 (s to wait per step for other load < --quiet-other %)] [--quiet-other 40] [--out FILE]';

let args;
try {
  args = parseArgs({
    options: {
      steps: { type: 'string', default: '0,50,100,200,400,600,800' },
      producers: { type: 'string', default: '2' },
      'no-audio': { type: 'boolean', default: false },
      srtp: { type: 'boolean', default: false },
      settle: { type: 'string', default: '2' },
      hold: { type: 'string', default: '8' },
      'video-bitrate': { type: 'string', default: '500' },
      'audio-bitrate': { type: 'string', default: '48' },
      size: { type: 'string', default: '640x360' },
      fps: { type: 'string', default: '30' },
      'sink-sockets': { type: 'string', default: '16' },
      sample: { type: 'string', default: '10' },
      'port-min': { type: 'string', default: '46000' },
      'quiet-wait': { type: 'string', default: '0' },
      'quiet-other': { type: 'string', default: '40' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (err) {
  console.error(String(err.message || err));
  console.error(USAGE);
  process.exit(2);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

function int(name, min, max) {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min || v > max) {
    console.error(`--${name} must be an integer in [${min}, ${max}]`);
    process.exit(2);
  }
  return v;
}
function num(name, min, max) {
  const v = Number(args[name]);
  if (!Number.isFinite(v) || v < min || v > max) {
    console.error(`--${name} must be a number in [${min}, ${max}]`);
    process.exit(2);
  }
  return v;
}

const STEPS = args.steps.split(',').map((s) => Number(s.trim()));
if (!STEPS.length || STEPS.some((c) => !Number.isInteger(c) || c < 0 || c > 5000)) {
  console.error('--steps must be a comma-separated list of integers in [0, 5000]');
  process.exit(2);
}
for (let i = 1; i < STEPS.length; i++) {
  if (STEPS[i] < STEPS[i - 1]) {
    console.error('--steps must be non-decreasing (consumers are only added between steps)');
    process.exit(2);
  }
}
const PRODUCERS = int('producers', 1, 8);
const AUDIO = !args['no-audio'];
const SRTP = args.srtp;
const SETTLE_S = num('settle', 0, 60);
const HOLD_S = num('hold', 1, 120);
const VIDEO_KBPS = int('video-bitrate', 50, 10000);
const AUDIO_KBPS = int('audio-bitrate', 8, 256);
const SIZE = args.size;
if (!/^\d+x\d+$/.test(SIZE)) {
  console.error('--size must look like 640x360');
  process.exit(2);
}
const FPS = int('fps', 1, 60);
const SINK_SOCKETS = int('sink-sockets', 1, 256);
const SAMPLE = int('sample', 0, 100);
const PORT_MIN = int('port-min', 1024, 65000);
const QUIET_WAIT_S = num('quiet-wait', 0, 600);
const QUIET_OTHER_PCT = num('quiet-other', 1, 1000);
const MAX_C = STEPS[STEPS.length - 1];
// Producers: 2 ports each (rtcpMux false); consumers: 1 port each (rtcpMux true); + slack.
const PORT_MAX = Math.max(PORT_MIN + 1999, PORT_MIN + 2 * PRODUCERS + MAX_C + 100);
if (PORT_MAX > 65535) {
  console.error(`port range ${PORT_MIN}-${PORT_MAX} exceeds 65535; lower --port-min or the step counts`);
  process.exit(2);
}

const CREATE_CONCURRENCY = 16;
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
// Whole-run bound: per step (consumer creation is ~ms each) + start-up + slack.
const RUN_BOUND_S = Math.ceil(STEPS.length * (SETTLE_S + HOLD_S + QUIET_WAIT_S + 5) + MAX_C * 0.05 + 60);
const FFMPEG_DURATION_S = RUN_BOUND_S + 10;

const VIDEO_PT = 101;
const AUDIO_PT = 100;
const VIDEO_SSRC_BASE = 0x11110000;
const AUDIO_SSRC_BASE = 0x22220000;

// ---------------------------------------------------------------- /proc helpers

/** utime + stime of one process in clock ticks (NaN if gone). */
const procCpuTicks = (pid) => {
  const t = cpuTicks(pid);
  return t ? t.user + t.sys : NaN;
};
/** { user, sys } clock ticks of one process (NaN if gone). */
const procCpuSplit = (pid) => cpuTicks(pid) ?? { user: NaN, sys: NaN };
/** VmRSS of one process in KiB (NaN if gone). */
const procRssKb = (pid) => statusKb(pid, 'VmRSS') ?? NaN;

function machineCpu() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = v;
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { total, idle: idle + iowait, softirq: softirq + irq, steal, busy: total - idle - iowait, user, nice, system };
}

// ---------------------------------------------------------------- cleanup

const children = new Set(); // ffmpeg ChildProcess objects
let sink = null;
let worker = null;
let cleaning = false;

function cleanup() {
  if (cleaning) return;
  cleaning = true;
  for (const cp of children) {
    if (cp.exitCode === null && cp.signalCode === null) {
      try {
        process.kill(cp.pid, 'SIGKILL');
      } catch {}
    }
  }
  if (sink && sink.exitCode === null && sink.signalCode === null) {
    try {
      sink.send({ cmd: 'stop' });
    } catch {}
    const pid = sink.pid;
    setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }, 1000).unref();
  }
  if (worker && !worker.closed) {
    try {
      worker.close();
    } catch {}
  }
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.error(`\n[bench] ${sig}: stopping ffmpeg, sink and worker`);
    cleanup();
    setTimeout(() => process.exit(130), 300);
  });
}
process.on('exit', cleanup);
const globalTimer = setTimeout(() => {
  console.error(`[bench] run exceeded its bound of ${RUN_BOUND_S} s; aborting`);
  cleanup();
  setTimeout(() => process.exit(1), 300);
}, RUN_BOUND_S * 1000);
globalTimer.unref();

// ---------------------------------------------------------------- sink

let snapId = 0;
const snapWaiters = new Map();
function startSink() {
  return new Promise((resolve, reject) => {
    sink = fork(SINK, [String(RUN_BOUND_S + 30)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    sink.on('message', (msg) => {
      if (msg.type === 'ready') resolve(msg.ports);
      else if (msg.type === 'snapshot') {
        const w = snapWaiters.get(msg.id);
        if (w) {
          snapWaiters.delete(msg.id);
          w(msg);
        }
      }
    });
    sink.once('exit', (code) => {
      if (!cleaning) reject(new Error(`sink exited early (code ${code})`));
    });
    sink.send({ cmd: 'start', sockets: SINK_SOCKETS });
  });
}
function sinkSnapshot() {
  return new Promise((resolve) => {
    const id = ++snapId;
    snapWaiters.set(id, resolve);
    sink.send({ cmd: 'snapshot', id });
  });
}

// ---------------------------------------------------------------- ffmpeg

function startFfmpeg(i, video, audio) {
  const [w, h] = SIZE.split('x');
  const a = ['-hide_banner', '-loglevel', 'error', '-nostats', '-nostdin'];
  a.push('-re', '-f', 'lavfi', '-i', `testsrc=size=${w}x${h}:rate=${FPS}:duration=${FFMPEG_DURATION_S}`);
  if (audio) a.push('-re', '-f', 'lavfi', '-i', `sine=frequency=${440 + 110 * i}:sample_rate=48000:duration=${FFMPEG_DURATION_S}`);
  a.push(
    '-map', '0:v', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-threads', '1',
    '-b:v', `${VIDEO_KBPS}k`, '-minrate', `${VIDEO_KBPS}k`, '-maxrate', `${VIDEO_KBPS}k`, '-bufsize', `${VIDEO_KBPS}k`,
    '-g', String(FPS), '-pix_fmt', 'yuv420p',
    '-ssrc', String(video.ssrc), '-payload_type', String(VIDEO_PT), '-pkt_size', '1200',
    '-f', 'rtp', `rtp://127.0.0.1:${video.port}?rtcpport=${video.rtcpPort}&pkt_size=1200`,
  );
  if (audio) {
    a.push(
      '-map', '1:a', '-c:a', 'libopus', '-b:a', `${AUDIO_KBPS}k`, '-ac', '2', '-ar', '48000', '-application', 'voip',
      '-frame_duration', '20',
      '-ssrc', String(audio.ssrc), '-payload_type', String(AUDIO_PT),
      '-f', 'rtp', `rtp://127.0.0.1:${audio.port}?rtcpport=${audio.rtcpPort}`,
    );
  }
  const cp = spawn('ffmpeg', a, { stdio: ['ignore', 'ignore', 'pipe'] });
  cp.stderrTail = '';
  cp.stderr.on('data', (d) => {
    cp.stderrTail = (cp.stderrTail + d.toString()).slice(-2000);
  });
  cp.on('exit', (code, sig) => {
    children.delete(cp);
    if (!cleaning) console.error(`[bench] ffmpeg #${i} exited (code ${code}, signal ${sig}): ${cp.stderrTail.trim()}`);
  });
  cp.on('error', (err) => console.error(`[bench] ffmpeg #${i}: ${err.message}`));
  children.add(cp);
  return cp;
}

// ---------------------------------------------------------------- stats helpers

// Producer.getStats(): inbound-rtp; Consumer.getStats(): outbound-rtp (+ the producer's inbound-rtp).
async function rtpCounts(entity, want) {
  const stats = await entity.getStats();
  let packets = 0;
  let bytes = 0;
  for (const s of stats) {
    if (s.type === want) {
      packets += s.packetCount;
      bytes += s.byteCount;
    }
  }
  return { packets, bytes };
}

function pct(x) {
  return Number.isFinite(x) ? x.toFixed(1) : '-';
}
function fx(x, d = 1) {
  return Number.isFinite(x) ? x.toFixed(d) : '-';
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

  const sinkPorts = await startSink();

  worker = await mediasoup.createWorker({ logLevel: 'warn' });
  worker.on('died', (err) => {
    console.error(`[bench] mediasoup worker died: ${err?.message || err}`);
    cleanup();
    setTimeout(() => process.exit(1), 300);
  });
  const router = await worker.createRouter({
    mediaCodecs: [
      { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
      { kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: {} },
    ],
  });
  const listenInfo = { protocol: 'udp', ip: '127.0.0.1', portRange: { min: PORT_MIN, max: PORT_MAX } };

  // Producers.
  const producers = []; // { producer, kind, ssrc, index }
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
      audio = { ssrc: assrc, port: at.tuple.localPort, rtcpPort: at.rtcpTuple.localPort };
    }
    ffmpegs.push(
      startFfmpeg(i, { ssrc: vssrc, port: vt.tuple.localPort, rtcpPort: vt.rtcpTuple.localPort }, audio),
    );
  }

  // Wait until every producer receives media.
  const waitUntil = Date.now() + 15000;
  for (;;) {
    const counts = await Promise.all(producers.map((p) => p.producer.getStats()));
    if (counts.every((st) => st.some((s) => s.type === 'inbound-rtp' && s.packetCount > 0))) break;
    if (Date.now() > waitUntil) throw new Error('producers received no RTP from ffmpeg within 15 s');
    await sleep(200);
  }
  await sleep(2000); // let the encoders reach steady state

  const consumers = []; // { consumer, transport, prod, ssrc }
  let nextPort = 0;
  let reserved = 0; // indices are reserved synchronously so concurrent creations don't collide
  async function addConsumer() {
    const idx = reserved++;
    const prod = producers[idx % producers.length];
    const tOpts = { listenInfo, rtcpMux: true, comedia: false };
    if (SRTP) Object.assign(tOpts, { enableSrtp: true, srtpCryptoSuite: 'AES_CM_128_HMAC_SHA1_80' });
    const transport = await router.createPlainTransport(tOpts);
    const cOpts = { ip: '127.0.0.1', port: sinkPorts[nextPort++ % sinkPorts.length] };
    if (SRTP) cOpts.srtpParameters = { cryptoSuite: 'AES_CM_128_HMAC_SHA1_80', keyBase64: randomBytes(30).toString('base64') };
    await transport.connect(cOpts);
    const consumer = await transport.consume({
      producerId: prod.producer.id,
      rtpCapabilities: router.rtpCapabilities,
      paused: false,
    });
    const entry = { consumer, transport, prod, ssrc: consumer.rtpParameters.encodings[0].ssrc };
    consumers[idx] = entry;
    return entry;
  }
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
  const header = {
    date: started.toISOString(),
    machine: { cpuModel: cpuModel(), cpus: cpuCount, memGb: +(os.totalmem() / 2 ** 30).toFixed(1), kernel: os.release() },
    node: process.version,
    mediasoup: mediasoup.version,
    ffmpeg: (() => {
      try {
        return execFileSync('ffmpeg', ['-version'], { encoding: 'utf8' }).split('\n')[0];
      } catch {
        return null;
      }
    })(),
    config: {
      steps: STEPS, producers: PRODUCERS, audio: AUDIO, srtp: SRTP, settleS: SETTLE_S, holdS: HOLD_S,
      videoKbps: VIDEO_KBPS, audioKbps: AUDIO_KBPS, size: SIZE, fps: FPS, sinkSockets: SINK_SOCKETS,
      sample: SAMPLE, portRange: [PORT_MIN, PORT_MAX], clkTck: CLK_TCK,
    },
    backgroundBusyPctBeforeStart: +backgroundBusyPct.toFixed(1),
  };
  console.log(
    `[bench] ${header.machine.cpuModel}, ${cpuCount} CPUs; node ${process.version}; mediasoup ${mediasoup.version}; ` +
      `worker pid ${workerPid}; ${PRODUCERS} producer transport(s) x (VP8 ${VIDEO_KBPS}k${AUDIO ? ` + Opus ${AUDIO_KBPS}k` : ''}); ` +
      `consumers: PlainTransport rtcpMux${SRTP ? ' + SRTP AES_CM_128_HMAC_SHA1_80' : ', no SRTP'}; ` +
      `machine busy before start: ${backgroundBusyPct.toFixed(0)}% of ${cpuCount * 100}%`,
  );

  const results = [];
  for (const target of STEPS) {
    const tc0 = performance.now();
    await growTo(target);
    const createMs = performance.now() - tc0;
    await sleep(SETTLE_S * 1000);

    const sampleIdx = [];
    if (consumers.length && SAMPLE) {
      const n = Math.min(SAMPLE, consumers.length);
      for (let k = 0; k < n; k++) sampleIdx.push(Math.floor((k * consumers.length) / n));
    }
    const snap = async () => {
      const [sinkS, prodS, sampS] = await Promise.all([
        sinkSnapshot(),
        Promise.all(producers.map((p) => rtpCounts(p.producer, 'inbound-rtp'))),
        Promise.all(sampleIdx.map((i) => rtpCounts(consumers[i].consumer, 'outbound-rtp'))),
      ]);
      return {
        t: performance.now(),
        worker: procCpuTicks(workerPid),
        workerSplit: procCpuSplit(workerPid),
        ffmpeg: ffPids.map(procCpuTicks),
        sinkCpu: procCpuTicks(sink.pid),
        self: process.cpuUsage(),
        machine: machineCpu(),
        sink: sinkS,
        prod: prodS,
        samp: sampS,
      };
    };
    let quietWaitedS = 0;
    if (QUIET_WAIT_S > 0) {
      const ours = () =>
        procCpuTicks(workerPid) + ffPids.map(procCpuTicks).reduce((x, y) => x + (y || 0), 0) + procCpuTicks(sink.pid);
      const t0 = performance.now();
      for (;;) {
        const m0 = machineCpu();
        const o0 = ours();
        const s0 = process.cpuUsage();
        await sleep(1000);
        const m1 = machineCpu();
        const s1 = process.cpuUsage();
        const selfTicks = ((s1.user + s1.system - s0.user - s0.system) / 1e6) * CLK_TCK;
        const other = (100 * cpuCount * (m1.busy - m0.busy - (ours() - o0) - selfTicks)) / (m1.total - m0.total);
        quietWaitedS = (performance.now() - t0) / 1000;
        if (other < QUIET_OTHER_PCT || quietWaitedS >= QUIET_WAIT_S) break;
      }
    }
    const a = await snap();
    await sleep(HOLD_S * 1000);
    const b = await snap();
    const wall = (b.t - a.t) / 1000;
    const ticksPct = (d) => (100 * d) / CLK_TCK / wall;

    const workerCpuPct = ticksPct(b.worker - a.worker);
    const workerUserPct = ticksPct(b.workerSplit.user - a.workerSplit.user);
    const workerSysPct = ticksPct(b.workerSplit.sys - a.workerSplit.sys);
    const ffmpegCpuPct = ticksPct(b.ffmpeg.reduce((s, v) => s + v, 0) - a.ffmpeg.reduce((s, v) => s + v, 0));
    const sinkCpuPct = ticksPct(b.sinkCpu - a.sinkCpu);
    const selfCpuPct = (100 * (b.self.user + b.self.system - a.self.user - a.self.system)) / 1e6 / wall;
    const mTotal = b.machine.total - a.machine.total;
    const machineBusyPct = (100 * cpuCount * (b.machine.busy - a.machine.busy)) / mTotal;
    const machineSoftirqPct = (100 * cpuCount * (b.machine.softirq - a.machine.softirq)) / mTotal;
    const otherCpuPct = machineBusyPct - workerCpuPct - ffmpegCpuPct - sinkCpuPct - selfCpuPct;

    // All RTP the sink got (incl. mediasoup's bandwidth-probation packets, SSRC 1234) ...
    const sinkAllPps = (b.sink.rtpPackets - a.sink.rtpPackets) / wall;
    const sinkMbps = (8 * (b.sink.rtpBytes - a.sink.rtpBytes)) / wall / 1e6;
    const sinkRtcpPps = (b.sink.rtcpPackets - a.sink.rtcpPackets) / wall;
    const perA = new Map(a.sink.perSsrc);
    const perB = new Map(b.sink.perSsrc);
    const cSsrcs = new Set(consumers.map((c) => c.ssrc));
    let receiving = 0;
    let consumerPackets = 0;
    for (const c of consumers) {
      const d = (perB.get(c.ssrc) || 0) - (perA.get(c.ssrc) || 0);
      consumerPackets += d;
      if (d > 0) receiving++;
    }
    // ... and the media packets only (consumers' own SSRCs), used for delivery and CPU/packet.
    const sinkPps = consumerPackets / wall;
    let foreignSsrcs = 0;
    let foreignPackets = 0;
    for (const [ssrc, n] of perB) {
      if (cSsrcs.has(ssrc)) continue;
      foreignSsrcs++;
      foreignPackets += n - (perA.get(ssrc) || 0);
    }

    const prodPps = producers.map((p, k) => (b.prod[k].packets - a.prod[k].packets) / wall);
    const prodKbps = producers.map((p, k) => (8 * (b.prod[k].bytes - a.prod[k].bytes)) / wall / 1000);
    const prodIndex = new Map(producers.map((p, k) => [p.producer.id, k]));
    const expectedPps = consumers.reduce((s, c) => s + prodPps[prodIndex.get(c.prod.producer.id)], 0);

    const kindDelivery = {};
    for (const kind of ['video', 'audio']) {
      let exp = 0;
      let got = 0;
      for (const c of consumers) {
        if (c.prod.kind !== kind) continue;
        exp += prodPps[prodIndex.get(c.prod.producer.id)];
        got += ((perB.get(c.ssrc) || 0) - (perA.get(c.ssrc) || 0)) / wall;
      }
      kindDelivery[kind] = exp > 0 ? +(got / exp).toFixed(4) : null;
    }
    let sampStatsPps = 0;
    let sampSinkPps = 0;
    sampleIdx.forEach((ci, k) => {
      sampStatsPps += (b.samp[k].packets - a.samp[k].packets) / wall;
      const ssrc = consumers[ci].ssrc;
      sampSinkPps += ((perB.get(ssrc) || 0) - (perA.get(ssrc) || 0)) / wall;
    });

    const C = consumers.length;
    const row = {
      consumers: C,
      videoConsumers: consumers.filter((c) => c.prod.kind === 'video').length,
      audioConsumers: consumers.filter((c) => c.prod.kind === 'audio').length,
      createMs: Math.round(createMs),
      wallS: +wall.toFixed(2),
      sinkRtpPps: Math.round(sinkPps),
      sinkAllRtpPps: Math.round(sinkAllPps),
      sinkMbps: +sinkMbps.toFixed(2),
      otherSsrcPps: +(foreignPackets / wall).toFixed(1),
      sinkRtcpPps: Math.round(sinkRtcpPps),
      expectedPps: Math.round(expectedPps),
      deliveryRatio: expectedPps > 0 ? +(sinkPps / expectedPps).toFixed(4) : null,
      deliveryRatioByKind: kindDelivery,
      quietWaitedS: +quietWaitedS.toFixed(1),
      consumersReceiving: receiving,
      foreignSsrcs,
      sampleConsumers: sampleIdx.length,
      sampleStatsPps: +sampStatsPps.toFixed(1),
      sampleSinkPps: +sampSinkPps.toFixed(1),
      workerCpuPct: +workerCpuPct.toFixed(1),
      workerUserPct: +workerUserPct.toFixed(1),
      workerSysPct: +workerSysPct.toFixed(1),
      workerRssMb: +(procRssKb(workerPid) / 1024).toFixed(1),
      ffmpegCpuPct: +ffmpegCpuPct.toFixed(1),
      sinkCpuPct: +sinkCpuPct.toFixed(1),
      benchCpuPct: +selfCpuPct.toFixed(1),
      machineBusyPct: +machineBusyPct.toFixed(1),
      machineSoftirqPct: +machineSoftirqPct.toFixed(1),
      otherCpuPct: +otherCpuPct.toFixed(1),
      producerPps: prodPps.map((v) => +v.toFixed(1)),
      producerKbps: prodKbps.map((v) => +v.toFixed(1)),
    };
    results.push(row);
    console.log(
      `[bench] C=${C} (created in ${row.createMs} ms): sink ${row.sinkRtpPps} pkt/s (${fx(sinkMbps, 1)} Mbit/s, ` +
        `delivery ${row.deliveryRatio ?? '-'}, ${receiving}/${C} receiving), worker ${pct(workerCpuPct)}% RSS ${row.workerRssMb} MB, ` +
        `ffmpeg ${pct(ffmpegCpuPct)}%, sink ${pct(sinkCpuPct)}%, bench ${pct(selfCpuPct)}%, machine ${pct(machineBusyPct)}%/${cpuCount * 100}% ` +
        `(other ${pct(otherCpuPct)}%)`,
    );
  }

  // ---------------------------------------------------------------- derived + fit
  const base = results.find((r) => r.consumers === 0) ?? null;
  const baseCpu = base ? base.workerCpuPct : 0;
  for (const r of results) {
    const cpuFrac = r.workerCpuPct / 100;
    r.cpuMsPerSecPerConsumer = r.consumers ? +((10 * r.workerCpuPct) / r.consumers).toFixed(3) : null;
    r.marginalCpuMsPerSecPerConsumer = r.consumers ? +((10 * (r.workerCpuPct - baseCpu)) / r.consumers).toFixed(3) : null;
    r.packetsPerWorkerCpuSecond = cpuFrac > 0 && r.consumers ? Math.round(r.sinkRtpPps / cpuFrac) : null;
    r.usPerPacket = r.sinkRtpPps > 0 ? +((1e6 * (r.workerCpuPct - baseCpu)) / 100 / r.sinkRtpPps).toFixed(2) : null;
  }
  const pts = results.map((r) => [r.consumers, r.workerCpuPct]);
  let fit = null;
  if (new Set(pts.map((p) => p[0])).size >= 2) {
    const n = pts.length;
    const mx = pts.reduce((s, p) => s + p[0], 0) / n;
    const my = pts.reduce((s, p) => s + p[1], 0) / n;
    const sxx = pts.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
    const sxy = pts.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0);
    const slope = sxy / sxx;
    const intercept = my - slope * mx;
    const ssTot = pts.reduce((s, p) => s + (p[1] - my) ** 2, 0);
    const ssRes = pts.reduce((s, p) => s + (p[1] - (intercept + slope * p[0])) ** 2, 0);
    const at100 = slope > 0 ? (100 - intercept) / slope : null;
    const reached = results.find((r) => r.workerCpuPct >= 95) ?? null;
    const maxC = Math.max(...results.map((r) => r.consumers));
    fit = {
      interceptPct: +intercept.toFixed(2),
      slopePctPerConsumer: +slope.toFixed(5),
      r2: ssTot > 0 ? +(1 - ssRes / ssTot).toFixed(4) : null,
      consumersAt100Pct: at100 ? Math.round(at100) : null,
      extrapolated: !reached && (at100 ?? Infinity) > maxC,
      firstStepAtOrAbove95Pct: reached ? reached.consumers : null,
      mediasoupGuidanceConsumersPerWorker: 500,
      ratioToGuidance: at100 ? +(at100 / 500).toFixed(2) : null,
    };
  }
  const ffPerProducerPct = results.length
    ? results.reduce((s, r) => s + r.ffmpegCpuPct, 0) / results.length / PRODUCERS
    : null;
  const last = results[results.length - 1];
  const input = producers.map((p, k) => ({
    kind: p.kind,
    ssrc: p.ssrc,
    pps: last?.producerPps[k],
    kbps: last?.producerKbps[k],
  }));

  // ---------------------------------------------------------------- report
  console.log('');
  console.log(
    `mediasoup ${mediasoup.version} worker capacity - ${header.machine.cpuModel} (${cpuCount} CPUs), node ${process.version}; ` +
      `consumers on PlainTransport${SRTP ? ' + SRTP' : ' (no SRTP)'}`,
  );
  console.log(
    'input per producer (last step): ' +
      input.map((p) => `${p.kind} ${fx(p.pps, 1)} pkt/s ${fx(p.kbps, 0)} kbit/s`).join('; ') +
      `; ffmpeg ~${fx(ffPerProducerPct, 1)}% CPU per encoder process`,
  );
  const cols = [
    ['consumers', (r) => String(r.consumers)],
    ['rx pkt/s', (r) => String(r.sinkRtpPps)],
    ['Mbit/s', (r) => fx(r.sinkMbps, 1)],
    ['probe pkt/s', (r) => fx(r.otherSsrcPps, 0)],
    ['deliv %', (r) => (r.deliveryRatio == null ? '-' : (100 * r.deliveryRatio).toFixed(1))],
    ['stats/sink', (r) => (r.sampleSinkPps > 0 ? (r.sampleStatsPps / r.sampleSinkPps).toFixed(3) : '-')],
    ['worker CPU %', (r) => pct(r.workerCpuPct)],
    ['usr/sys', (r) => `${pct(r.workerUserPct)}/${pct(r.workerSysPct)}`],
    ['ms CPU/s/cons', (r) => fx(r.cpuMsPerSecPerConsumer, 3)],
    ['marginal', (r) => fx(r.marginalCpuMsPerSecPerConsumer, 3)],
    ['kpkt/CPU-s', (r) => (r.packetsPerWorkerCpuSecond ? (r.packetsPerWorkerCpuSecond / 1000).toFixed(1) : '-')],
    ['RSS MB', (r) => fx(r.workerRssMb, 1)],
    ['ffmpeg %', (r) => pct(r.ffmpegCpuPct)],
    ['sink %', (r) => pct(r.sinkCpuPct)],
    ['machine %', (r) => `${pct(r.machineBusyPct)}/${cpuCount * 100}`],
    ['other %', (r) => pct(r.otherCpuPct)],
  ];
  const table = [cols.map((c) => c[0]), ...results.map((r) => cols.map((c) => c[1](r)))];
  const widths = cols.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const [i, row] of table.entries()) {
    console.log(row.map((v, k) => v.padStart(widths[k])).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  if (fit) {
    console.log(
      `fit: worker CPU % = ${fit.interceptPct} + ${fit.slopePctPerConsumer} x consumers (R^2 ${fit.r2}) -> ` +
        `~${fit.consumersAt100Pct} consumers at 100% of one core` +
        (fit.firstStepAtOrAbove95Pct != null
          ? ` (>= 95% measured at C=${fit.firstStepAtOrAbove95Pct})`
          : fit.extrapolated
            ? ' (EXTRAPOLATED: not reached in the measured steps)'
            : '') +
        `; mediasoup's guidance ~500 consumers/worker -> ratio ${fit.ratioToGuidance}`,
    );
  }
  console.log(
    'notes: "ms CPU/s/cons" = worker CPU per consumer (total / C); "marginal" subtracts the C=0 step; ' +
      '"stats/sink" = consumer.getStats() packet delta / sink count on sampled consumers; ' +
      '"rx pkt/s" counts consumers\' SSRCs only, "probe pkt/s" other SSRCs (mediasoup bandwidth probation, SSRC 1234); ' +
      '"other %" = machine busy minus worker, ffmpeg, sink and this process (other tenants, kernel softirq not charged to them).',
  );

  const out = { ...header, producers: input, results, fit, ffmpegCpuPctPerEncoder: ffPerProducerPct };
  if (args.out) {
    writeFileSync(args.out, JSON.stringify(out, null, 2) + '\n');
    console.log(`[bench] wrote ${args.out}`);
  }
  return out;
}

main()
  .then(() => {
    cleanup();
    setTimeout(() => process.exit(0), 300);
  })
  .catch((err) => {
    console.error('[bench] failed:', err?.stack || err);
    cleanup();
    setTimeout(() => process.exit(1), 300);
  });
