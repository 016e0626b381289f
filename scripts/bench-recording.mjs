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
 *        (--help describes them)
 *
 * A scenario is N or N@WxHxFPS (default 320x240x15, the harness default). Needs a build.
 * Bounded: every wait has a timeout, the whole run a watchdog. Server (own process group,
 * SIGTERM then SIGKILL), ffmpeg and mediasoup-worker leftovers, peers and temp dirs are
 * cleaned up on every exit path. Exit code 1 on failure.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readlinkSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MediaPeer, mediaMeta } from './lib/media-peer.mjs';
import { OUT_OPTION, integerIn, parseOptions } from './lib/options.mjs';
import { BenchRun } from './lib/runner.mjs';
import { assertBuilt, startMediaSwitchboard } from './lib/servers.mjs';
import { r1 } from './lib/stats.mjs';
import { childPids, comm, isAlive, loadavg } from './lib/system.mjs';
import { createSigningKey } from './lib/tokens.mjs';
import { ffprobe, measureWindow } from './recording/measure.mjs';
import { report, summarise } from './recording/report.mjs';

/** @typedef {import('./lib/servers.mjs').MediaServer} MediaServer */
/** @typedef {import('./lib/tokens.mjs').MintToken} MintToken */
/** @typedef {import('./recording/report.mjs').ScenarioRow} ScenarioRow */
/** @typedef {import('./recording/report.mjs').RecordingResults} RecordingResults */
/** @typedef {{ n: number, width: number, height: number, fps: number, label: string }} Scenario */

const START_TIMEOUT_MS = 30_000;
const PEER_READY_TIMEOUT_MS = 20_000;

// ---------------------------------------------------------------- options

const { values: o, fail } = parseOptions('node scripts/bench-recording.mjs', {
  scenarios: { type: 'string', default: '1,2,4,1@640x360x30', arg: 'LIST', help: 'scenarios: N recorded participants, or N@WxHxFPS (else 320x240 at 15 fps)' },
  'settle-ms': { type: 'integer', default: 3000, min: 0, max: 60_000, arg: 'MS', help: 'media flowing before the first window' },
  'window-ms': { type: 'integer', default: 10_000, min: 1_000, max: 120_000, arg: 'MS', help: 'each of the windows before, with and after recording' },
  'rec-warmup-ms': { type: 'integer', default: 2000, min: 0, max: 60_000, arg: 'MS', help: 'recording before its window starts' },
  'consume-all': { type: 'boolean', help: 'the peers consume each other too' },
  out: OUT_OPTION,
});

/**
 * @param {string} raw
 * @returns {Scenario[]}
 */
function parseScenarios(raw) {
  return raw.split(',').map((s) => {
    const m = /^(\d+)(?:@(\d+)x(\d+)x(\d+))?$/.exec(s.trim());
    if (!m) return fail(`bad scenario ${JSON.stringify(s)} (N or N@WxHxFPS)`);
    /** @param {string | undefined} v @param {number} min @param {number} max */
    const int = (v, min, max) => integerIn('scenarios', String(v), min, max, fail);
    const n = int(m[1], 1, 16);
    const [width, height, fps] = m[2] ? [int(m[2], 16, 1920), int(m[3], 16, 1080), int(m[4], 1, 60)] : [320, 240, 15];
    return { n, width, height, fps, label: `${n} x ${width}x${height}@${fps}` };
  });
}
const opts = {
  scenarios: parseScenarios(o.scenarios),
  settleMs: o['settle-ms'],
  windowMs: o['window-ms'],
  recWarmupMs: o['rec-warmup-ms'],
  consumeAll: o['consume-all'],
  out: o.out ? path.resolve(o.out) : undefined,
};

// ---------------------------------------------------------------- server and peers

const run = new BenchRun({ doing: 'stopping peers and server, cleaning up...' });
/** @param {string} msg */
const log = (msg) => console.error(msg);

/** @param {string} name */
const newPeer = (name) => new MediaPeer(run, name, { log, readyTimeoutMs: PEER_READY_TIMEOUT_MS, pollMs: 50 });

/**
 * The server, with exactly one mediasoup worker.
 * @param {string} keyFile
 */
