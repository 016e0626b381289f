import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

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
  }
}
