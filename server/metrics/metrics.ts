import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics, served at /metrics. One registry per server instance (so
 * tests can run several apps in one process without clashing).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly rooms: Gauge;
  readonly participants: Gauge;
  readonly messages: Counter<'type'>;
  readonly errors: Counter<'code'>;
  readonly dbWriteFailures: Counter;
  readonly webhookDeliveries: Counter<'status'>;
  readonly webhookDeliveryDuration: Histogram<'status'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'switchboard_' });
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
    this.dbWriteFailures = new Counter({ name: 'switchboard_db_write_failures_total', help: 'Database writes behind signaling that failed', registers });
    this.webhookDeliveries = new Counter({
      name: 'switchboard_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome: delivered (2xx), retried (failed, tried again later), failed (failed for good), interrupted (shutdown)',
      labelNames: ['status'],
      registers,
    });
    this.webhookDeliveryDuration = new Histogram({
      name: 'switchboard_webhook_delivery_duration_seconds',
      help: 'Duration of webhook delivery attempts (request to response or timeout), by outcome',
      labelNames: ['status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
  }

  /** One webhook delivery attempt (called by the webhook dispatcher). */
  webhookAttempt(status: string, seconds: number): void {
    this.webhookDeliveries.inc({ status });
    this.webhookDeliveryDuration.observe({ status }, seconds);
  }
}
