import type { Consumer, Producer, Router, Transport, Worker } from 'mediasoup/types';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * Media metrics, read from mediasoup itself rather than from the SFU's code:
 * the observer events of each worker (routers, transports, producers and
 * consumers as they appear and close) keep per-worker gauges, and a timer
 * samples getStats() of producers (RTP in) and consumers (RTP out) into
 * counters of bytes, packets and packets lost.
 *
 * Cost is bounded: each sample asks at most `maxStatsPerSample` objects, the
 * ones asked longest ago first, so in a large node every object is read in turn
 * and the counters stay exact (each read adds what changed since that object's
 * previous read) while lagging by a few intervals. What an object carried after
 * its last read before it closed is not counted. Pipe transports (between a
 * room's routers on this node) are left out of the RTP counters, so a packet is
 * counted where it enters and where it leaves the node.
 */
export interface MediaMetricsOptions {
  /** METRICS_MEDIA_SAMPLE_MS: how often stats are sampled; 0: never (the gauges still count). */
  sampleMs: number;
  /** METRICS_MEDIA_SAMPLE_MAX: getStats() calls per sample at most. */
  maxStatsPerSample: number;
}

/** getStats() calls in flight at once within one sample: keeps one sample from flooding the worker's channel. */
const SAMPLE_CONCURRENCY = 16;

type Direction = 'in' | 'out';
interface RtpTotals {
  bytes: number;
  packets: number;
  lost: number;
}
interface Sampled {
  object: Producer | Consumer;
  direction: Direction;
  kind: string;
  /** performance.now() of the last read (0: never read). */
  readAt: number;
  /** Per RTP stream (SSRC): the totals at the last read. */
  last: Map<number, RtpTotals>;
}

export class MediaMetrics {
  private readonly routers: Gauge<'worker'>;
  private readonly transports: Gauge<'worker' | 'type'>;
  private readonly producers: Gauge<'worker' | 'kind'>;
  private readonly consumers: Gauge<'worker' | 'kind'>;
  private readonly deaths: Counter;
  private readonly rtpBytes: Counter<'direction' | 'kind'>;
  private readonly rtpPackets: Counter<'direction' | 'kind'>;
  private readonly rtpLost: Counter<'direction' | 'kind'>;
  private readonly sampleDuration: Histogram;
  private readonly sampled = new Map<string, Sampled>();
  private readonly watched = new Set<Worker>();
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> | undefined;

  constructor(
    registry: Registry,
    private readonly opts: MediaMetricsOptions,
  ) {
    const registers = [registry];
    this.routers = new Gauge({ name: 'switchboard_media_routers', help: 'mediasoup routers, by worker (index)', labelNames: ['worker'], registers });
    this.transports = new Gauge({
      name: 'switchboard_media_transports',
      help: 'mediasoup transports, by worker (index) and type (webrtc; plain for recording; pipe between routers)',
      labelNames: ['worker', 'type'],
      registers,
    });
    this.producers = new Gauge({
      name: 'switchboard_media_producers',
      help: 'mediasoup producers, by worker (index) and kind',
      labelNames: ['worker', 'kind'],
      registers,
    });
    this.consumers = new Gauge({
      name: 'switchboard_media_consumers',
      help: 'mediasoup consumers, by worker (index) and kind',
      labelNames: ['worker', 'kind'],
      registers,
    });
    const watched = this.watched;
    new Gauge({
      name: 'switchboard_media_workers',
      help: 'mediasoup worker processes alive',
      registers,
      collect() {
        this.set([...watched].filter((w) => !w.closed && !w.died).length);
      },
    });
    this.deaths = new Counter({ name: 'switchboard_media_worker_deaths_total', help: 'mediasoup worker processes that died (each is replaced)', registers });
    const rtp = (name: string, help: string) => new Counter({ name, help, labelNames: ['direction', 'kind'], registers });
    this.rtpBytes = rtp('switchboard_rtp_bytes_total', 'RTP bytes, by direction (in: from clients; out: to clients and recorders) and kind, sampled');
    this.rtpPackets = rtp('switchboard_rtp_packets_total', 'RTP packets, by direction and kind, sampled');
    this.rtpLost = rtp(
      'switchboard_rtp_packets_lost_total',
      'RTP packets lost (in: missing on arrival from clients; out: reported lost by receivers), by direction and kind, sampled',
    );
    this.sampleDuration = new Histogram({
      name: 'switchboard_media_stats_sample_duration_seconds',
      help: 'One sample of mediasoup stats (at most METRICS_MEDIA_SAMPLE_MAX getStats calls)',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
  }

  /** Follows a worker (the first ones and every replacement). */
  watch(worker: Worker): void {
    if (this.watched.has(worker)) return;
    this.watched.add(worker);
    const index = (worker.appData as { slot?: unknown }).slot;
    const label = typeof index === 'number' ? String(index) : String(worker.pid);
    worker.observer.on('close', () => this.watched.delete(worker));
    worker.observer.on('newrouter', (router) => this.watchRouter(label, router));
  }

  /** A worker died (WorkerPool's `died`). */
  died(): void {
    this.deaths.inc();
  }

  private watchRouter(worker: string, router: Router): void {
    this.routers.inc({ worker });
    router.observer.once('close', () => this.routers.dec({ worker }));
    router.observer.on('newtransport', (transport) => this.watchTransport(worker, transport));
  }

  private watchTransport(worker: string, transport: Transport): void {
    const type = transport.type;
    this.transports.inc({ worker, type });
    transport.observer.once('close', () => this.transports.dec({ worker, type }));
    const counted = type !== 'pipe';
    transport.observer.on('newproducer', (producer) => {
      const kind = producer.kind;
      this.producers.inc({ worker, kind });
      if (counted) this.track(producer, 'in');
      producer.observer.once('close', () => {
        this.producers.dec({ worker, kind });
        this.sampled.delete(producer.id);
      });
    });
    transport.observer.on('newconsumer', (consumer) => {
      const kind = consumer.kind;
      this.consumers.inc({ worker, kind });
      if (counted) this.track(consumer, 'out');
      consumer.observer.once('close', () => {
        this.consumers.dec({ worker, kind });
        this.sampled.delete(consumer.id);
      });
    });
  }

  private track(object: Producer | Consumer, direction: Direction): void {
    this.sampled.set(object.id, { object, direction, kind: object.kind, readAt: 0, last: new Map() });
  }

  /** Starts the sampling timer (no-op when sampleMs is 0). */
  start(): void {
    if (this.opts.sampleMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      this.sampling ??= this.sample()
        .then(() => undefined)
        .finally(() => (this.sampling = undefined));
    }, this.opts.sampleMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.sampling;
  }

  /** Reads the stats of up to maxStatsPerSample objects, those read longest ago first. Returns how many were read. */
  async sample(): Promise<number> {
    const started = performance.now();
    const due = [...this.sampled.values()].sort((a, b) => a.readAt - b.readAt).slice(0, this.opts.maxStatsPerSample);
    let next = 0;
    const lane = async () => {
      while (next < due.length) await this.read(due[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(SAMPLE_CONCURRENCY, due.length) }, lane));
    this.sampleDuration.observe((performance.now() - started) / 1000);
    return due.length;
  }

  private async read(s: Sampled): Promise<void> {
    s.readAt = performance.now();
    if (s.object.closed) return;
    let stats: Array<{ type: string; ssrc: number; byteCount: number; packetCount: number; packetsLost: number }>;
    try {
      stats = await s.object.getStats();
    } catch {
      return; // closed meanwhile
    }
    // A consumer's stats also carry its producer's inbound stream: only its own outbound ones count here.
    const own = s.direction === 'in' ? 'inbound-rtp' : 'outbound-rtp';
    const labels = { direction: s.direction, kind: s.kind };
    for (const st of stats) {
      if (st.type !== own) continue;
      const prev = s.last.get(st.ssrc) ?? { bytes: 0, packets: 0, lost: 0 };
      const now = { bytes: st.byteCount, packets: st.packetCount, lost: Math.max(prev.lost, st.packetsLost) };
      if (now.bytes > prev.bytes) this.rtpBytes.inc(labels, now.bytes - prev.bytes);
      if (now.packets > prev.packets) this.rtpPackets.inc(labels, now.packets - prev.packets);
      if (now.lost > prev.lost) this.rtpLost.inc(labels, now.lost - prev.lost);
      s.last.set(st.ssrc, { bytes: Math.max(now.bytes, prev.bytes), packets: Math.max(now.packets, prev.packets), lost: now.lost });
    }
  }
}
