#!/usr/bin/env node
/**
 * Recording cost benchmark for Switchboard (a benchmark, not a test). 127.0.0.1 only.
 *
 * "CPU and RSS of ffmpeg per recorded participant with -c copy, and the extra CPU of the
 * mediasoup worker, for 1, 2 and 4 recorded participants."
 *
 * One real server (dist/server/main.js, embedded database, 1 mediasoup worker, JWT auth,
 * RECORDINGS_DIR in a temp dir) is reused; every scenario gets its own room. Per scenario:
 *   - N publishing peers (server/test/helpers/media-peer.mjs children, mediasoup-client on
 *     @roamhq/wrtc, driven over IPC as in bench-sfu.mjs): audio (Opus, 440 Hz tone) + video
 *     (VP8, synthetic gradient, WxH@fps). Peer 0 holds a `host` token and is the one that
 *     starts/stops the recording (it publishes too, so N recorded participants = N peers).
 *     Peers do NOT consume each other (consumeAll: false) unless --consume-all: the worker
 *     then only receives media, and the recording's PlainTransport consumers are its only
 *     outbound media.
 *   - settle --settle-ms (3 s), then window A (--window-ms, 10 s) without recording;
 *   - host emits `start-recording { call_id }`, wait --rec-warmup-ms (2 s), window B (10 s)
 *     with recording; then `stop-recording`, files checked on disk and with ffprobe;
 *   - window C (10 s) after the stop, same peers, to bracket the baseline: the worker's
 *     extra CPU is B - mean(A, C).
 * In each window: CPU (utime+stime from /proc/<pid>/stat, 10 ms ticks) of the mediasoup
 * worker, the server's Node process, every ffmpeg child of the server, every peer, and the
 * whole machine (/proc/stat); ffmpeg RSS (VmRSS, RssAnon) sampled every 250 ms; the peers'
 * sent bytes (RTCPeerConnection stats) for the sent bitrate. CPU % = % of ONE core.
 *
 *   node scripts/bench-recording.mjs [--scenarios 1,2,4,1@640x360x30] [--settle-ms 3000]
 *        [--window-ms 10000] [--rec-warmup-ms 2000] [--consume-all] [--out FILE]
 *
 * A scenario is N or N@WxHxFPS (default 320x240x15, the harness default). Needs a build.
 * Bounded: every wait has a timeout, the whole run a watchdog. Server (own process group,
 * SIGTERM then SIGKILL), ffmpeg and mediasoup-worker leftovers, peers and temp dirs are
 * cleaned up on every exit path. Exit code 1 on failure.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
  killQuietly as killPid,
  loadavg,
  machineCpu,
  machineMeta,
  memTotalGb,
  mintRs256,
  packageVersion,
  spawnNodeProcess,
  statFields,
  switchboardClaims,
  table,
  tempDir as makeTempDir,
  onExitKillAndRemove,
  onTerminationSignals,
} from './bench-lib.mjs';

const PEER = path.join(ROOT, 'server', 'test', 'helpers', 'media-peer.mjs');
const API_KEY = BENCH_API_KEY;
const START_TIMEOUT_MS = 30_000;
const PEER_READY_TIMEOUT_MS = 20_000;
const SERVER_READY_TIMEOUT_MS = 90_000;

// ---------------------------------------------------------------- options

function usage(code) {
  (code ? console.error : console.log)(
    'usage: node scripts/bench-recording.mjs [--scenarios 1,2,4,1@640x360x30] [--settle-ms 3000]\n' +
      '         [--window-ms 10000] [--rec-warmup-ms 2000] [--consume-all] [--out FILE]',
  );
  process.exit(code);
}
let args;
try {
  args = parseArgs({
    options: {
      scenarios: { type: 'string', default: '1,2,4,1@640x360x30' },
      'settle-ms': { type: 'string', default: '3000' },
      'window-ms': { type: 'string', default: '10000' },
      'rec-warmup-ms': { type: 'string', default: '2000' },
      'consume-all': { type: 'boolean', default: false },
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
function parseScenarios(raw) {
  return raw.split(',').map((s) => {
    const m = /^(\d+)(?:@(\d+)x(\d+)x(\d+))?$/.exec(s.trim());
    if (!m) {
      console.error(`bad scenario ${JSON.stringify(s)} (N or N@WxHxFPS)`);
      usage(2);
    }
    const n = int('scenarios', m[1], 1, 16);
    const [width, height, fps] = m[2] ? [int('scenarios', m[2], 16, 1920), int('scenarios', m[3], 16, 1080), int('scenarios', m[4], 1, 60)] : [320, 240, 15];
    return { n, width, height, fps, label: `${n} x ${width}x${height}@${fps}` };
  });
}
const opts = {
  scenarios: parseScenarios(args.scenarios),
  settleMs: int('settle-ms', args['settle-ms'], 0, 60_000),
  windowMs: int('window-ms', args['window-ms'], 1_000, 120_000),
  recWarmupMs: int('rec-warmup-ms', args['rec-warmup-ms'], 0, 60_000),
  consumeAll: args['consume-all'],
  out: args.out ? path.resolve(args.out) : undefined,
};

// ---------------------------------------------------------------- cleanup

const servers = new Set();
const peers = new Set();
const tempDirs = new Set();
const ffmpegSeen = new Map(); // pid -> starttime (to never kill a reused pid)
let cleaningUp = null;
const log = (msg) => console.error(msg);
const tempDir = (prefix) => makeTempDir(prefix, tempDirs);

const startTime = (pid) => statFields(pid)?.[19] ?? null;
/** VmRSS / RssAnon / RssFile in KiB, threads. */
function memOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), threads: kb('Threads') };
  } catch {
    return null;
  }
}

