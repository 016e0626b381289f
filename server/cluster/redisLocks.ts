import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError } from '../errors';
import { KeyedMutex } from '../lib/keyedMutex';
import type { RoomLocks } from '../rooms/topology';
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
 */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;

export class RedisRoomLocks implements RoomLocks {
  private readonly local = new KeyedMutex();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly opts: { ttlMs: number; waitMs: number } = { ttlMs: 10_000, waitMs: 15_000 },
  ) {}

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.local.run(key, async () => {
      const redisKey = `${this.prefix}lock:${roomKeyPart(key)}`;
      const token = randomUUID();
      await this.acquire(redisKey, token);
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
