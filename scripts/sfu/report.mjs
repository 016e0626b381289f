/**
 * What bench-sfu.mjs records per join (its --out JSON rows), the statistics over them, and the
 * tables it prints.
 */
import { finiteSorted, median as medianOf, nearestRank, r1, table, verdict } from '../lib/stats.mjs';

/**
 * One join of one target.
 * @typedef {object} Row
 * @property {string} target
 * @property {number} index
 * @property {boolean} warmup
 * @property {number | null} [ipc_rtt_ms]
 * @property {number} [t0]
 * @property {string} [producer_id]
 * @property {number} [connect_to_first_frame_ms]
 * @property {number} [produce_to_first_frame_ms]
 * @property {number | null} [consume_to_first_frame_ms]
 * @property {number} [connect_to_start_reply_ms]
 * @property {number} [connect_to_camera_produced_ms]
 * @property {number | null} [connect_to_mic_produced_ms]
 * @property {number | null} [camera_produced_to_consumer_created_ms]
 * @property {number | null} [audio_produce_to_first_callback_ms]
 * @property {{ node: number | null, worker: number }} [server_cpu_ms]
 * @property {number} [window_ms]
 * @property {number} [peer_errors]
 * @property {boolean} [ok]
 * @property {string} [error]
 */

/**
 * @typedef {object} SfuResults
 * @property {Record<string, any>} meta
 * @property {Record<string, unknown>} options
 * @property {Row[]} rows
 * @property {Record<string, any>} summary see summarise()
 * @property {string[]} failures
 * @property {boolean} [ok]
 */

/**
 * Median of the finite values.
 * @param {(number | null | undefined)[]} xs
 */
const median = (xs) => medianOf(xs, { finiteOnly: true });

/**
 * n, nearest-rank p50/p95, min, max and mean of the finite values.
 * @param {(number | null | undefined)[]} values
 */
function stats(values) {
  const a = finiteSorted(values);
  if (!a.length) return { n: 0, p50: null, p95: null, min: null, max: null, mean: null };
  /** @param {number} p */
  const q = (p) => nearestRank(a, p);
  return { n: a.length, p50: q(50), p95: q(95), min: a[0], max: a[a.length - 1], mean: r1(a.reduce((s, v) => s + v, 0) / a.length) };
}

/** @type {[keyof Row, string][]} */
const METRICS = [
  ['connect_to_first_frame_ms', '(c) connect -> S first video frame'],
  ['produce_to_first_frame_ms', '(a) camera produced -> S first frame'],
  ['consume_to_first_frame_ms', '(a) S consumer created -> first frame'],
  ['connect_to_camera_produced_ms', '    connect -> camera producedAt (P)'],
  ['connect_to_mic_produced_ms', '    connect -> mic producedAt (P)'],
  ['camera_produced_to_consumer_created_ms', '    camera produced -> S consumer created'],
  ['ipc_rtt_ms', '    IPC round trip to P (ctrl<->child)'],
];

/**
 * Per target: n and stats() of each metric, CPU per join, the warm-up joins; and `overhead`,
 * switchboard - baseline (difference of the statistics, and the median of per-round pairs).
 * @param {SfuResults} results
 */
export function summarise(results) {
  for (const name of ['switchboard', 'baseline']) {
    const rows = results.rows.filter((r) => r.target === name && !r.warmup && r.ok);
    /** @type {Record<string, any>} */
    const s = { n_ok: rows.length, n_failed: results.rows.filter((r) => r.target === name && !r.warmup && !r.ok).length };
    for (const [key] of METRICS) s[key] = stats(rows.map((r) => /** @type {number | null | undefined} */ (r[key])));
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
      const rv = /** @type {number | null | undefined} */ (r[key]);
      const bv = /** @type {number | null | undefined} */ (b?.[key]);
      if (rv != null && bv != null) paired.push(rv - bv);
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

/**
 * The tables of one run, on stdout.
 * @param {SfuResults} results
 * @param {{ audio: boolean, width: number, height: number, fps: number, iterations: number, warmup: number }} opts
 */
export function report(results, opts) {
  const m = results.meta;
  const out = [''];
  out.push(`Switchboard SFU benchmark  ${m.date}`);
  out.push(
    `Node ${m.node} | ${m.cpu_model} | ${m.cpu_cores} cores | ${m.mem_total_gb} GB RAM | mediasoup ${m.mediasoup} | mediasoup-client ${m.mediasoup_client} | @roamhq/wrtc ${m.wrtc}`,
  );
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
  out.push(
    `Machine: load average ${m.loadavg_before} before, ${m.loadavg_after} after; whole machine busy ${m.machine_busy_cores_during_joins} of ${m.cpu_cores} cores during the joins (all processes, incl. ours)`,
  );
  out.push(`Warm-up (excluded) connect->first frame: switchboard ${JSON.stringify(sb.warmup)}, baseline ${JSON.stringify(bl.warmup)}`);
  out.push(
    `Per-join connect->first frame, switchboard: ${results.rows
      .filter((r) => r.target === 'switchboard' && !r.warmup)
      .map((r) => r.connect_to_first_frame_ms ?? 'x')
      .join(' ')}`,
  );
  out.push(
    `Per-join connect->first frame, baseline:    ${results.rows
      .filter((r) => r.target === 'baseline' && !r.warmup)
      .map((r) => r.connect_to_first_frame_ms ?? 'x')
      .join(' ')}`,
  );
  out.push('');
  out.push(verdict(results.failures, `OK (wall ${m.wall_s} s)`));
  console.log(out.join('\n'));
}