async function stopServer(srv, killAfterMs = 15_000) {
  if (!servers.has(srv)) return null;
  const t0 = performance.now();
  let forced = false;
  if (!srv.exitInfo) {
    killPid(srv.pid, 'SIGTERM');
    const done = await Promise.race([srv.exited.then(() => true), sleep(killAfterMs).then(() => false)]);
    if (!done) {
      forced = true;
      log(`  ! server pid ${srv.pid} still running ${killAfterMs} ms after SIGTERM: SIGKILL to its process group`);
      killPid(-srv.pid);
      killPid(srv.pid);
      await Promise.race([srv.exited, sleep(2_000)]);
    }
  }
  await sleep(300);
  const leftovers = [...srv.workerPids].filter(isAlive);
  for (const [pid, st] of ffmpegSeen) if (isAlive(pid) && startTime(pid) === st && comm(pid) === 'ffmpeg') leftovers.push(pid);
  if (leftovers.length) {
    await sleep(1_000);
    for (const pid of leftovers.filter(isAlive)) {
      log(`  ! killing leftover child pid ${pid} (${comm(pid)})`);
      killPid(pid);
    }
  }
  servers.delete(srv);
  return { stop_ms: Math.round(performance.now() - t0), forced, exit: srv.exitInfo, leftovers_killed: leftovers.length };
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

const termination = onTerminationSignals({ doing: 'stopping peers and server, cleaning up...', cleanup });
onExitKillAndRemove(function* () {
  for (const p of peers) yield p.child.pid;
  for (const s of servers) yield* [-s.pid, s.pid, ...s.workerPids];
  for (const [pid, st] of ffmpegSeen) if (isAlive(pid) && startTime(pid) === st) yield pid;
}, tempDirs);

// ---------------------------------------------------------------- helpers

const r1 = (x) => (x == null || Number.isNaN(x) ? null : Math.round(x * 10) / 10);
const r2 = (x) => (x == null || Number.isNaN(x) ? null : Math.round(x * 100) / 100);
const mean = (xs) => {
  const a = xs.filter((x) => x != null && Number.isFinite(x));
  return a.length ? a.reduce((s, v) => s + v, 0) / a.length : null;
};

// ---------------------------------------------------------------- tokens

let signingKey = null;
let kid = '';
function mintToken(sub, room, role) {
  return mintRs256(signingKey, kid, switchboardClaims({ sub, name: sub, room, role }, 3600, randomUUID()));
}

// ---------------------------------------------------------------- media peer controller (IPC)

class Peer extends MediaPeer {
  constructor(name) {
    super(name, { script: PEER, registry: peers, log, readyTimeoutMs: PEER_READY_TIMEOUT_MS, pollMs: 50 });
  }

  stats(transport = false) {
    return this.request('stats', { transport });
  }

  /** A signaling event with its ack; throws on an error ack. */
  async emit(event, payload, timeoutMs = 20_000) {
    const res = await this.request('emit', { event, payload, timeoutMs }, timeoutMs + 2_000);
    if (!res || res.ok !== true) throw new Error(`[${this.name}] ${event} failed: ${JSON.stringify(res?.error ?? res)}`);
    return res;
  }
}

// ---------------------------------------------------------------- server

let keyFile = '';
let recordingsDir = '';

async function startServer() {
  const port = await freeDualPort(20000, 30000);
  const webRtcPort = await freeDualPort(30000, 40000);
  const dataDir = tempDir('sb-bench-rec-');
  recordingsDir = path.join(dataDir, 'recordings');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? os.tmpdir(),
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    RECORDINGS_DIR: recordingsDir,
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
  if (process.env.FFMPEG_PATH) env.FFMPEG_PATH = process.env.FFMPEG_PATH;
  const t0 = performance.now();
  const srv = spawnNodeProcess('switchboard', MAIN, { env, stdin: 'pipe', tailBytes: 16384 });
  srv.workerPids = new Set();
  servers.add(srv);
  let ready;
  for (;;) {
    if (srv.exitInfo) throw new Error(`server exited (${JSON.stringify(srv.exitInfo)}) before /ready:\n${srv.tail()}`);
    const res = await httpGet(port, '/ready');
    if (res.status === 200) {
      ready = res.text;
      break;
    }
    if (performance.now() - t0 > SERVER_READY_TIMEOUT_MS) throw new Error(`no 200 from /ready within ${SERVER_READY_TIMEOUT_MS} ms:\n${srv.tail()}`);
    await sleep(50);
  }
  srv.readyMs = Math.round(performance.now() - t0);
  srv.ready = ready;
  await sleep(500);
  for (const pid of childPids(srv.pid)) if (comm(pid)?.startsWith('mediasoup-work')) srv.workerPids.add(pid);
  if (srv.workerPids.size !== 1) throw new Error(`expected 1 mediasoup worker child, found ${srv.workerPids.size}`);
  srv.workerPid = [...srv.workerPids][0];
  srv.url = `http://127.0.0.1:${port}`;
  log(`  server: ready in ${srv.readyMs} ms, ${srv.url}, WebRTC 127.0.0.1:${webRtcPort}, mediasoup-worker pid ${srv.workerPid}`);
  return srv;
}

function ffmpegChildren(srv) {
  const out = [];
  for (const pid of childPids(srv.pid)) {
    if (comm(pid) === 'ffmpeg') {
      if (!ffmpegSeen.has(pid)) ffmpegSeen.set(pid, startTime(pid));
      out.push(pid);
    }
  }
  return out.sort((a, b) => a - b);
}

// ---------------------------------------------------------------- measurement

/**
 * One window: CPU deltas of the worker, server node, peers, ffmpegs and the machine; RSS of
 * each ffmpeg every 250 ms; peers' sent bytes (first/last) for the sent bitrate.
 */
async function measureWindow(srv, peerList, ffmpegPids, ms) {
  const sentBytes = async () => {
    const all = await Promise.all(peerList.map((p) => p.stats(true)));
    return all.map((s) => ({ video: s.sendStats?.outbound?.video?.bytes ?? 0, audio: s.sendStats?.outbound?.audio?.bytes ?? 0, now: s.now }));
  };
  const b0 = await sentBytes();
  const snap = () => ({
    t: performance.now(),
    worker: cpuSeconds(srv.workerPid),
    node: cpuSeconds(srv.pid),
    peers: peerList.map((p) => cpuSeconds(p.pid)),
    ffmpeg: ffmpegPids.map((pid) => cpuSeconds(pid)),
    machine: machineCpu(),
  });
  const s0 = snap();
  const rss = ffmpegPids.map(() => []);
  const workerRss = [];
  const perSecondWorker = [];
  let lastSec = { t: s0.t, w: s0.worker };
  const end = s0.t + ms;
  while (performance.now() < end) {
    await sleep(Math.min(250, Math.max(0, end - performance.now())));
    ffmpegPids.forEach((pid, i) => {
      const m = memOf(pid);
      if (m) rss[i].push(m);
    });
    workerRss.push(memOf(srv.workerPid)?.rss ?? null);
    const now = performance.now();
    if (now - lastSec.t >= 1000) {
      const w = cpuSeconds(srv.workerPid);
      perSecondWorker.push(r1(((w - lastSec.w) / ((now - lastSec.t) / 1000)) * 100));
      lastSec = { t: now, w };
    }
  }
  const s1 = snap();
  const b1 = await sentBytes();
  const sec = (s1.t - s0.t) / 1000;
  const pct = (a, b) => (a == null || b == null ? null : r1(((b - a) / sec) * 100));
  const ncores = os.cpus().length;
  return {
    wall_s: r2(sec),
    worker_cpu_pct: pct(s0.worker, s1.worker),
    worker_cpu_pct_per_second: perSecondWorker,
    worker_rss_kib: Math.round(mean(workerRss)),
    server_node_cpu_pct: pct(s0.node, s1.node),
    peers_cpu_pct: s0.peers.map((v, i) => pct(v, s1.peers[i])),
    peers_cpu_pct_total: r1(s0.peers.reduce((acc, v, i) => acc + ((s1.peers[i] - v) / sec) * 100, 0)),
    machine_busy_pct_of_all_cores: r1(((s1.machine.busy - s0.machine.busy) / (s1.machine.total - s0.machine.total)) * 100),
    machine_busy_cores: r2(((s1.machine.busy - s0.machine.busy) / (s1.machine.total - s0.machine.total)) * ncores),
    ffmpeg: ffmpegPids.map((pid, i) => ({
      pid,
      cpu_pct: pct(s0.ffmpeg[i], s1.ffmpeg[i]),
      rss_kib_mean: Math.round(mean(rss[i].map((m) => m.rss))),
      rss_kib_max: Math.max(...rss[i].map((m) => m.rss)),
      rss_anon_kib_mean: Math.round(mean(rss[i].map((m) => m.anon))),
      rss_file_kib_mean: Math.round(mean(rss[i].map((m) => m.file))),
      threads: rss[i].at(-1)?.threads ?? null,
      samples: rss[i].length,
    })),
    peers_sent_kbps: b0.map((b, i) => ({
      video: r1(((b1[i].video - b.video) * 8) / ((b1[i].now - b.now) / 1000) / 1000),
      audio: r1(((b1[i].audio - b.audio) * 8) / ((b1[i].now - b.now) / 1000) / 1000),
    })),
  };
}

function ffprobe(file) {
  const bin = process.env.FFPROBE_PATH ?? 'ffprobe';
  const r = spawnSync(bin, ['-v', 'error', '-count_packets', '-show_entries', 'format=duration,size,bit_rate,format_name:stream=codec_type,codec_name,width,height,nb_read_packets,duration', '-of', 'json', file], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || `exit ${r.status}`).trim().slice(0, 300) };
  const j = JSON.parse(r.stdout);
  const duration = Number(j.format?.duration);
  return {
    format: j.format?.format_name,
    duration_s: Number.isFinite(duration) ? r2(duration) : null,
    size_bytes: Number(j.format?.size),
    bitrate_kbps: Number(j.format?.bit_rate) ? r1(Number(j.format.bit_rate) / 1000) : null,
    streams: (j.streams ?? []).map((s) => ({
      type: s.codec_type,
      codec: s.codec_name,
      ...(s.width ? { width: s.width, height: s.height } : {}),
      packets: Number(s.nb_read_packets),
      ...(s.codec_type === 'video' && Number.isFinite(duration) && duration > 0 ? { fps: r1(Number(s.nb_read_packets) / duration) } : {}),
    })),
  };
}

