/**
 * What bench-worker-capacity.mjs measures in one step: snapshots of the worker, encoders, sink,
 * this process and the machine, and the step's row computed from two of them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { clockTicksPerSecond, cpuTicks, machineCpu, statusKb } from '../lib/system.mjs';

/** @typedef {import('mediasoup').types.Producer} Producer */
/** @typedef {import('mediasoup').types.Consumer} Consumer */
/** @typedef {import('mediasoup').types.PlainTransport} PlainTransport */
/** @typedef {{ producer: Producer, kind: 'video' | 'audio', ssrc: number, index: number }} ProducerEntry */
/** @typedef {{ consumer: Consumer, transport: PlainTransport, prod: ProducerEntry, ssrc: number }} ConsumerEntry */
/** @typedef {{ t: number, rtpPackets: number, rtpBytes: number, rtcpPackets: number, rtcpBytes: number, perSsrc: [number, number][] }} SinkSnapshot */

/**
 * The processes and media objects of a run.
 * @typedef {object} Rig
 * @property {() => Promise<SinkSnapshot>} sinkSnapshot
 * @property {number} sinkPid
 * @property {number} workerPid
 * @property {number[]} ffPids
 * @property {ProducerEntry[]} producers
 * @property {ConsumerEntry[]} consumers
 * @property {number} cpuCount
 */

/** utime + stime of one process in clock ticks (NaN if gone). @param {number} pid */
export const procCpuTicks = (pid) => {
  const t = cpuTicks(pid);
  return t ? t.user + t.sys : NaN;
};
/** { user, sys } clock ticks of one process (NaN if gone). @param {number} pid */
const procCpuSplit = (pid) => cpuTicks(pid) ?? { user: NaN, sys: NaN };
/** VmRSS of one process in KiB (NaN if gone). @param {number} pid */
const procRssKb = (pid) => statusKb(pid, 'VmRSS') ?? NaN;

/** @param {number | null | undefined} x */
export function pct(x) {
  return Number.isFinite(x) ? /** @type {number} */ (x).toFixed(1) : '-';
}
/** @param {number | null | undefined} x @param {number} [d] */
export function fx(x, d = 1) {
  return Number.isFinite(x) ? /** @type {number} */ (x).toFixed(d) : '-';
}

/**
 * Packets and bytes of one kind of RTP stats. Producer.getStats(): inbound-rtp;
 * Consumer.getStats(): outbound-rtp (+ the producer's inbound-rtp).
 * @param {Producer | Consumer} entity
 * @param {'inbound-rtp' | 'outbound-rtp'} want
 */
