import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { DOMAIN_EVENTS, type DomainEventMap, type DomainEventName, type DomainEvents } from '../events';
import { Prisma, type PrismaClient } from '../generated/prisma/client';

/**
 * The webhook outbox: every domain event becomes one webhook_deliveries row per
 * configured endpoint, and the row is the source of truth. Nothing is sent
 * before it is committed (the dispatcher only reads the table), so a restart,
 * a crash after the insert or another node taking over loses nothing.
 *
 * Inserts are serialised on this node: events are appended to a buffer in the
 * order they are emitted, and one flush at a time writes everything buffered in
 * one multi-row INSERT. The ids (BIGSERIAL) therefore follow the emission
 * order, which is the order the dispatcher delivers a call's events in.
 *
 * The window between an event and its commit is the one place an event can be
 * lost (the process dying in those few milliseconds). While the database is
 * unavailable the buffer is kept in memory and retried (bounded: past
 * MAX_BUFFERED rows the oldest are dropped and logged).
 */
export interface WebhookPayload {
  id: string;
  type: DomainEventName;
  created_at: string;
  data: unknown;
}

interface PendingRow {
  endpoint: string;
  eventId: string;
  eventType: DomainEventName;
  callId: string | null;
  /** The payload as JSON text (bigints and NUL characters already made safe for jsonb). */
  json: string;
}

export interface WebhookOutboxOptions {
  prisma: PrismaClient;
  events: DomainEvents;
  endpoints: string[];
  log: FastifyBaseLogger;
  /** Called after rows were committed (wakes the dispatcher). */
  onInserted?: () => void;
}

const MAX_BUFFERED = 50_000;
const MAX_BATCH = 500;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** JSON text PostgreSQL's jsonb accepts: bigints become numbers, NUL characters are removed. */
export function toJsonText(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return Number(v);
    if (typeof v === 'string' && v.includes('\u0000')) return v.replaceAll('\u0000', '');
    return v;
  });
}

export class WebhookOutbox {
  private buffer: PendingRow[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  private stopping = false;
  private interruptSleep: (() => void) | undefined;
  private readonly listeners: Array<[DomainEventName, (data: never) => void]> = [];

  constructor(private readonly opts: WebhookOutboxOptions) {}

  /** Starts listening to the domain events. */
  attach(): void {
    if (this.opts.endpoints.length === 0 || this.listeners.length > 0) return;
    for (const name of DOMAIN_EVENTS) {
      const listener = (data: DomainEventMap[typeof name][0]) => this.record(name, data);
      this.opts.events.on(name, listener as never);
      this.listeners.push([name, listener as never]);
    }
  }

  /** Queues one row per endpoint for this event; returns the event id. */
  record(type: DomainEventName, data: unknown): string {
    const id = randomUUID();
    if (this.closed || this.opts.endpoints.length === 0) return id;
    const payload: WebhookPayload = { id, type, created_at: new Date().toISOString(), data };
    const json = toJsonText(payload);
    const rawCallId = (data as { call_id?: unknown } | null)?.call_id;
    const callId = typeof rawCallId === 'string' && UUID_RE.test(rawCallId) ? rawCallId : null;
    for (const endpoint of this.opts.endpoints) this.buffer.push({ endpoint, eventId: id, eventType: type, callId, json });
    if (this.buffer.length > MAX_BUFFERED) {
      const dropped = this.buffer.splice(0, this.buffer.length - MAX_BUFFERED);
      this.opts.log.error({ dropped: dropped.length }, 'webhook outbox buffer is full (the database is unavailable): dropping the oldest events');
    }
    this.kick();
    return id;
  }

  /** Resolves once everything recorded so far is committed (or given up on at close). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** Stops listening, then writes what is still buffered (one more try if the database fails). */
  async close(): Promise<void> {
    for (const [name, listener] of this.listeners) this.opts.events.off(name, listener as never);
    this.listeners.length = 0;
    this.stopping = true;
    this.interruptSleep?.();
    await this.flush();
    this.closed = true;
    if (this.buffer.length > 0) {
      try {
        await this.insert(this.buffer.splice(0, this.buffer.length));
      } catch (err) {
        this.opts.log.error({ err }, 'webhook outbox: events could not be stored before shutdown and are lost');
      }
    }
  }

  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
    });
  }

  private async flushLoop(): Promise<void> {
    let failures = 0;
    while (this.buffer.length > 0) {
      const batch = this.buffer.slice(0, MAX_BATCH);
      try {
        await this.insert(batch);
        this.buffer.splice(0, batch.length);
        if (failures > 0) this.opts.log.info({ failures }, 'webhook outbox: storing events works again');
        failures = 0;
        this.opts.onInserted?.();
      } catch (err) {
        failures++;
        if (failures === 1 || failures % 20 === 0)
          this.opts.log.error({ err, buffered: this.buffer.length, failures }, 'webhook outbox: storing events failed; retrying');
        // close() takes over: one last try there.
        if (this.stopping) return;
        await this.sleep(Math.min(5000, 100 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.interruptSleep = done;
    }).finally(() => {
      this.interruptSleep = undefined;
    });
  }

  private async insert(rows: PendingRow[]): Promise<void> {
    if (rows.length === 0) return;
    // Explicit UTC times: the columns are `timestamp` (without time zone) holding UTC, as Prisma writes them.
    const values = rows.map(
      (r) =>
        Prisma.sql`(${r.endpoint}, ${r.eventId}::uuid, ${r.eventType}, ${r.callId}::uuid, ${r.json}::jsonb, timezone('UTC', now()), timezone('UTC', now()))`,
    );
    await this.opts.prisma.$executeRaw`
      INSERT INTO webhook_deliveries (endpoint, event_id, event_type, call_id, payload, created_at, next_attempt_at)
      VALUES ${Prisma.join(values)}`;
  }
}