// ---------------------------------------------------------------- one scenario

async function scenario(srv, sc, index) {
  const room = `bench-rec-${index}-n${sc.n}-${sc.width}x${sc.height}`;
  const row = { scenario: sc.label, n: sc.n, width: sc.width, height: sc.height, fps: sc.fps, room };
  const list = [];
  try {
    for (let i = 0; i < sc.n; i++) list.push(new Peer(`${index}-P${i}`));
    await Promise.all(list.map((p) => p.waitReady()));
    // Host first (opens the call), then the others in parallel.
    const startPeer = (p, i) =>
      p.request(
        'start',
        {
          url: srv.url,
          token: mintToken(`bench-rec-${index}-${i}`, room, i === 0 ? 'host' : 'participant'),
          room,
          displayName: p.name,
          consumeAll: opts.consumeAll,
          publish: { audio: true, video: true, width: sc.width, height: sc.height, fps: sc.fps },
          maxLifetimeMs: 10 * 60_000,
        },
        START_TIMEOUT_MS,
      );
    const hostStart = await startPeer(list[0], 0);
    const rest = await Promise.all(list.slice(1).map((p, j) => startPeer(p, j + 1)));
    const started = [hostStart, ...rest];
    const callId = hostStart.call_id;
    row.call_id = callId;
    row.participants = started.map((s) => s.participant_id);
    for (const s of started) if (!s.producers.camera || !s.producers.mic) throw new Error(`peer without camera/mic producer: ${JSON.stringify(s.producers)}`);
    // Media flowing: every sender's transport connected and sending bytes.
    await Promise.all(
      list.map((p) => p.waitFor((st) => st.transports.send === 'connected', 15_000, 100, 'send transport connected')),
    );
    await sleep(opts.settleMs);
    if (ffmpegChildren(srv).length) throw new Error('ffmpeg already running before the recording started');

    log(`  [${sc.label}] window A (no recording), ${opts.windowMs} ms`);
    row.no_recording = await measureWindow(srv, list, [], opts.windowMs);

    const t0 = performance.now();
    const rec = await list[0].emit('start-recording', { call_id: callId }, 30_000);
    row.start_recording_ms = Math.round(performance.now() - t0);
    row.recording_id = rec.recording_id;
    const ff = ffmpegChildren(srv);
    if (ff.length !== sc.n) throw new Error(`expected ${sc.n} ffmpeg children after start-recording, found ${ff.length}`);
    row.ffmpeg_exe = (() => {
      try {
        return readlinkSync(`/proc/${ff[0]}/exe`);
      } catch {
        return null;
      }
    })();
    await sleep(opts.recWarmupMs);
    log(`  [${sc.label}] window B (recording ${ff.length} ffmpeg), ${opts.windowMs} ms`);
    row.recording = await measureWindow(srv, list, ff, opts.windowMs);
    const stillAlive = ff.filter(isAlive);
    if (stillAlive.length !== ff.length) throw new Error(`ffmpeg exited during the window: ${ff.filter((p) => !isAlive(p)).join(',')}`);

    const t1 = performance.now();
    const stopped = await list[0].emit('stop-recording', { call_id: callId }, 30_000);
    row.stop_recording_ms = Math.round(performance.now() - t1);
    row.recording_status = stopped.recording?.status ?? null;
    row.recording_wall_s = stopped.recording?.duration ?? null;
    row.files = (stopped.recording?.files ?? []).map((f) => {
      const abs = path.join(recordingsDir, f.file_path);
      const onDisk = existsSync(abs) ? statSync(abs).size : 0;
      const probe = onDisk > 0 ? ffprobe(abs) : { error: 'missing or empty' };
      const dur = probe.duration_s ?? (f.duration_ms ? f.duration_ms / 1000 : null);
      return {
        participant_id: f.participant_id,
        status: f.status,
        file: f.file_path,
        size_bytes: onDisk,
        server_size_bytes: f.size_bytes,
        server_duration_ms: f.duration_ms,
        probe,
        kbps: dur ? r1((onDisk * 8) / dur / 1000) : null,
      };
    });
    await sleep(300);
    row.ffmpeg_left_after_stop = ffmpegChildren(srv).length;
    // Window C: recording stopped, same peers: brackets the baseline (drift, other load).
    await sleep(1_000);
    log(`  [${sc.label}] window C (after stop, no recording), ${opts.windowMs} ms`);
    row.after_recording = await measureWindow(srv, list, [], opts.windowMs);
    const problems = [];
    if (row.files.length !== sc.n) problems.push(`${row.files.length} files for ${sc.n} participants`);
    for (const f of row.files) {
      if (!(f.size_bytes > 0)) problems.push(`${f.file}: empty`);
      if (f.status !== 'completed') problems.push(`${f.file}: status ${f.status}`);
      if (f.probe.error) problems.push(`${f.file}: ffprobe ${f.probe.error}`);
    }
    if (row.ffmpeg_left_after_stop) problems.push(`${row.ffmpeg_left_after_stop} ffmpeg still running after stop`);
    row.peer_errors = list.reduce((s, p) => s + p.errors.length, 0);
    row.problems = problems;
    row.ok = problems.length === 0;
  } catch (err) {
    row.ok = false;
    row.error = err?.message ?? String(err);
    log(`  ! [${sc.label}] ${row.error}`);
  } finally {
    await Promise.all(list.map((p) => p.stop(5_000).catch(() => p.kill())));
    await sleep(1_000);
  }
  return row;
}