export async function rtpCounts(entity, want) {
  const stats = /** @type {{ type: string, packetCount: number, byteCount: number }[]} */ (await entity.getStats());
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

/**
 * Every counter at one moment.
 * @param {Rig} rig
 * @param {number[]} sampleIdx consumers whose own stats are cross-checked with the sink
 */
export async function snapshot(rig, sampleIdx) {
  const [sinkS, prodS, sampS] = await Promise.all([
    rig.sinkSnapshot(),
    Promise.all(rig.producers.map((p) => rtpCounts(p.producer, 'inbound-rtp'))),
    Promise.all(sampleIdx.map((i) => rtpCounts(/** @type {ConsumerEntry} */ (rig.consumers[i]).consumer, 'outbound-rtp'))),
  ]);
  return {
    t: performance.now(),
    worker: procCpuTicks(rig.workerPid),
    workerSplit: procCpuSplit(rig.workerPid),
    ffmpeg: rig.ffPids.map(procCpuTicks),
    sinkCpu: procCpuTicks(rig.sinkPid),
    self: process.cpuUsage(),
    machine: machineCpu(),
    sink: sinkS,
    prod: prodS,
    samp: sampS,
  };
}
/** @typedef {Awaited<ReturnType<typeof snapshot>>} Snapshot */

/**
 * On a shared machine: waits (1 s samples, waitS at most) until the CPU used by processes
 * other than ours is below otherPct % of one core; returns the seconds waited.
 * @param {Rig} rig
 * @param {number} waitS
 * @param {number} otherPct
 */
export async function waitForQuiet(rig, waitS, otherPct) {
  const clkTck = clockTicksPerSecond();
  const ours = () => procCpuTicks(rig.workerPid) + rig.ffPids.map(procCpuTicks).reduce((x, y) => x + (y || 0), 0) + procCpuTicks(rig.sinkPid);
  const t0 = performance.now();
  for (;;) {
    const m0 = machineCpu();
    const o0 = ours();
    const s0 = process.cpuUsage();
    await sleep(1000);
    const m1 = machineCpu();
    const s1 = process.cpuUsage();
    const selfTicks = ((s1.user + s1.system - s0.user - s0.system) / 1e6) * clkTck;
    const other = (100 * rig.cpuCount * (m1.busy - m0.busy - (ours() - o0) - selfTicks)) / (m1.total - m0.total);
    const waited = (performance.now() - t0) / 1000;
    if (other < otherPct || waited >= waitS) return waited;
  }
}

/**
 * The step's row from the snapshots around its hold window, and its progress line.
 * @param {Rig} rig
 * @param {Snapshot} a
 * @param {Snapshot} b
 * @param {{ createMs: number, quietWaitedS: number, sampleIdx: number[] }} step
 */
export function stepRow(rig, a, b, { createMs, quietWaitedS, sampleIdx }) {
  const { consumers, producers, cpuCount } = rig;
  const CLK_TCK = clockTicksPerSecond();
  const wall = (b.t - a.t) / 1000;
  /** @param {number} d clock ticks */
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

  /** @param {Snapshot} s @param {number} k */
  const prodOf = (s, k) => /** @type {{ packets: number, bytes: number }} */ (s.prod[k]);
  const prodPps = producers.map((p, k) => (prodOf(b, k).packets - prodOf(a, k).packets) / wall);
  const prodKbps = producers.map((p, k) => (8 * (prodOf(b, k).bytes - prodOf(a, k).bytes)) / wall / 1000);
  const prodIndex = new Map(producers.map((p, k) => [p.producer.id, k]));
  /** @param {ConsumerEntry} c packets/s into the consumer's producer */
  const inputPps = (c) => /** @type {number} */ (prodPps[/** @type {number} */ (prodIndex.get(c.prod.producer.id))]);
  const expectedPps = consumers.reduce((s, c) => s + inputPps(c), 0);

  /** @type {Record<string, number | null>} */
  const kindDelivery = {};
  for (const kind of ['video', 'audio']) {
    let exp = 0;
    let got = 0;
    for (const c of consumers) {
      if (c.prod.kind !== kind) continue;
      exp += inputPps(c);
      got += ((perB.get(c.ssrc) || 0) - (perA.get(c.ssrc) || 0)) / wall;
    }
    kindDelivery[kind] = exp > 0 ? +(got / exp).toFixed(4) : null;
  }
  let sampStatsPps = 0;
  let sampSinkPps = 0;
  sampleIdx.forEach((ci, k) => {
    const after = /** @type {{ packets: number }} */ (b.samp[k]);
    const before = /** @type {{ packets: number }} */ (a.samp[k]);
    sampStatsPps += (after.packets - before.packets) / wall;
    const ssrc = /** @type {ConsumerEntry} */ (consumers[ci]).ssrc;
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
    workerRssMb: +(procRssKb(rig.workerPid) / 1024).toFixed(1),
    ffmpegCpuPct: +ffmpegCpuPct.toFixed(1),
    sinkCpuPct: +sinkCpuPct.toFixed(1),
    benchCpuPct: +selfCpuPct.toFixed(1),
    machineBusyPct: +machineBusyPct.toFixed(1),
    machineSoftirqPct: +machineSoftirqPct.toFixed(1),
    otherCpuPct: +otherCpuPct.toFixed(1),
    producerPps: prodPps.map((v) => +v.toFixed(1)),
    producerKbps: prodKbps.map((v) => +v.toFixed(1)),
  };
  return {
    row,
    line:
      `[bench] C=${C} (created in ${row.createMs} ms): sink ${row.sinkRtpPps} pkt/s (${fx(sinkMbps, 1)} Mbit/s, ` +
      `delivery ${row.deliveryRatio ?? '-'}, ${receiving}/${C} receiving), worker ${pct(workerCpuPct)}% RSS ${row.workerRssMb} MB, ` +
      `ffmpeg ${pct(ffmpegCpuPct)}%, sink ${pct(sinkCpuPct)}%, bench ${pct(selfCpuPct)}%, machine ${pct(machineBusyPct)}%/${cpuCount * 100}% ` +
      `(other ${pct(otherCpuPct)}%)`,
  };
}
/** @typedef {ReturnType<typeof stepRow>['row']} MeasuredRow */
