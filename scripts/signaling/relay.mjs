/**
 * A relay measurement of bench-signaling.mjs: open-loop offers over connected pairs, spread
 * over the generators; and the medians over its repeats.
 */
import { addCounts, latencySummary, median, r1, r2, r3, sumOf } from '../lib/stats.mjs';
import { cpuSeconds } from '../lib/system.mjs';

/** @typedef {import('../lib/processes.mjs').Proc} Proc */
/** @typedef {import('./generators.mjs').Generators} Generators */
/** @typedef {import('./generators.mjs').RelayResult} GenRelay */
/** @typedef {import('./report.mjs').RelayResult} RelayResult */
/** @typedef {import('./report.mjs').RelayRow} RelayRow */
/** @typedef {import('./report.mjs').RelaySummary} RelaySummary */

/**
 * Server and generator CPU, in cores, between two readings over `wall` seconds.
 * @param {{ server: number | null, gens: (number | null)[] }} cpu0
 * @param {{ server: number | null, gens: (number | null)[] }} cpu1
 * @param {number} wall
 */
export function cpuCores(cpu0, cpu1, wall) {
  let gensCpu = 0;
  cpu1.gens.forEach((c, i) => (gensCpu += (c ?? 0) - (cpu0.gens[i] ?? 0)));
  return { server: cpu0.server != null && cpu1.server != null ? r2((cpu1.server - cpu0.server) / wall) : null, gens: r2(gensCpu / wall) };
}

/**
 * One relay measurement over `set` at `rate` msgs/s in total (split over the generators);
 * errors, missing acks and lost messages are added to `failures`.
 * @param {Generators} gens
 * @param {{ set: string, rate: number, label: string, srvProc: Proc }} o
 * @param {{ warmup: number, relaySeconds: number, sdpBytes: number }} opts
 * @param {string[]} failures
 * @returns {Promise<RelayRow>}
 */
export async function relayRun(gens, { set, rate, label, srvProc }, opts, failures) {
  const warmupMs = opts.warmup * 1000;
  const measureMs = opts.relaySeconds * 1000;
  const drainMs = 3_000;
  const cpu0 = { server: cpuSeconds(srvProc.pid), gens: gens.cpuSeconds() };
  const t0 = performance.now();
  /** @type {GenRelay[]} */
  const rs = await gens.all(
    'relay',
    { set, rate: rate / gens.count, warmupMs, measureMs, drainMs, sdpBytes: opts.sdpBytes },
    warmupMs + measureMs + drainMs + 30_000,
  );
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuCores(cpu0, { server: cpuSeconds(srvProc.pid), gens: gens.cpuSeconds() }, wall);
  const lat = latencySummary(rs.flatMap((r) => r.latencies));
  const measuredSeconds = Math.max(...rs.map((r) => r.measuredMs)) / 1000;
  const errors = addCounts(rs.map((r) => r.errors));
  /** @type {RelayRow} */
  const row = {
    label,
    target_rate: rate,
    pairs: sumOf(rs, (r) => r.pairs),
    achieved_send_rate: r1(sumOf(rs, (r) => r.measuredSent) / measuredSeconds),
    achieved_receive_rate: r1(sumOf(rs, (r) => r.measuredReceived) / measuredSeconds),
    measured_sent: sumOf(rs, (r) => r.measuredSent),
    measured_received: sumOf(rs, (r) => r.measuredReceived),
    total_sent: sumOf(rs, (r) => r.sent),
    error_acks: sumOf(rs, (r) => r.errorAcks),
    missing_acks: sumOf(rs, (r) => r.missingAcks),
    lost: sumOf(rs, (r) => r.lost),
    strays: sumOf(rs, (r) => r.strays),
    errors,
    max_send_backlog: Math.max(...rs.map((r) => r.maxBacklog)),
    latency_ms: lat,
    // CPU use over the whole run (warm-up + measure + drain), in cores.
    server_cpu_cores: cpu.server,
    generators_cpu_cores: cpu.gens,
  };
  console.error(
    `    ${label.padEnd(22)} ${String(rate).padStart(5)}/s: sent ${row.achieved_send_rate}/s recv ${row.achieved_receive_rate}/s  ` +
      `p50 ${lat.p50} p90 ${lat.p90} p99 ${lat.p99} max ${lat.max} ms  errors ${row.error_acks} lost ${row.lost}  cpu srv ${row.server_cpu_cores} gens ${row.generators_cpu_cores}`,
  );
  if (row.error_acks || row.missing_acks || row.lost) {
    failures.push(`relay ${label} @${rate}/s: ${row.error_acks} error acks ${JSON.stringify(errors)}, ${row.missing_acks} missing acks, ${row.lost} lost`);
  }
  return row;
}

/**
 * Medians over the repeats of `name` at `rate`.
 * @param {RelayResult} out
 * @param {string} name
 * @param {number} rate
 * @returns {RelaySummary}
 */
export function summariseRelay(out, name, rate) {
  const rows = out.runs.filter((r) => r.target === name && r.target_rate === rate);
  return {
    target: name,
    target_rate: rate,
    runs: rows.length,
    achieved_send_rate: r1(median(rows.map((r) => r.achieved_send_rate))),
    achieved_receive_rate: r1(median(rows.map((r) => r.achieved_receive_rate))),
    p50: r3(median(rows.map((r) => r.latency_ms.p50))),
    p90: r3(median(rows.map((r) => r.latency_ms.p90))),
    p99: r3(median(rows.map((r) => r.latency_ms.p99))),
    max: r3(median(rows.map((r) => r.latency_ms.max))),
    p99_each: rows.map((r) => r.latency_ms.p99),
    error_acks: sumOf(rows, (r) => r.error_acks),
    lost: sumOf(rows, (r) => r.lost),
    server_cpu_cores: r2(median(rows.map((r) => r.server_cpu_cores))),
    generators_cpu_cores: r2(median(rows.map((r) => r.generators_cpu_cores))),
  };
}
