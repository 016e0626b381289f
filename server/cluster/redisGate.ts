import type { Redis } from 'ioredis';
import { AppError } from '../errors';
import { isRedisOutage } from '../lib/redisOutage';

/**
 * What stands between the room services and Redis (the room store and the
 * room locks go through it):
 *
 * - **down** (the command connection is not ready): every request fails at
 *   once with CLUSTER_UNAVAILABLE, instead of waiting in an offline queue;
 *   a command cut off or timed out against a stalled server fails the same way.
 * - **restoring** (the connection dropped, or a command timed out, and it has
 *   not been verified since): the first request runs the verifier, which checks
 *   that Redis still holds the cluster's state (the epoch key, cluster.ts) and,
 *   when it came back empty, writes back what this node owns (restore.ts).
 *   Requests wait for it (at most `waitMs`, then CLUSTER_UNAVAILABLE), so that
 *   none of them ever reads the empty Redis and concludes that its room or its
 *   participant is gone: that would end sessions for good (NOT_JOINED).
 * - **up**: requests pass.
 *
 * The restore itself goes through another store and locks that skip the gate.
 */
export type RedisState = 'up' | 'down' | 'restoring';

export class RedisGate {
  private stale = false;
  /** Connection losses so far: a verification only clears `stale` when none happened while it ran. */
  private drops = 0;
  private verifying: Promise<void> | undefined;
  private verifier: (() => Promise<void>) | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly waitMs: number,
  ) {
    redis.on('close', () => {
      this.stale = true;
      this.drops++;
    });
    // Verify as soon as the connection is back, rather than on the first request.
    redis.on('ready', () => {
      if (this.stale) this.verify().catch(() => undefined);
    });
  }

  /** What verifies (and after a loss restores) the state once Redis answers again. */
  setVerifier(fn: () => Promise<void>): void {
    this.verifier = fn;
  }

  get state(): RedisState {
    if (this.redis.status !== 'ready') return 'down';
    return this.stale ? 'restoring' : 'up';
  }

  /** Something suggests Redis may have lost or missed state (the heartbeat's epoch check, a timeout). */
  markStale(): void {
    this.stale = true;
  }

  /** Runs the verifier once for everyone waiting; resolves when the state is known good. */
  verify(): Promise<void> {
    this.verifying ??= (async () => {
      const drops = this.drops;
      try {
        if (this.redis.status !== 'ready') throw new AppError('CLUSTER_UNAVAILABLE');
        await this.verifier?.();
        if (this.drops === drops) this.stale = false;
      } finally {
        this.verifying = undefined;
      }
    })();
    return this.verifying;
  }

  /** Waits until requests may use Redis: throws CLUSTER_UNAVAILABLE when it is down, or still restoring after waitMs. */
  async ready(): Promise<void> {
    if (this.redis.status !== 'ready') {
      this.stale = true;
      throw new AppError('CLUSTER_UNAVAILABLE');
    }
    if (!this.stale) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new AppError('CLUSTER_UNAVAILABLE', 'the room state is being restored after a Redis outage; try again shortly')),
        this.waitMs,
      );
    });
    try {
      await Promise.race([this.verify(), late]);
    } catch (err) {
      throw this.translate(err);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A request against Redis: waits for ready(), and turns a connection failure into CLUSTER_UNAVAILABLE. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.ready();
    try {
      return await fn();
    } catch (err) {
      throw this.translate(err);
    }
  }

  /** An error of a command: a Redis outage becomes CLUSTER_UNAVAILABLE (and the state must be verified again). */
  translate(err: unknown): unknown {
    if (err instanceof AppError || !isRedisOutage(err)) return err;
    this.stale = true;
    return new AppError('CLUSTER_UNAVAILABLE');
  }
}
