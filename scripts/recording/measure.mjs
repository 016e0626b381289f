/**
 * What bench-recording.mjs measures in a window (CPU, RSS, sent bitrate) and how it checks
 * a recorded file (ffprobe).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { mean, r1, r2 } from '../lib/stats.mjs';
import { cpuSeconds, machineCpu } from '../lib/system.mjs';

/** @typedef {import('../lib/media-peer.mjs').MediaPeer} MediaPeer */
/** @typedef {{ rss: number, anon: number, file: number, threads: number }} Mem */

/**
 * VmRSS / RssAnon / RssFile in KiB, threads.
 * @param {number} pid
 * @returns {Mem | null}
 */
function memOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    /** @param {string} k */
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), threads: kb('Threads') };
  } catch {
    return null;
  }
}

/**
 * One window: CPU deltas of the worker, server node, peers, ffmpegs and the machine; RSS of
 * each ffmpeg every 250 ms; peers' sent bytes (first/last) for the sent bitrate. CPU % is of
 * one core.
 * @param {{ nodePid: number, workerPid: number }} srv
 * @param {MediaPeer[]} peerList
 * @param {number[]} ffmpegPids
 * @param {number} ms
 */
export async function measureWindow(srv, peerList, ffmpegPids, ms) {
  const sentBytes = async () => {
    const all = await Promise.all(peerList.map((p) => p.stats(true)));
    return all.map((s) => ({ video: s.sendStats?.outbound?.video?.bytes ?? 0, audio: s.sendStats?.outbound?.audio?.bytes ?? 0, now: s.now }));
  };
  const b0 = await sentBytes();
  const snap = () => ({
    t: performance.now(),
    worker: cpuSeconds(srv.workerPid),
    node: cpuSeconds(srv.nodePid),
    peers: peerList.map((p) => cpuSeconds(p.pid)),
    ffmpeg: ffmpegPids.map((pid) => cpuSeconds(pid)),
    machine: machineCpu(),
  });
  const s0 = snap();
  /** @type {Mem[][]} */
  const rss = ffmpegPids.map(() => []);
  /** @type {(number | null)[]} */
  const workerRss = [];
  /** @type {(number | null)[]} */
  const perSecondWorker = [];
  let lastSec = { t: s0.t, w: s0.worker ?? 0 };
  const end = s0.t + ms;
  while (performance.now() < end) {
    await sleep(Math.min(250, Math.max(0, end - performance.now())));
    ffmpegPids.forEach((pid, i) => {
      const m = memOf(pid);
      if (m) rss[i]?.push(m);
    });
    workerRss.push(memOf(srv.workerPid)?.rss ?? null);
    const now = performance.now();
    if (now - lastSec.t >= 1000) {
      const w = cpuSeconds(srv.workerPid) ?? 0;
      perSecondWorker.push(r1(((w - lastSec.w) / ((now - lastSec.t) / 1000)) * 100));
      lastSec = { t: now, w };
    }
  }
  const s1 = snap();
  const b1 = await sentBytes();
  const sec = (s1.t - s0.t) / 1000;
  /** @param {number | null | undefined} a @param {number | null | undefined} b */
  const pct = (a, b) => (a == null || b == null ? null : r1(((b - a) / sec) * 100));
  const ncores = os.cpus().length;
  /** @param {number} i */
  const samples = (i) => /** @type {Mem[]} */ (rss[i]);
  return {
    wall_s: r2(sec),
    worker_cpu_pct: pct(s0.worker, s1.worker),
    worker_cpu_pct_per_second: perSecondWorker,
    worker_rss_kib: Math.round(/** @type {number} */ (mean(workerRss))),
    server_node_cpu_pct: pct(s0.node, s1.node),
    peers_cpu_pct: s0.peers.map((v, i) => pct(v, s1.peers[i])),
    peers_cpu_pct_total: r1(s0.peers.reduce((/** @type {number} */ acc, v, i) => acc + (((s1.peers[i] ?? 0) - (v ?? 0)) / sec) * 100, 0)),
    machine_busy_pct_of_all_cores: r1(((s1.machine.busy - s0.machine.busy) / (s1.machine.total - s0.machine.total)) * 100),
    machine_busy_cores: r2(((s1.machine.busy - s0.machine.busy) / (s1.machine.total - s0.machine.total)) * ncores),
    ffmpeg: ffmpegPids.map((pid, i) => ({
      pid,
      cpu_pct: pct(s0.ffmpeg[i], s1.ffmpeg[i]),
      rss_kib_mean: Math.round(/** @type {number} */ (mean(samples(i).map((m) => m.rss)))),
      rss_kib_max: Math.max(...samples(i).map((m) => m.rss)),
      rss_anon_kib_mean: Math.round(/** @type {number} */ (mean(samples(i).map((m) => m.anon)))),
      rss_file_kib_mean: Math.round(/** @type {number} */ (mean(samples(i).map((m) => m.file)))),
      threads: samples(i).at(-1)?.threads ?? null,
      samples: samples(i).length,
    })),
    peers_sent_kbps: b0.map((b, i) => {
      const e = /** @type {{ video: number, audio: number, now: number }} */ (b1[i]);
      return {
        video: r1(((e.video - b.video) * 8) / ((e.now - b.now) / 1000) / 1000),
        audio: r1(((e.audio - b.audio) * 8) / ((e.now - b.now) / 1000) / 1000),
      };
    }),
  };
}
/** @typedef {Awaited<ReturnType<typeof measureWindow>>} Window */

/**
 * Format, duration, bitrate and streams of a recorded file, or { error }.
 * @param {string} file
 */
export function ffprobe(file) {
  const bin = process.env.FFPROBE_PATH ?? 'ffprobe';
  const r = spawnSync(
    bin,
    [
      '-v',
      'error',
      '-count_packets',
      '-show_entries',
      'format=duration,size,bit_rate,format_name:stream=codec_type,codec_name,width,height,nb_read_packets,duration',
      '-of',
      'json',
      file,
    ],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || `exit ${r.status}`).trim().slice(0, 300) };
  const j = JSON.parse(r.stdout);
  const duration = Number(j.format?.duration);
  return {
    format: /** @type {string | undefined} */ (j.format?.format_name),
    duration_s: Number.isFinite(duration) ? r2(duration) : null,
    size_bytes: Number(j.format?.size),
    bitrate_kbps: Number(j.format?.bit_rate) ? r1(Number(j.format.bit_rate) / 1000) : null,
    /** @type {{ type: string, codec: string, width?: number, height?: number, packets: number, fps?: number | null }[]} */
    streams: (j.streams ?? []).map((/** @type {any} */ s) => ({
      type: s.codec_type,
      codec: s.codec_name,
      ...(s.width ? { width: s.width, height: s.height } : {}),
      packets: Number(s.nb_read_packets),
      ...(s.codec_type === 'video' && Number.isFinite(duration) && duration > 0 ? { fps: r1(Number(s.nb_read_packets) / duration) } : {}),
    })),
  };
}
/** @typedef {ReturnType<typeof ffprobe>} Probe */
