import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';

/**
 * The machine's Redis for tests (TEST_REDIS_URL), shared with other runs:
 * every test file keeps to key prefixes of its own and deletes them after.
 */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Every key starting with `prefix` (glob characters in it match only themselves). */
export async function keysWith(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

export async function deleteKeysWith(redis: Redis, prefix: string): Promise<void> {
  const keys = await keysWith(redis, prefix);
  for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
}

export interface RedisScope {
  /** A connection for the file's own checks. */
  readonly redis: Redis;
  /** The prefix every key of this file starts with. */
  readonly runPrefix: string;
  /** A prefix of its own under runPrefix, so that a test starts from nothing. */
  freshPrefix(): string;
  /** Another connection (a second "node"), closed after the file. */
  open(options?: RedisOptions): Redis;
}

/**
 * Redis for one test file: opens connections before its tests and, after
 * them, deletes every key under `<label>-<uuid>:`, checks that none is left
 * and closes the connections.
 */
export function useRedis(label: string): RedisScope {
  const runPrefix = `${label}-${randomUUID()}:`;
  const clients: Redis[] = [];
  let main: Redis | undefined;
  let n = 0;
  const open = (options: RedisOptions = {}): Redis => {
    const r = new Redis(REDIS_URL, options);
    clients.push(r);
    return r;
  };
  beforeAll(() => {
    main = open();
  });
  afterAll(async () => {
    await deleteKeysWith(main!, runPrefix);
    expect(await keysWith(main!, runPrefix)).toEqual([]);
    await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  });
  return {
    get redis() {
      if (!main) throw new Error('useRedis: the connection opens in beforeAll');
      return main;
    },
    runPrefix,
    freshPrefix: () => `${runPrefix}${++n}:`,
    open,
  };
}
