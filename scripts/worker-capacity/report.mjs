/**
 * bench-worker-capacity.mjs's figures derived from its step rows (CPU per consumer, packets per
 * CPU-second, a least-squares line and where it crosses 100 % of a core) and its report.
 */
import { table } from '../lib/stats.mjs';
import { fx, pct } from './measure.mjs';

/** @typedef {import('./measure.mjs').ProducerEntry} ProducerEntry */
/**
 * A step's row, with the figures derive() adds.
 * @typedef {import('./measure.mjs').MeasuredRow & {
 *   cpuMsPerSecPerConsumer?: number | null, marginalCpuMsPerSecPerConsumer?: number | null,
 *   packetsPerWorkerCpuSecond?: number | null, usPerPacket?: number | null }} StepRow
 */
/**
 * worker CPU % = interceptPct + slopePctPerConsumer x consumers.
 * @typedef {{ interceptPct: number, slopePctPerConsumer: number, r2: number | null, consumersAt100Pct: number | null, extrapolated: boolean,
 *   firstStepAtOrAbove95Pct: number | null, mediasoupGuidanceConsumersPerWorker: number, ratioToGuidance: number | null }} Fit
 */

/**
 * Adds the per-consumer figures to each row; returns the fit, the encoders' mean CPU and the
 * input per producer at the last step.
 * @param {StepRow[]} results
 * @param {ProducerEntry[]} producers
 * @param {number} producerCount producer transports (one ffmpeg each)
 */
export function derive(results, producers, producerCount) {
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
  /** @type {Fit | null} */
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
  const ffPerProducerPct = results.length ? results.reduce((s, r) => s + r.ffmpegCpuPct, 0) / results.length / producerCount : null;
  const last = results[results.length - 1];
  const input = producers.map((p, k) => ({
    kind: p.kind,
    ssrc: p.ssrc,
    pps: last?.producerPps[k],
    kbps: last?.producerKbps[k],
  }));
  return { fit, ffPerProducerPct, input };
}

/**
 * The report, on stdout.
 * @param {StepRow[]} results
 * @param {ReturnType<typeof derive>} derived
 * @param {{ mediasoupVersion: string, cpuModel: string, cpuCount: number, srtp: boolean }} setup
 */
export function report(results, { fit, ffPerProducerPct, input }, { mediasoupVersion, cpuModel, cpuCount, srtp }) {
  console.log('');
  console.log(
    `mediasoup ${mediasoupVersion} worker capacity - ${cpuModel} (${cpuCount} CPUs), node ${process.version}; ` +
      `consumers on PlainTransport${srtp ? ' + SRTP' : ' (no SRTP)'}`,
  );
  console.log(
    'input per producer (last step): ' +
      input.map((p) => `${p.kind} ${fx(p.pps, 1)} pkt/s ${fx(p.kbps, 0)} kbit/s`).join('; ') +
      `; ffmpeg ~${fx(ffPerProducerPct, 1)}% CPU per encoder process`,
  );
  /** @type {[string, (r: StepRow) => string][]} */
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
  console.log(
    table(
      cols.map((c) => c[0]),
      results.map((r) => cols.map((c) => c[1](r))),
      { firstColumn: 'right' },
    ),
  );
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
}
