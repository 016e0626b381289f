import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { DOMAIN_EVENTS, type DomainEventMap, type DomainEventName, type DomainEvents } from '../events';
import { Prisma, type PrismaClient } from '../generated/prisma/client';
import { storableText } from '../lib/text';

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
 *
 * A poison row never blocks the others: when a batch fails while the database
 * answers, its rows are stored one by one and a row the database refuses (or
 * one that could not be serialised) is stored `failed` instead, with `data: null`
 * and the error in last_error, visible in GET /admin/webhooks/deliveries. Strings
 * are made well-formed (lone surrogates become U+FFFD) and NULs removed before
 * that, so the edges' checks (INVALID_TEXT) have a second line behind them.
 */
/** The stored payload and the request body: the Standard Webhooks envelope. */
export interface WebhookPayload {
  type: DomainEventName;
  /** ISO 8601: when the event happened. */
  timestamp: string;
  data: unknown;
}

interface PendingRow {
  endpoint: string;
  eventId: string;
  eventType: DomainEventName;
  callId: string | null;
  /** When the event happened (the payload's `timestamp`). */
  timestamp: string;
  /** The payload as JSON text (bigints, NULs and lone surrogates already made safe for jsonb). */
  json: string;
  /** Set aside: stored `failed` with this error, never sent. */
  error?: string;
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

const ERROR_MAX = 2000;

/** JSON text PostgreSQL's jsonb accepts: bigints become numbers; strings and keys storable. */
export function toJsonText(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return Number(v);
    if (typeof v === 'string') return storableText(v);
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).some((k) => storableText(k) !== k))
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [storableText(k), x as unknown]));
    return v;
  });
}

/** The row stored instead of one that cannot be: `failed`, its data dropped, the error and the start of its JSON kept. */
function setAside(row: Omit<PendingRow, 'json'> & { json?: string }, err: unknown): PendingRow {
  // Prisma's messages start with a multi-line preamble: one line, the database's words.
  const message = String((err as Error)?.message ?? err)
    .replace(/\s+/g, ' ')
    .replace(/^ ?Invalid `prisma[^`]*` invocation: ?/, '')
    .trim();
  const reason = storableText(message).slice(0, ERROR_MAX / 2);
  const start = row.json === undefined ? '' : `; payload began: ${storableText(row.json).slice(0, ERROR_MAX / 2)}`;
  const payload: WebhookPayload = { type: row.eventType, timestamp: row.timestamp, data: null };
  return { ...row, json: JSON.stringify(payload), error: `not stored: ${reason}${start}` };
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

  /** Queues one row per endpoint for this event; returns the event id. Never throws (it runs inside the emitter of the event). */
  record(type: DomainEventName, data: unknown): string {
    const id = randomUUID();
    if (this.closed || this.opts.endpoints.length === 0) return id;
    const timestamp = new Date().toISOString();
    const rawCallId = (data as { call_id?: unknown } | null)?.call_id;
    const callId = typeof rawCallId === 'string' && UUID_RE.test(rawCallId) ? rawCallId : null;
    let json: string | undefined;
    let error: unknown;
    try {
      json = toJsonText({ type, timestamp, data } satisfies WebhookPayload);
    } catch (err) {
      error = err; // e.g. a cycle: set aside, never sent
      this.opts.log.error({ err, event: type, call: callId }, 'webhook outbox: an event could not be serialised; stored as failed');
    }
    for (const endpoint of this.opts.endpoints) {
      const row = { endpoint, eventId: id, eventType: type, callId, timestamp };
      this.buffer.push(json === undefined ? setAside(row, error) : { ...row, json });
    }
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
        continue;
      } catch (err) {
        // The database answers, so a row of the batch is refused: one by one, setting aside what it refuses.
        if (await this.databaseAnswers()) {
          const stored = await this.insertOneByOne(batch);
          this.buffer.splice(0, stored);
          if (stored > 0) this.opts.onInserted?.();
          if (stored === batch.length) continue;
        }
        failures++;
        if (failures === 1 || failures % 20 === 0)
          this.opts.log.error({ err, buffered: this.buffer.length, failures }, 'webhook outbox: storing events failed; retrying');
        // close() takes over: one last try there.
        if (this.stopping) return;
        await this.sleep(Math.min(5000, 100 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  /**
   * Stores the rows one at a time, in order; a row the database refuses while it
   * answers is stored set aside instead (or, if even that is refused, dropped and
   * logged). Returns how many rows were dealt with: fewer than all when the
   * database stopped answering (the rest stay buffered).
   */
  private async insertOneByOne(rows: PendingRow[]): Promise<number> {
    let done = 0;
    for (const row of rows) {
      try {
        await this.insert([row]);
      } catch (err) {
        if (!(await this.databaseAnswers())) return done;
        const dead = setAside(row, err);
        const where = { event: row.eventType, eventId: row.eventId, call: row.callId, endpoint: row.endpoint };
        try {
          await this.insert([dead]);
          this.opts.log.error({ err, ...where }, 'webhook outbox: the database refused an event; stored as failed (see last_error)');
        } catch (err2) {
          if (!(await this.databaseAnswers())) return done;
          this.opts.log.error({ err: err2, ...where }, 'webhook outbox: the database refused an event, even set aside; it is dropped');
        }
      }
      done++;
    }
    return done;
  }

  private async databaseAnswers(): Promise<boolean> {
    try {
      await this.opts.prisma.$queryRaw`SELECT 1`;
      return true;
    } catch {
      return false;
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
        Prisma.sql`(${r.endpoint}, ${r.eventId}::uuid, ${r.eventType}, ${r.callId}::uuid, ${r.json}::jsonb, ${r.error === undefined ? 'pending' : 'failed'}, ${r.error ?? null}::text, timezone('UTC', now()), timezone('UTC', now()))`,
    );
    await this.opts.prisma.$executeRaw`
      INSERT INTO webhook_deliveries (endpoint, event_id, event_type, call_id, payload, status, last_error, created_at, next_attempt_at)
      VALUES ${Prisma.join(values)}`;
  }
}
