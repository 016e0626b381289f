/**
 * What bench-recording.mjs records per scenario (its --out JSON rows), the summary of each,
 * and the table it prints.
 */
import { mean, r1, r2, table, verdict } from '../lib/stats.mjs';

/** @typedef {import('./measure.mjs').Window} Window */
/** @typedef {import('./measure.mjs').Probe} Probe */

/**
 * A recorded file as the server reported it and as found on disk.
 * @typedef {{ participant_id: string, status: string, file: string, size_bytes: number, server_size_bytes: number, server_duration_ms: number, probe: Probe, kbps: number | null }} RecordedFile
 */

/**
 * One scenario: windows A (no recording), B (recording), C (after), the files, the verdict.
 * @typedef {object} ScenarioRow
 * @property {string} scenario
 * @property {number} n
 * @property {number} width
 * @property {number} height
 * @property {number} fps
 * @property {string} room
 * @property {string} [call_id]
 * @property {string[]} [participants]
 * @property {Window} [no_recording]
 * @property {number} [start_recording_ms]
 * @property {string} [recording_id]
 * @property {string | null} [ffmpeg_exe]
 * @property {Window} [recording]
 * @property {number} [stop_recording_ms]
 * @property {string | null} [recording_status]
 * @property {number | null} [recording_wall_s]
 * @property {RecordedFile[]} [files]
 * @property {number} [ffmpeg_left_after_stop]
 * @property {Window} [after_recording]
 * @property {number} [peer_errors]
 * @property {string[]} [problems]
 * @property {boolean} [ok]
 * @property {string} [error]
 * @property {ReturnType<typeof summarise>} [summary]
 */

/**
 * @typedef {object} RecordingResults
 * @property {Record<string, any>} meta
 * @property {Record<string, unknown>} options
 * @property {ScenarioRow[]} rows
 * @property {string[]} failures
 * @property {boolean} [ok]
 */

/**
 * The figures of one scenario: ffmpeg per recorded participant, and the worker's extra CPU
 * (with recording minus the mean of the windows before and after).
 * @param {ScenarioRow} row
 */
export function summarise(row) {
  if (!row.recording || !row.no_recording) return null;
  const ff = row.recording.ffmpeg;
  const A = row.no_recording;
  const B = row.recording;
  const C = row.after_recording;
  // A missing figure (null) counts as 0, as JavaScript's arithmetic has it.
  const [a, b, c] = [A.worker_cpu_pct ?? 0, B.worker_cpu_pct ?? 0, C?.worker_cpu_pct ?? 0];
  const base = C ? (a + c) / 2 : a;
  return {
    ffmpeg_cpu_pct_mean: r2(mean(ff.map((f) => f.cpu_pct))),
    ffmpeg_cpu_pct_each: ff.map((f) => f.cpu_pct),
    ffmpeg_rss_mib_mean: r1(/** @type {number} */ (mean(ff.map((f) => f.rss_kib_mean))) / 1024),
    ffmpeg_rss_mib_max: r1(Math.max(...ff.map((f) => f.rss_kib_max)) / 1024),
    ffmpeg_rss_anon_mib_mean: r1(/** @type {number} */ (mean(ff.map((f) => f.rss_anon_kib_mean))) / 1024),
    ffmpeg_cpu_pct_total: r1(ff.reduce((s, f) => s + (f.cpu_pct ?? 0), 0)),
    worker_cpu_pct_without: A.worker_cpu_pct,
    worker_cpu_pct_with: B.worker_cpu_pct,
    worker_cpu_pct_after: C?.worker_cpu_pct ?? null,
    /** with - mean(before, after) */
    worker_cpu_pct_extra: r1(b - base),
    worker_cpu_pct_extra_per_participant: r2((b - base) / row.n),
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

/**
 * The table of one run, on stdout.
 * @param {RecordingResults} results
 * @param {{ consumeAll: boolean, settleMs: number, windowMs: number, recWarmupMs: number }} opts
 */
export function report(results, opts) {
  const m = results.meta;
  const out = [''];
  out.push(`Switchboard recording benchmark  ${m.date}`);
  out.push(
    `Node ${m.node} | ${m.cpu_model} | ${m.cpu_cores} cores | ${m.mem_total_gb} GB | mediasoup ${m.mediasoup} | ${m.ffmpeg_version ?? 'ffmpeg ?'} (${m.ffmpeg_exe ?? '?'})`,
  );
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
      [
        'scenario (N x video)',
        'ffmpeg CPU% each: mean (all)',
        'ffmpeg RSS/anon MiB',
        'worker% before/rec/after',
        'extra',
        'node% before/rec/after',
        'peers% (sum)',
        'machine cores no/rec',
        'sent kbps v+a /peer',
        'rec kbps/file',
        'file s',
        'rec fps',
      ],
      rows,
    ),
  );
  out.push('');
  for (const r of results.rows) {
    if (!r.summary) continue;
    out.push(
      `  ${r.scenario}: files ${(r.files ?? []).map((f) => `${f.status} ${Math.round(f.size_bytes / 1024)} KiB ${f.probe.duration_s} s [${(f.probe.streams ?? []).map((s) => s.codec).join('+')}]`).join(', ')}; ` +
        `start-recording ack ${r.start_recording_ms} ms, stop ${r.stop_recording_ms} ms; worker per-second % with rec: ${r.recording?.worker_cpu_pct_per_second.join(' ')}`,
    );
  }
  out.push(`Machine: load average ${m.loadavg_before} before, ${m.loadavg_after} after`);
  out.push('');
  out.push(verdict(results.failures, `OK (wall ${m.wall_s} s)`));
  console.log(out.join('\n'));
}

// ---------------------------------------------------------------- main
