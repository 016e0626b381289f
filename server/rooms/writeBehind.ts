import type { FastifyBaseLogger } from 'fastify';
import { isDatabaseOutage } from '../lib/dbOutage';
import { AppError } from '../errors';

export interface WriteBehindOptions {
  /** Queued writes past which new joins are refused (DATABASE_UNAVAILABLE) until the backlog drains. */
  maxPending?: number;
  /** Retry delays after an outage error: first, doubling up to max (ms). */
  retryMinMs?: number;
  retryMaxMs?: number;
  onFailure?: () => void;
  onBacklog?: (pending: number) => void;
}

/**
 * Database writes that signaling must not wait for (participant rows, call
 * events, role changes, leaves). Writes with the same key (a participant, a
 * call) run in order. A write failing because the database is down (stopped,
 * unreachable, timed out: db/outage.ts) is retried with backoff until it
 * passes, in its place, so an outage loses nothing; any other failure (a bug,
 * a constraint) would fail again, so it is logged and counted, not retried.
 *
 * Memory is bounded by refusing, loudly, rather than spilling: past maxPending
 * queued writes `saturated` is true and admission refuses new joins with
 * DATABASE_UNAVAILABLE, while calls already running go on (their writes are
 * bounded by the per-socket rate limits). A queued write is a closure of a few
 * hundred bytes: the default of 100,000 is tens of MB.
 */
export class WriteBehind {
  private readonly tails = new Map<string, Promise<void>>();
  private pendingCount = 0;
  private retrying = 0;
  private readonly maxPending: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private stopped = false;

  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly opts: WriteBehindOptions = {},
  ) {
    this.maxPending = opts.maxPending ?? 100_000;
    this.retryMinMs = opts.retryMinMs ?? 250;
    this.retryMaxMs = opts.retryMaxMs ?? 2000;
  }

  /** Writes queued or running. */
  get pending(): number {
    return this.pendingCount;
  }

  /** True while the backlog is at its bound: new joins are refused. */
  get saturated(): boolean {
    return this.pendingCount >= this.maxPending;
  }

  /** Throws DATABASE_UNAVAILABLE when the backlog is full (admission calls it before admitting anyone). */
  assertAccepting(): void {
    if (this.saturated) throw new AppError('DATABASE_UNAVAILABLE', `the database is unavailable and ${this.pendingCount} writes wait for it; try again later`);
  }

  enqueue(key: string, what: string, write: () => Promise<unknown>): void {
    const prev = this.tails.get(key) ?? Promise.resolve();
    this.changePending(1);
    const tail: Promise<void> = prev
      .then(() => this.withRetry(key, what, write))
      .finally(() => {
        this.changePending(-1);
        if (this.tails.get(key) === tail) this.tails.delete(key);
      });
    this.tails.set(key, tail);
  }

  private async withRetry(key: string, what: string, write: () => Promise<unknown>): Promise<void> {
    let delay = this.retryMinMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await write();
        if (attempt > 1) {
          this.retrying--;
          this.log.info({ key, what, attempts: attempt }, 'database write behind signaling passed after retries');
        }
        return;
      } catch (err) {
        if (!isDatabaseOutage(err) || this.stopped) {
          if (attempt > 1) this.retrying--;
          this.opts.onFailure?.();
          this.log.error({ err, key, what, attempts: attempt, pending: this.pendingCount }, 'database write behind signaling failed; it is not written');
          return;
        }
        if (attempt === 1) {
          this.retrying++;
          // One line per write that starts waiting, not per retry.
          this.log.warn({ key, what, pending: this.pendingCount, retrying: this.retrying }, 'database unavailable: a write behind signaling waits for it');
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(this.retryMaxMs, delay * 2);
      }
    }
  }

  private changePending(by: number): void {
    this.pendingCount += by;
    this.opts.onBacklog?.(this.pendingCount);
  }

  /**
   * Waits for everything queued. With a timeout (shutdown: the database may
   * still be down), resolves false when writes are left; from then on failing
   * writes are not retried, and each is logged as not written.
   */
  async flush(timeoutMs?: number): Promise<boolean> {
    const all = (async () => {
      while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
    })();
    if (timeoutMs === undefined) {
      await all;
      return true;
    }
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([all.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    clearTimeout(timer);
    return done;
  }

  /** Shutdown: stop retrying (each write still failing is then logged as lost) and report what is left. */
  stop(): number {
    this.stopped = true;
    return this.pendingCount;
  }
}
