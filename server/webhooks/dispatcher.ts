import type { FastifyBaseLogger } from 'fastify';
import type { PrismaClient } from '../generated/prisma/client';
import { storableText } from '../lib/text';
import { webhookHeaders, webhookId } from './signature';
import type { WebhookPayload } from './outbox';

/**
 * Sends the webhook_deliveries rows. Any number of nodes may run one against
 * the same PostgreSQL; each row is sent by one of them at a time.
 *
 * Claiming: one UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) … RETURNING
 * takes a lease on the due rows: attempts + 1 and next_attempt_at = now + lease.
 * A row leased by another node is not due (its next_attempt_at is in the
 * future) and a row another claimer is locking right now is skipped, so two
 * nodes never hold the same row. The lease outlives the request timeout; a node
 * that dies mid-request leaves the row to be claimed again when the lease ends.
 * `attempts` doubles as the fencing token: an outcome is written only
 * `WHERE attempts = <the value this claim set>`, so a node whose lease ran out
 * cannot overwrite the outcome of the node that took the row over.
 *
 * Ordering: a pending row is eligible only when no older pending row of the same
 * (endpoint, call_id) exists. The head of each group is therefore the only
 * candidate, later rows wait until it is delivered or failed for good, and
 * different calls and endpoints proceed in parallel. Rows without a call_id are
 * not ordered among themselves.
 *
 * Isolation: each endpoint has its own budget of requests in flight on this node
 * (WEBHOOK_CONCURRENCY_PER_ENDPOINT); one claim takes, per endpoint with due rows,
 * at most what that endpoint has left. A receiver that never answers holds its own
 * slots for WEBHOOK_TIMEOUT_MS each, never another endpoint's.
 *
 * Wake-ups: start(), every insert (WebhookOutbox.onInserted), the end of every
 * delivery (the next row of its group may now be due), a timer at the earliest
 * retry this node scheduled, and a poll every pollIntervalMs (rows other nodes
 * inserted or whose leases expired). Delivered rows older than retentionDays are
 * deleted every pruneIntervalMs.
 */
export interface WebhookDispatcherOptions {
  prisma: PrismaClient;
  log: FastifyBaseLogger;
  /** The signing keys (WEBHOOK_SECRET): one v1 signature each. */
  keys: readonly Buffer[];
  /** WEBHOOK_MAX_ATTEMPTS: after this many attempts a row is `failed`. */
  maxAttempts: number;
  /** WEBHOOK_TIMEOUT_MS: per request, headers and body. */
  timeoutMs: number;
  /** WEBHOOK_CONCURRENCY_PER_ENDPOINT: parallel requests per endpoint (default 8). */
  concurrencyPerEndpoint?: number;
  /** First retry delay; doubles each attempt (default 1000). */
  backoffBaseMs?: number;
  /** Longest retry delay (default 5 min). */
  backoffMaxMs?: number;
  /** How often the table is polled when nothing wakes the loop (default 1000). */
  pollIntervalMs?: number;
  /** A claim holds a row this long (default timeoutMs + 30 s). */
  leaseMs?: number;
  /** Delivered rows older than this are deleted (default 7). */
  retentionDays?: number;
  pruneIntervalMs?: number;
  /** For tests: the randomness of the jitter (0 ≤ x < 1). */
  random?: () => number;
  /** After every attempt (metrics): what became of the delivery, and how long the request took. */
  onAttempt?: (status: WebhookAttemptStatus, seconds: number) => void;
}

/** What became of a delivery after one attempt: interrupted is a request cut by shutdown (given back, not counted). */
export type WebhookAttemptStatus = 'delivered' | 'retried' | 'failed' | 'interrupted';

/** The backoff options a test (or an embedding application) may tune. */
export type WebhookTuning = Pick<
  WebhookDispatcherOptions,
  'concurrencyPerEndpoint' | 'backoffBaseMs' | 'backoffMaxMs' | 'pollIntervalMs' | 'leaseMs' | 'retentionDays' | 'pruneIntervalMs' | 'random'
>;

interface ClaimedRow {
  id: bigint;
  endpoint: string;
  event_id: string;
  payload: WebhookPayload;
  attempts: number;
}

type Outcome = { ok: true; status: number } | { ok: false; status: number | null; error: string; aborted: boolean };

const ERROR_SNIPPET = 500;

/** Delay before retry number `attempt` (1-based: after the first failure): base·2^(attempt-1), capped, plus up to 25 % jitter (still capped). */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.min(maxMs, Math.round(exp * (1 + 0.25 * random())));
}

/** At most `max` characters of a response body (the rest is not read). */
async function readSnippet(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length < max) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return text.slice(0, max);
}

function describeError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return `timed out after ${timeoutMs} ms`;
  const cause = e?.cause;
  if (cause && (cause.code || cause.message)) return storableText([cause.code, cause.message].filter(Boolean).join(': ').slice(0, ERROR_SNIPPET));
  return storableText(String(e?.message ?? err).slice(0, ERROR_SNIPPET));
}

