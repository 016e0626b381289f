import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError } from '../errors';
import { KeyedMutex } from '../lib/keyedMutex';
import type { RoomLocks } from '../rooms/topology';
import type { RedisGate } from './redisGate';
import { roomKeyPart } from './redisRoomStore';

/**
 * A room's lock across nodes: `SET key token NX PX ttl`, released with a
 * compare-and-delete script, renewed while held. Requests of one node for the
 * same room queue on a local KeyedMutex first, so a node never races itself
 * for Redis and the local order is kept; only nodes contend in Redis, where a
 * waiter polls with a short backoff (contention across nodes is rare: a room's
 * changes come from its own participants). Two commands per uncontended lock.
 *
 * The TTL bounds how long a node that dies holding a lock blocks the room; the
 * renewal keeps a long operation (stopping a recording) from losing it.
 *
 * With a RedisGate, a request waits for it before queueing on the local mutex
 * (so that it never holds the room's place while the state is being restored),
 * and a Redis that does not answer is CLUSTER_UNAVAILABLE.
 */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;

export class RedisRoomLocks implements RoomLocks {
  private readonly local = new KeyedMutex();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly opts: { ttlMs: number; waitMs: number } = { ttlMs: 10_000, waitMs: 15_000 },
    private readonly gate?: RedisGate,
  ) {}

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    await this.gate?.ready();
    return this.local.run(key, async () => {
      const redisKey = `${this.prefix}lock:${roomKeyPart(key)}`;
      const token = randomUUID();
      try {
        await this.acquire(redisKey, token);
      } catch (err) {
        // A SET that timed out against a stalled Redis still runs when it wakes up: the
        // release queued behind it frees the lock then, rather than after its TTL.
        this.redis.eval(RELEASE, 1, redisKey, token).catch(() => undefined);
        throw this.gate ? this.gate.translate(err) : err;
      }
      const renew = setInterval(
        () => {
          this.redis.eval(RENEW, 1, redisKey, token, String(this.opts.ttlMs)).catch(() => undefined);
        },
        Math.floor(this.opts.ttlMs / 3),
      );
      renew.unref();
      try {
        return await fn();
      } finally {
        clearInterval(renew);
        await this.redis.eval(RELEASE, 1, redisKey, token).catch(() => undefined);
      }
    });
  }

  private async acquire(key: string, token: string): Promise<void> {
    const deadline = Date.now() + this.opts.waitMs;
    let wait = 2;
    for (;;) {
      if ((await this.redis.set(key, token, 'PX', this.opts.ttlMs, 'NX')) === 'OK') return;
      if (Date.now() >= deadline) throw new AppError('ROOM_BUSY');
      await new Promise((r) => setTimeout(r, wait + Math.random() * wait));
      wait = Math.min(wait * 2, 50);
    }
  }

  idle(): Promise<void> {
    return this.local.idle();
  }
}