// ---------------------------------------------------------------- report

const results = { meta: {}, options: { ...opts, out: opts.out ?? null }, rows: [], failures: [] };

function summarise(row) {
  if (!row.recording || !row.no_recording) return null;
  const ff = row.recording.ffmpeg;
  const A = row.no_recording;
  const B = row.recording;
  const C = row.after_recording;
  const base = C ? (A.worker_cpu_pct + C.worker_cpu_pct) / 2 : A.worker_cpu_pct;
  return {
    ffmpeg_cpu_pct_mean: r2(mean(ff.map((f) => f.cpu_pct))),
    ffmpeg_cpu_pct_each: ff.map((f) => f.cpu_pct),
    ffmpeg_rss_mib_mean: r1(mean(ff.map((f) => f.rss_kib_mean)) / 1024),
    ffmpeg_rss_mib_max: r1(Math.max(...ff.map((f) => f.rss_kib_max)) / 1024),
    ffmpeg_rss_anon_mib_mean: r1(mean(ff.map((f) => f.rss_anon_kib_mean)) / 1024),
    ffmpeg_cpu_pct_total: r1(ff.reduce((s, f) => s + f.cpu_pct, 0)),
    worker_cpu_pct_without: A.worker_cpu_pct,
    worker_cpu_pct_with: B.worker_cpu_pct,
    worker_cpu_pct_after: C?.worker_cpu_pct ?? null,
    /** with - mean(before, after) */
    worker_cpu_pct_extra: r1(B.worker_cpu_pct - base),
    worker_cpu_pct_extra_per_participant: r2((B.worker_cpu_pct - base) / row.n),
    node_cpu_pct_without: A.server_node_cpu_pct,
    node_cpu_pct_with: B.server_node_cpu_pct,
    node_cpu_pct_after: C?.server_node_cpu_pct ?? null,
    peers_cpu_pct_each_with: B.peers_cpu_pct,
    peers_cpu_pct_total_without: A.peers_cpu_pct_total,
    peers_cpu_pct_total_with: B.peers_cpu_pct_total,
    machine_busy_cores_without: A.machine_busy_cores,
    machine_busy_cores_with: B.machine_busy_cores,
    sent_video_kbps_mean: r1(mean(B.peers_sent_kbps.map((p) => p.video))),
    sent_audio_kbps_mean: r1(mean(B.peers_sent_kbps.map((p) => p.audio))),
    recorded_kbps_mean: r1(mean((row.files ?? []).map((f) => f.kbps))),
    recorded_duration_s: (row.files ?? []).map((f) => f.probe?.duration_s ?? null),
    recorded_size_kib: (row.files ?? []).map((f) => Math.round(f.size_bytes / 1024)),
    recorded_video_fps: (row.files ?? []).map((f) => f.probe?.streams?.find((s) => s.type === 'video')?.fps ?? null),
  };
}

