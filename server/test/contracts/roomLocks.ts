import type { RoomLocks } from '../../rooms/topology';
import { sleep } from '../helpers/wait';

/** Two nodes' handles on one set of room locks (on a single node: the same handle twice). */
export interface LockNodes {
  a: RoomLocks;
  b: RoomLocks;
  /** How many of `rooms`' locks are still held (the in-process mutex counts every key it queues). */
  held(...rooms: string[]): Promise<number>;
}

/**
 * What every RoomLocks does, written once and declared for each
 * implementation (KeyedMutex on one node, RedisRoomLocks across nodes:
 * room-locks.test.ts). `open` gives fresh locks that wait up to `waitMs`
 * (and, in Redis, expire after `ttlMs`); what only Redis locks do (giving
 * up, renewing) is tested beside them in cluster-parts.test.ts.
 */
export function describeRoomLocks(name: string, open: (opts: { ttlMs: number; waitMs: number }) => LockNodes): void {
  describe(`${name} (the room-lock contract)`, () => {
    it('runs one function at a time per key, in order, and keys in parallel', async () => {
      const { a: m, held } = open({ ttlMs: 2000, waitMs: 2000 });
      const log: string[] = [];
      const step = (key: string, name: string, ms: number) =>
        m.run(key, async () => {
          log.push(`${name}+`);
          await sleep(ms);
          log.push(`${name}-`);
        });
      await Promise.all([step('a', 'a1', 30), step('a', 'a2', 1), step('b', 'b1', 5)]);
      expect(log.indexOf('a1-')).toBeLessThan(log.indexOf('a2+'));
      expect(log.indexOf('b1+')).toBeLessThan(log.indexOf('a1-'));
      expect(await held('a', 'b')).toBe(0);
    });

    it('never runs two sections for the same room at once, across nodes or on one', async () => {
      const { a, b, held } = open({ ttlMs: 2000, waitMs: 10_000 });
      const room = 'shared:room%1';
      let counter = 0;
      let active = 0;
      let maxActive = 0;
      const section = async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        const v = counter;
        await sleep(2);
        counter = v + 1;
        active--;
        return v;
      };
      const runs: Promise<number>[] = [];
      for (let i = 0; i < 20; i++) runs.push(a.run(room, section), b.run(room, section));
      const seen = await Promise.all(runs);
      expect(maxActive).toBe(1);
      expect(counter).toBe(40);
      // Every section saw a different count: no increment was lost.
      expect(new Set(seen).size).toBe(40);
      await Promise.all([a.idle(), b.idle()]);
      expect(await held(room)).toBe(0);
    });

    it('runs sections for different rooms in parallel', async () => {
      const { a, b } = open({ ttlMs: 2000, waitMs: 2000 });
      const t0 = Date.now();
      // Different rooms on two nodes, and different rooms on one node.
      await Promise.all([a.run('room-1', () => sleep(200)), b.run('room-2', () => sleep(200)), a.run('room-3', () => sleep(200))]);
      expect(Date.now() - t0).toBeLessThan(350);
    });

    it('releases the lock when a section throws or rejects, passes the error on, and keeps going', async () => {
      const { a, b, held } = open({ ttlMs: 5000, waitMs: 5000 });
      const room = 'throwing-room';
      const boom = new Error('boom');
      await expect(
        a.run(room, async () => {
          await sleep(5);
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect(await held(room)).toBe(0);
      // The next section, on the other node, gets in at once (not after the 5 s TTL).
      const t0 = Date.now();
      expect(await b.run(room, async () => 'next')).toBe('next');
      expect(Date.now() - t0).toBeLessThan(100);
      // And on the same node too.
      expect(await a.run(room, async () => 'again')).toBe('again');
      // A section that returns a rejected promise, then one that resolves, under one key.
      await expect(a.run('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
      await expect(a.run('k', async () => 42)).resolves.toBe(42);
    });
  });
}
