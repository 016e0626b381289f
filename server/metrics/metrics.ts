import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { MediaMetrics, type MediaMetricsOptions } from './media';

/**
 * Prometheus metrics, served at /metrics. One registry per server instance (so
 * tests can run several apps in one process without clashing). Domain modules
 * never see prom-client: they emit events (or take a callback), and app.ts
 * turns those into the calls below. Labels are bounded sets (event names,
 * error codes, route patterns, statuses, worker indexes): never a room, user
 * or call id.
 */

/** Node's default metrics that are gauges named *_total, which Prometheus' naming rules (promtool) refuse; each is the sum of the labelled gauge without the suffix. */
const NONCONFORMING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Join request to acknowledgement: the signaling work plus the database and media node it waits for. */
const JOIN_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
const WEBHOOK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly rooms: Gauge;
  readonly participants: Gauge;
  readonly messages: Counter<'type'>;
  readonly errors: Counter<'code'>;
  readonly dbWriteFailures: Counter;
  readonly dbWriteBacklog: Gauge;
  readonly joinDuration: Histogram<'result'>;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly recordings: Counter<'outcome'>;
  readonly recordingFiles: Counter<'status'>;
  readonly ffmpegCrashes: Counter;
  readonly ffmpegRestarts: Counter;
  readonly webhookDeliveries: Counter<'status'>;
  readonly webhookDuration: Histogram<'status'>;
  readonly uploadsCompleted: Counter;
  readonly uploadBytes: Counter;
  /** mediasoup: workers, routers, transports, producers, consumers, sampled RTP counters. */
  readonly media: MediaMetrics;

  /** media: METRICS_MEDIA_SAMPLE_MS and METRICS_MEDIA_SAMPLE_MAX (default: no sampling). */
  constructor(opts: { defaultMetrics?: boolean; media?: { mediaSampleMs: number; mediaSampleMax: number } } = {}) {
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'switchboard_' });
      for (const name of NONCONFORMING_DEFAULTS) this.registry.removeSingleMetric(`switchboard_${name}`);
    }
    const registers = [this.registry];
    this.connections = new Gauge({ name: 'switchboard_socket_connections', help: 'Open Socket.IO connections on this node', registers });
    this.rooms = new Gauge({ name: 'switchboard_rooms', help: 'Rooms with a call in progress on this node', registers });
    this.participants = new Gauge({
      name: 'switchboard_participants',
      help: 'Participants in rooms on this node (including those within the reconnection grace period)',
      registers,
    });
    this.messages = new Counter({
      name: 'switchboard_signaling_messages_total',
      help: 'Signaling messages received, by event',
      labelNames: ['type'],
      registers,
    });
    this.errors = new Counter({ name: 'switchboard_signaling_errors_total', help: 'Signaling errors answered, by code', labelNames: ['code'], registers });
    this.dbWriteFailures = new Counter({
      name: 'switchboard_db_write_failures_total',
      help: 'Database writes behind signaling that failed for a reason other than an outage (not written)',
      registers,
    });
    this.dbWriteBacklog = new Gauge({
      name: 'switchboard_db_write_backlog',
      help: 'Database writes behind signaling queued or being retried (grows while the database is down)',
      registers,
    });
    this.joinDuration = new Histogram({
      name: 'switchboard_join_duration_seconds',
      help: 'Socket join request to its acknowledgement, by result (ok or error)',
      labelNames: ['result'],
      buckets: JOIN_BUCKETS,
      registers,
    });
    this.httpRequests = new Counter({
      name: 'switchboard_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'switchboard_http_request_duration_seconds',
      help: 'HTTP request to its response, by method and route pattern',
      labelNames: ['method', 'route'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.recordings = new Counter({
      name: 'switchboard_recordings_total',
      help: 'Server-side recordings finished, by outcome (completed, empty, failed)',
      labelNames: ['outcome'],
      registers,
    });
    this.recordingFiles = new Counter({
      name: 'switchboard_recording_files_total',
      help: 'Files of finished server-side recordings, by status (completed, interrupted, empty, failed)',
      labelNames: ['status'],
      registers,
    });
    this.ffmpegCrashes = new Counter({
      name: 'switchboard_recording_ffmpeg_crashes_total',
      help: 'Recording ffmpeg processes that exited on their own',
      registers,
    });
    this.ffmpegRestarts = new Counter({
      name: 'switchboard_recording_ffmpeg_restarts_total',
      help: 'Recording ffmpeg processes started again (a new segment) after a crash',
      registers,
    });
    this.webhookDeliveries = new Counter({
      name: 'switchboard_webhook_deliveries_total',
      help: 'Webhook delivery attempts, by what became of the delivery (delivered, retried, failed, interrupted)',
      labelNames: ['status'],
      registers,
    });
    this.webhookDuration = new Histogram({
      name: 'switchboard_webhook_delivery_duration_seconds',
      help: "Webhook request to the receiver's answer (or the error), per attempt, by what became of the delivery",
      labelNames: ['status'],
      buckets: WEBHOOK_BUCKETS,
      registers,
    });
    this.uploadsCompleted = new Counter({
      name: 'switchboard_uploads_completed_total',
      help: 'Client-side recording uploads completed and verified',
      registers,
    });
    this.uploadBytes = new Counter({ name: 'switchboard_upload_bytes_total', help: 'Bytes of the client-side recording uploads completed', registers });
    const media: MediaMetricsOptions = { sampleMs: opts.media?.mediaSampleMs ?? 0, maxStatsPerSample: opts.media?.mediaSampleMax ?? 1000 };
    this.media = new MediaMetrics(this.registry, media);
  }

  /** A join was acknowledged (`startedAt`: performance.now() when it arrived). */
  joined(result: 'ok' | 'error', startedAt: number): void {
    this.joinDuration.observe({ result }, (performance.now() - startedAt) / 1000);
  }

  recordingFinished(recording: { status: string; files: ReadonlyArray<{ status: string }> }): void {
    this.recordings.inc({ outcome: recording.status });
    for (const f of recording.files) this.recordingFiles.inc({ status: f.status });
  }

  ffmpegCrashed(restarting: boolean): void {
    this.ffmpegCrashes.inc();
    if (restarting) this.ffmpegRestarts.inc();
  }

  /** One webhook attempt (status: WebhookAttemptStatus of server/webhooks/dispatcher.ts). */
  webhookAttempt(status: string, seconds: number): void {
    this.webhookDeliveries.inc({ status });
    this.webhookDuration.observe({ status }, seconds);
  }

  uploadCompleted(sizeBytes: number): void {
    this.uploadsCompleted.inc();
    this.uploadBytes.inc(sizeBytes);
  }
}