export class WebhookDispatcher {
  private readonly o: Required<Omit<WebhookDispatcherOptions, 'prisma' | 'log' | 'onAttempt'>> & Pick<WebhookDispatcherOptions, 'prisma' | 'log' | 'onAttempt'>;
  private running = false;
  private pumping: Promise<void> | undefined;
  private again = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAt = Infinity;
  private lastPrune = 0;
  private failingSince = 0;
  private stopController = new AbortController();
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Requests in flight per endpoint. */
  private readonly busy = new Map<string, number>();

  constructor(opts: WebhookDispatcherOptions) {
    this.o = {
      concurrencyPerEndpoint: 8,
      backoffBaseMs: 1000,
      backoffMaxMs: 5 * 60_000,
      pollIntervalMs: 1000,
      leaseMs: opts.timeoutMs + 30_000,
      retentionDays: 7,
      pruneIntervalMs: 10 * 60_000,
      random: Math.random,
      ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
    } as WebhookDispatcher['o'];
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopController = new AbortController();
    this.pollTimer = setInterval(() => this.wake(), this.o.pollIntervalMs);
    this.pollTimer.unref();
    this.wake();
  }

  /** Looks for due rows now (called after inserts). */
  wake(): void {
    if (!this.running) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      if (this.again) this.wake();
    });
  }

  /**
   * Stops claiming, aborts the requests in flight and gives their rows back
   * (the attempt is not counted; the receiver may have got it: at-least-once).
   * The database must still be open.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
    this.stopController.abort(new Error('the server is shutting down'));
    await this.pumping;
    await Promise.allSettled([...this.inFlight.values()]);
    this.retryAt = Infinity;
  }

  private async pump(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.maybePrune();
        const busy = Object.fromEntries(this.busy);
        const rows = await this.claim(busy);
        if (this.failingSince) {
          this.o.log.info('webhook dispatcher: the database answers again');
          this.failingSince = 0;
        }
        if (!this.running) {
          await Promise.all(rows.map((r) => this.release(r)));
          return;
        }
        const claimed = new Map<string, number>();
        for (const row of rows) {
          this.track(row);
          claimed.set(row.endpoint, (claimed.get(row.endpoint) ?? 0) + 1);
        }
        // An endpoint that got all it had room for may have more due.
        for (const [endpoint, n] of claimed) if (n >= this.o.concurrencyPerEndpoint - (busy[endpoint] ?? 0)) this.again = true;
      } catch (err) {
        if (!this.failingSince) {
          this.failingSince = Date.now();
          this.o.log.error({ err }, 'webhook dispatcher: claiming deliveries failed; retrying on the next poll');
        }
        return;
      }
    } while (this.again && this.running);
  }

  private track(row: ClaimedRow): void {
    const key = row.id.toString();
    this.busy.set(row.endpoint, (this.busy.get(row.endpoint) ?? 0) + 1);
    const p = this.deliver(row)
      .catch((err: unknown) => this.o.log.error({ err, delivery: key }, 'webhook dispatcher: recording a delivery attempt failed'))
      .finally(() => {
        this.inFlight.delete(key);
        const n = (this.busy.get(row.endpoint) ?? 1) - 1;
        if (n > 0) this.busy.set(row.endpoint, n);
        else this.busy.delete(row.endpoint);
        this.wake();
      });
    this.inFlight.set(key, p);
  }

  /** Leases due rows: per endpoint with due rows, up to what it has left of its budget (`busy`: its requests in flight). */
  private async claim(busy: Record<string, number>): Promise<ClaimedRow[]> {
    const leaseSeconds = this.o.leaseMs / 1000;
    return this.o.prisma.$queryRaw<ClaimedRow[]>`
      UPDATE webhook_deliveries w
      SET attempts = w.attempts + 1,
          next_attempt_at = timezone('UTC', now()) + make_interval(secs => ${leaseSeconds}::float8)
      WHERE w.id IN (
        SELECT c.id
        FROM (
          SELECT DISTINCT p.endpoint FROM webhook_deliveries p
          WHERE p.status = 'pending' AND p.next_attempt_at <= timezone('UTC', now())
        ) ep
        CROSS JOIN LATERAL (
          SELECT d.id FROM webhook_deliveries d
          WHERE d.endpoint = ep.endpoint
            AND d.status = 'pending'
            AND d.next_attempt_at <= timezone('UTC', now())
            AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries e
              WHERE e.endpoint = d.endpoint AND e.call_id = d.call_id AND e.status = 'pending' AND e.id < d.id
            )
          ORDER BY d.id
          LIMIT GREATEST(0, ${this.o.concurrencyPerEndpoint}::int - COALESCE((${JSON.stringify(busy)}::jsonb ->> ep.endpoint)::int, 0))
          FOR UPDATE OF d SKIP LOCKED
        ) c
      )
        AND w.status = 'pending'
        AND w.next_attempt_at <= timezone('UTC', now())
      RETURNING w.id, w.endpoint, w.event_id::text AS event_id, w.payload, w.attempts`;
  }

  /** Gives a claimed row back without counting the attempt. */
  private async release(row: ClaimedRow, error?: string): Promise<void> {
    await this.o.prisma.$executeRaw`
      UPDATE webhook_deliveries
      SET attempts = attempts - 1, next_attempt_at = timezone('UTC', now()), last_error = COALESCE(${error ?? null}::text, last_error)
      WHERE id = ${row.id} AND attempts = ${row.attempts}::int AND status = 'pending'`;
  }

  private async deliver(row: ClaimedRow): Promise<void> {
    const started = performance.now();
    const outcome = await this.send(row);
    const seconds = (performance.now() - started) / 1000;
    if (outcome.ok) {
      this.o.onAttempt?.('delivered', seconds);
      await this.o.prisma.$executeRaw`
        UPDATE webhook_deliveries
        SET status = 'delivered', delivered_at = timezone('UTC', now()), last_status = ${outcome.status}::int, last_error = NULL
        WHERE id = ${row.id} AND attempts = ${row.attempts}::int AND status = 'pending'`;
      return;
    }
    if (outcome.aborted && !this.running) {
      this.o.onAttempt?.('interrupted', seconds);
      await this.release(row, 'interrupted: the server shut down during the request');
      return;
    }
    const failed = row.attempts >= this.o.maxAttempts;
    this.o.onAttempt?.(failed ? 'failed' : 'retried', seconds);
    const delayMs = failed ? 0 : backoffDelay(row.attempts, this.o.backoffBaseMs, this.o.backoffMaxMs, this.o.random);
    await this.o.prisma.$executeRaw`
      UPDATE webhook_deliveries
      SET status = ${failed ? 'failed' : 'pending'},
          next_attempt_at = timezone('UTC', now()) + make_interval(secs => ${delayMs / 1000}::float8),
          last_status = ${outcome.status}::int,
          last_error = ${outcome.error}
      WHERE id = ${row.id} AND attempts = ${row.attempts}::int AND status = 'pending'`;
    if (failed) {
      this.o.log.warn(
        { delivery: row.id.toString(), endpoint: row.endpoint, event: row.payload.type, attempts: row.attempts, error: outcome.error },
        'webhook delivery failed for good',
      );
    } else {
      this.o.log.debug(
        { delivery: row.id.toString(), endpoint: row.endpoint, attempts: row.attempts, delayMs, error: outcome.error },
        'webhook delivery failed; will retry',
      );
      this.scheduleRetry(delayMs);
    }
  }

  /**
   * One POST. The body is rebuilt from the stored payload in the envelope's key
   * order, the same bytes on every attempt (rows stored before the Standard
   * Webhooks envelope had `created_at`: it becomes `timestamp`).
   */
  private async send(row: ClaimedRow): Promise<Outcome> {
    const p = row.payload as WebhookPayload & { created_at?: string };
    const body = JSON.stringify({ type: p.type, timestamp: p.timestamp ?? p.created_at, data: p.data });
    const signal = AbortSignal.any([AbortSignal.timeout(this.o.timeoutMs), this.stopController.signal]);
    try {
      const res = await fetch(row.endpoint, {
        method: 'POST',
        headers: webhookHeaders(this.o.keys, webhookId(row.event_id), body),
        body,
        signal,
        redirect: 'manual',
      });
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel().catch(() => undefined);
        return { ok: true, status: res.status };
      }
      const snippet = storableText(await readSnippet(res, ERROR_SNIPPET).catch(() => ''));
      return { ok: false, status: res.status, error: `HTTP ${res.status}${snippet ? `: ${snippet}` : ''}`, aborted: false };
    } catch (err) {
      const aborted = this.stopController.signal.aborted;
      return { ok: false, status: null, error: aborted ? 'interrupted' : describeError(err, this.o.timeoutMs), aborted };
    }
  }

  /** Wakes the loop when the earliest retry this node scheduled is due (the poll covers the rest). */
  private scheduleRetry(delayMs: number): void {
    if (!this.running) return;
    const at = Date.now() + delayMs;
    if (at >= this.retryAt && this.retryTimer) return;
    clearTimeout(this.retryTimer);
    this.retryAt = at;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retryAt = Infinity;
      this.wake();
    }, delayMs + 5);
    this.retryTimer.unref();
  }

  private async maybePrune(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPrune < this.o.pruneIntervalMs) return;
    this.lastPrune = now;
    const deleted = await this.prune();
    if (deleted > 0) this.o.log.info({ deleted }, 'webhook dispatcher: pruned old delivered rows');
  }

  /** Deletes delivered rows older than retentionDays (in batches); returns how many. */
  async prune(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.o.prisma.$executeRaw`
        DELETE FROM webhook_deliveries WHERE id IN (
          SELECT id FROM webhook_deliveries
          WHERE status = 'delivered' AND delivered_at < timezone('UTC', now()) - make_interval(days => ${this.o.retentionDays}::int)
          LIMIT 5000
        )`;
      total += n;
      if (n < 5000) return total;
    }
  }
}