async function startServer(keyFile) {
  const srv = await startMediaSwitchboard(run, {
    name: 'switchboard',
    dataDir: run.tempDir('sb-bench-rec-'),
    keyFile,
    tailBytes: 16384,
    extra: process.env.FFMPEG_PATH ? { FFMPEG_PATH: process.env.FFMPEG_PATH } : {},
  });
  if (srv.workerPids.length !== 1) throw new Error(`expected 1 mediasoup worker child, found ${srv.workerPids.length}`);
  const workerPid = /** @type {number} */ (srv.workerPids[0]);
  log(`  server: ready in ${srv.readyMs} ms, ${srv.url}, WebRTC 127.0.0.1:${srv.webRtcPort}, mediasoup-worker pid ${workerPid}`);
  return { ...srv, workerPid };
}
/** @typedef {Awaited<ReturnType<typeof startServer>>} Server */

/**
 * The server's ffmpeg children now, remembered (killed if they outlive it).
 * @param {Server} srv
 */
function ffmpegChildren(srv) {
  return srv.proc.remember(childPids(srv.proc.pid).filter((pid) => comm(pid) === 'ffmpeg')).sort((a, b) => a - b);
}

// ---------------------------------------------------------------- one scenario

/**
 * One scenario: N publishing peers, windows A (no recording), B (recording), C (after).
 * @param {Server} srv
 * @param {Scenario} sc
 * @param {number} index
 * @param {MintToken} token
 */