function report() {
  const m = results.meta;
  const out = [''];
  out.push(`Switchboard recording benchmark  ${m.date}`);
  out.push(`Node ${m.node} | ${m.cpu_model} | ${m.cpu_cores} cores | ${m.mem_total_gb} GB | mediasoup ${m.mediasoup} | ${m.ffmpeg_version ?? 'ffmpeg ?'} (${m.ffmpeg_exe ?? '?'})`);
  out.push(
    `127.0.0.1; 1 mediasoup worker; N publishing wrtc peers (Opus + VP8), peer 0 = host; peers ${opts.consumeAll ? 'consume each other' : 'consume nothing'}; ` +
      `settle ${opts.settleMs / 1000} s, ${opts.windowMs / 1000} s without recording, start, ${opts.recWarmupMs / 1000} s, ${opts.windowMs / 1000} s with, stop, ${opts.windowMs / 1000} s after. CPU % = % of one core; extra = rec - mean(before, after).`,
  );
  out.push('');
  const rows = [];
  for (const r of results.rows) {
    const s = r.summary;
    if (!s) {
      rows.push([r.scenario, 'FAILED', ...Array(10).fill(null)]);
      continue;
    }
    rows.push([
      r.scenario,
      `${s.ffmpeg_cpu_pct_mean} (${s.ffmpeg_cpu_pct_each.join('/')})`,
      `${s.ffmpeg_rss_mib_mean}/${s.ffmpeg_rss_anon_mib_mean}`,
      `${s.worker_cpu_pct_without}/${s.worker_cpu_pct_with}/${s.worker_cpu_pct_after ?? '-'}`,
      s.worker_cpu_pct_extra,
      `${s.node_cpu_pct_without}/${s.node_cpu_pct_with}/${s.node_cpu_pct_after ?? '-'}`,
      s.peers_cpu_pct_total_with,
      `${s.machine_busy_cores_without}/${s.machine_busy_cores_with}`,
      `${s.sent_video_kbps_mean}+${s.sent_audio_kbps_mean}`,
      s.recorded_kbps_mean,
      s.recorded_duration_s.join('/'),
      s.recorded_video_fps.join('/'),
    ]);
  }
  out.push(
    table(
      ['scenario (N x video)', 'ffmpeg CPU% each: mean (all)', 'ffmpeg RSS/anon MiB', 'worker% before/rec/after', 'extra', 'node% before/rec/after', 'peers% (sum)', 'machine cores no/rec', 'sent kbps v+a /peer', 'rec kbps/file', 'file s', 'rec fps'],
      rows,
    ),
  );
  out.push('');
  for (const r of results.rows) {
    if (!r.summary) continue;
    out.push(
      `  ${r.scenario}: files ${r.files.map((f) => `${f.status} ${Math.round(f.size_bytes / 1024)} KiB ${f.probe.duration_s} s [${f.probe.streams.map((s) => s.codec).join('+')}]`).join(', ')}; ` +
        `start-recording ack ${r.start_recording_ms} ms, stop ${r.stop_recording_ms} ms; worker per-second % with rec: ${r.recording.worker_cpu_pct_per_second.join(' ')}`,
    );
  }
  out.push(`Machine: load average ${m.loadavg_before} before, ${m.loadavg_after} after`);
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
  };
  const budgetMs = 120_000 + opts.scenarios.length * (60_000 + 3 * opts.windowMs + opts.settleMs + opts.recWarmupMs);
  setTimeout(() => {
    log(`\nbench: exceeded its ${Math.round(budgetMs / 1000)} s budget; aborting`);
    cleanup().finally(() => process.exit(1));
  }, budgetMs).unref();
  log(`bench-recording: Node ${process.version}, ${results.meta.cpu_model}, ${os.cpus().length} cores; scenarios ${opts.scenarios.map((s) => s.label).join(', ')}`);

  const dir = tempDir('sb-bench-rec-key-');
  ({ keyFile, signingKey, kid } = createSigningKey(dir));

  const srv = await startServer();
  results.meta.server_ready_ms = srv.readyMs;
  results.meta.loadavg_before = loadavg();
  for (let i = 0; i < opts.scenarios.length; i++) {
    const sc = opts.scenarios[i];
    log(`scenario ${i + 1}/${opts.scenarios.length}: ${sc.label}`);
    const row = await scenario(srv, sc, i);
    row.summary = summarise(row);
    results.rows.push(row);
    if (!results.meta.ffmpeg_exe && row.ffmpeg_exe) {
      results.meta.ffmpeg_exe = row.ffmpeg_exe;
      const v = spawnSync(row.ffmpeg_exe, ['-version'], { encoding: 'utf8', timeout: 10_000 });
      results.meta.ffmpeg_version = /^ffmpeg version (\S+)/m.exec(v.stdout ?? '')?.[0] ?? null;
    }
    if (!row.ok) results.failures.push(`${sc.label}: ${row.error ?? row.problems.join('; ')}`);
    else if (row.summary) log(`  -> ffmpeg ${row.summary.ffmpeg_cpu_pct_mean}% / ${row.summary.ffmpeg_rss_mib_mean} MiB each; worker ${row.summary.worker_cpu_pct_without}% -> ${row.summary.worker_cpu_pct_with}%`);
    if (srv.exitInfo) throw new Error(`server exited during the run: ${JSON.stringify(srv.exitInfo)}\n${srv.tail()}`);
  }
  results.meta.loadavg_after = loadavg();
  results.meta.server_log_tail = srv.tail().slice(-3000);
  results.meta.stop = await stopServer(srv);
  results.meta.wall_s = Math.round((performance.now() - started) / 100) / 10;
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
  try {
    report();
  } catch (err) {
    log(`report failed: ${err?.stack ?? err}`);
  }
  if (opts.out) {
    writeFileSync(opts.out, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`JSON written to ${opts.out}`);
  }
  if (!results.ok) exitCode = 1;
  process.exit(exitCode);
}