async function scenario(srv, sc, index, token) {
  const room = `bench-rec-${index}-n${sc.n}-${sc.width}x${sc.height}`;
  /** @type {ScenarioRow} */
  const row = { scenario: sc.label, n: sc.n, width: sc.width, height: sc.height, fps: sc.fps, room };
  /** @type {MediaPeer[]} */
  const list = [];
  const sources = { nodePid: srv.proc.pid, workerPid: srv.workerPid };
  try {
    for (let i = 0; i < sc.n; i++) list.push(newPeer(`${index}-P${i}`));
    await Promise.all(list.map((p) => p.waitReady()));
    // Host first (opens the call), then the others in parallel.
    /** @param {MediaPeer} p @param {number} i */
    const startPeer = (p, i) =>
      p.request(
        'start',
        {
          url: srv.url,
          token: token({ sub: `bench-rec-${index}-${i}`, name: `bench-rec-${index}-${i}`, room, role: i === 0 ? 'host' : 'participant' }),
          room,
          displayName: p.name,
          consumeAll: opts.consumeAll,
          publish: { audio: true, video: true, width: sc.width, height: sc.height, fps: sc.fps },
          maxLifetimeMs: 10 * 60_000,
        },
        START_TIMEOUT_MS,
      );
    const host = /** @type {MediaPeer} */ (list[0]);
    const hostStart = await startPeer(host, 0);
    const rest = await Promise.all(list.slice(1).map((p, j) => startPeer(p, j + 1)));
    const started = [hostStart, ...rest];
    const callId = hostStart.call_id;
    row.call_id = callId;
    row.participants = started.map((s) => s.participant_id);
    /** @param {{ transports: { send: string } }} st */
    const sendConnected = (st) => st.transports.send === 'connected';
    for (const s of started) if (!s.producers.camera || !s.producers.mic) throw new Error(`peer without camera/mic producer: ${JSON.stringify(s.producers)}`);
    // Media flowing: every sender's transport connected and sending bytes.
    await Promise.all(list.map((p) => p.waitFor(sendConnected, 15_000, 100, 'send transport connected')));
    await sleep(opts.settleMs);
    if (ffmpegChildren(srv).length) throw new Error('ffmpeg already running before the recording started');

    log(`  [${sc.label}] window A (no recording), ${opts.windowMs} ms`);
    row.no_recording = await measureWindow(sources, list, [], opts.windowMs);

    const t0 = performance.now();
    const rec = await host.emit('start-recording', { call_id: callId }, 30_000);
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
    row.recording = await measureWindow(sources, list, ff, opts.windowMs);
    const stillAlive = ff.filter(isAlive);
    if (stillAlive.length !== ff.length) throw new Error(`ffmpeg exited during the window: ${ff.filter((p) => !isAlive(p)).join(',')}`);

    const t1 = performance.now();
    const stopped = await host.emit('stop-recording', { call_id: callId }, 30_000);
    row.stop_recording_ms = Math.round(performance.now() - t1);
    row.recording_status = stopped.recording?.status ?? null;
    row.recording_wall_s = stopped.recording?.duration ?? null;
    /** @type {import('./recording/report.mjs').RecordedFile[]} */
    const files = (stopped.recording?.files ?? []).map((/** @type {any} */ f) => {
      const abs = path.join(srv.recordingsDir, f.file_path);
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
    row.files = files;
    await sleep(300);
    row.ffmpeg_left_after_stop = ffmpegChildren(srv).length;
    // Window C: recording stopped, same peers: brackets the baseline (drift, other load).
    await sleep(1_000);
    log(`  [${sc.label}] window C (after stop, no recording), ${opts.windowMs} ms`);
    row.after_recording = await measureWindow(sources, list, [], opts.windowMs);
    const problems = [];
    if (files.length !== sc.n) problems.push(`${files.length} files for ${sc.n} participants`);
    for (const f of files) {
      if (!(f.size_bytes > 0)) problems.push(`${f.file}: empty`);
      if (f.status !== 'completed') problems.push(`${f.file}: status ${f.status}`);
      if ('error' in f.probe) problems.push(`${f.file}: ffprobe ${f.probe.error}`);
    }
    if (row.ffmpeg_left_after_stop) problems.push(`${row.ffmpeg_left_after_stop} ffmpeg still running after stop`);
    row.peer_errors = list.reduce((s, p) => s + p.errors.length, 0);
    row.problems = problems;
    row.ok = problems.length === 0;
  } catch (err) {
    row.ok = false;
    row.error = err instanceof Error ? err.message : String(err);
    log(`  ! [${sc.label}] ${row.error}`);
  } finally {
    await Promise.all(list.map((p) => p.stop(5_000).catch(() => p.kill())));
    await sleep(1_000);
  }
  return row;
}

// ---------------------------------------------------------------- main

/** @type {RecordingResults} */
const results = { meta: {}, options: { ...opts, out: opts.out ?? null }, rows: [], failures: [] };

async function main() {
  assertBuilt();
  const started = performance.now();
  results.meta = mediaMeta();
  run.watchdog(120_000 + opts.scenarios.length * (60_000 + 3 * opts.windowMs + opts.settleMs + opts.recWarmupMs));
  log(
    `bench-recording: Node ${process.version}, ${results.meta.cpu_model}, ${os.cpus().length} cores; scenarios ${opts.scenarios.map((s) => s.label).join(', ')}`,
  );

  const { keyFile, token } = createSigningKey(run.tempDir('sb-bench-rec-key-'));
  const srv = await startServer(keyFile);
  results.meta.server_ready_ms = srv.readyMs;
  results.meta.loadavg_before = loadavg();
  for (let i = 0; i < opts.scenarios.length; i++) {
    const sc = /** @type {Scenario} */ (opts.scenarios[i]);
    log(`scenario ${i + 1}/${opts.scenarios.length}: ${sc.label}`);
    const row = await scenario(srv, sc, i, token);
    row.summary = summarise(row);
    results.rows.push(row);
    if (!results.meta.ffmpeg_exe && row.ffmpeg_exe) {
      results.meta.ffmpeg_exe = row.ffmpeg_exe;
      const v = spawnSync(row.ffmpeg_exe, ['-version'], { encoding: 'utf8', timeout: 10_000 });
      results.meta.ffmpeg_version = /^ffmpeg version (\S+)/m.exec(v.stdout ?? '')?.[0] ?? null;
    }
    if (!row.ok) results.failures.push(`${sc.label}: ${row.error ?? row.problems?.join('; ')}`);
    else if (row.summary)
      log(
        `  -> ffmpeg ${row.summary.ffmpeg_cpu_pct_mean}% / ${row.summary.ffmpeg_rss_mib_mean} MiB each; worker ${row.summary.worker_cpu_pct_without}% -> ${row.summary.worker_cpu_pct_with}%`,
      );
    if (srv.proc.exitInfo) throw new Error(`server exited during the run: ${JSON.stringify(srv.proc.exitInfo)}\n${srv.proc.tail()}`);
  }
  results.meta.loadavg_after = loadavg();
  results.meta.server_log_tail = srv.proc.tail().slice(-3000);
  const st = await run.stop(srv.proc);
  results.meta.stop = { stop_ms: Math.round(st.ms), forced: st.forced, exit: srv.proc.exitInfo, leftovers_killed: st.orphans.length };
  results.meta.wall_s = Math.round((performance.now() - started) / 100) / 10;
  results.ok = results.failures.length === 0;
}

await run.finish({ main, results, report: () => report(results, opts), out: opts.out });
