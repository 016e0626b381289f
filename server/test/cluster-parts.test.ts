import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { NodeRegistry, loadScore, pickNode, type NodeInfo, type NodeLoad } from '../cluster/nodes';
import { RedisRoomLocks } from '../cluster/redisLocks';
import { roomKeyPart } from '../cluster/redisRoomStore';
import { MediaRpc } from '../cluster/rpc';
import { AppError, ErrorCode } from '../errors';
import type { MediaService } from '../mediaNode/service';
import { useRedis } from './helpers/redis';
import { sleep } from './helpers/wait';

/**
 * The cluster's building blocks on their own, against the machine's Redis:
 * room locks across two "nodes" (two connections), media RPC between two
 * nodes, node placement and the node registry. Every key of this run starts
 * with `sbtest-parts-<uuid>:` and is deleted after it (helpers/redis.ts).
 */
const scope = useRedis('sbtest-parts');
const { freshPrefix, open } = scope;
let redis: Redis;
beforeAll(() => {
  redis = scope.redis;
});

const log = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;

/** The settled outcome of a promise, timed. */
async function outcome<T>(p: Promise<T>): Promise<{ ok?: T; err?: unknown; ms: number }> {
  const t0 = Date.now();
  try {
    const ok = await p;
    return { ok, ms: Date.now() - t0 };
  } catch (err) {
    return { err, ms: Date.now() - t0 };
  }
}

/** What only Redis locks do; what every room lock does is in room-locks.test.ts. */
describe('RedisRoomLocks', () => {
  /** Two nodes: two connections, the same prefix. */
  const twoNodes = (opts: { ttlMs: number; waitMs: number }) => {
    const prefix = freshPrefix();
    return { prefix, a: new RedisRoomLocks(open(), prefix, opts), b: new RedisRoomLocks(open(), prefix, opts) };
  };
  const lockKey = (prefix: string, room: string) => `${prefix}lock:${roomKeyPart(room)}`;

  it('gives up with ROOM_BUSY after waitMs when the holder never releases', async () => {
    const { prefix, a } = twoNodes({ ttlMs: 2000, waitMs: 300 });
    const room = 'stuck:room%';
    // Another node holds the lock and never releases it (it keeps renewing, or is slow to die).
    await redis.set(lockKey(prefix, room), 'someone-else', 'PX', 10_000);
    expect(lockKey(prefix, room)).toBe(`${prefix}lock:stuck%3Aroom%25`);
    let ran = false;
    const r = await outcome(
      a.run(room, async () => {
        ran = true;
      }),
    );
    expect(r.err).toBeInstanceOf(AppError);
    expect(r.err).toMatchObject({ status: 503, code: ErrorCode.ROOM_BUSY });
    expect(r.ms).toBeGreaterThanOrEqual(290);
    expect(r.ms).toBeLessThan(800);
    expect(ran).toBe(false);
    // The waiter did not touch the holder's lock.
    expect(await redis.get(lockKey(prefix, room))).toBe('someone-else');
    // Once the holder lets go, the room is usable again.
    await redis.del(lockKey(prefix, room));
    expect(await a.run(room, async () => 'in')).toBe('in');
  });

  it('renews a lock held longer than its TTL by a running section', async () => {
    const { prefix, a, b } = twoNodes({ ttlMs: 300, waitMs: 3000 });
    const room = 'long-room';
    const events: string[] = [];
    let pttlMidway = -10;
    const first = a.run(room, async () => {
      events.push('a-in');
      await sleep(700);
      pttlMidway = await redis.pttl(lockKey(prefix, room));
      await sleep(300);
      events.push('a-out');
    });
    await sleep(50);
    const second = b.run(room, async () => {
      events.push('b-in');
    });
    await Promise.all([first, second]);
    // Still held (with a TTL) well past the first TTL, and b only got in after a left.
    expect(pttlMidway).toBeGreaterThan(0);
    expect(pttlMidway).toBeLessThanOrEqual(300);
    expect(events).toEqual(['a-in', 'a-out', 'b-in']);
  });
});

describe('MediaRpc', () => {
  const prefix = freshPrefix();
  const calls: Array<{ method: string; args: unknown[] }> = [];
  const record =
    <T>(method: string, result: (...args: unknown[]) => T | Promise<T>) =>
    async (...args: unknown[]): Promise<T> => {
      calls.push({ method, args });
      return result(...args);
    };
  const transport = { transport_id: 't1', ice_parameters: { u: 'x' }, ice_candidates: [{ ip: '10.0.0.1' }], dtls_parameters: { role: 'auto' } };
  /** node-b's own media: records the calls and answers as each test needs. */
  const localB = {
    createTransport: record('createTransport', () => transport),
    setPreferredLayers: record('setPreferredLayers', () => undefined),
    startRecording: record('startRecording', () => ({ recording_id: 'rec-1', started_at: '2024-01-01T00:00:00.000Z', mode: 'mixed' })),
    connectTransport: record('connectTransport', () => {
      throw new AppError('TRANSPORT_NOT_FOUND', 'x');
    }),
    restartIce: record('restartIce', () => {
      throw new Error('secret: postgres://admin:hunter2@db');
    }),
    open: record('open', () => new Promise<void>(() => undefined)),
  } as unknown as MediaService;
  const localA = { createTransport: async () => ({ transport_id: 'on-a' }) } as unknown as MediaService;
  let a: MediaRpc;
  let b: MediaRpc;

  beforeAll(async () => {
    a = new MediaRpc(open(), open(), prefix, 'node-a', localA, 300, log);
    b = new MediaRpc(open(), open(), prefix, 'node-b', localB, 300, log);
    await Promise.all([a.start(), b.start()]);
  });
  beforeEach(() => {
    calls.length = 0;
  });

  it('runs a call on the target node and returns its result', async () => {
    await expect(a.at('node-b').createTransport('room-1', 'p1', 'send')).resolves.toEqual(transport);
    expect(calls).toEqual([{ method: 'createTransport', args: ['room-1', 'p1', 'send'] }]);
    expect(b.served).toBe(1);
    expect(a.sent).toBe(1);
  });

  it('passes undefined arguments as undefined and null as null', async () => {
    await expect(a.at('node-b').setPreferredLayers('room-1', 'p1', 'c1', 1, undefined)).resolves.toBeNull();
    await a.at('node-b').startRecording('room-1', 'call-1', null, undefined);
    expect(calls).toHaveLength(2);
    expect(calls[0]!.args).toHaveLength(5);
    expect(calls[0]!.args).toEqual(['room-1', 'p1', 'c1', 1, undefined]);
    expect(calls[0]!.args[4]).toBeUndefined();
    expect(calls[1]!.args).toHaveLength(4);
    expect(calls[1]!.args[2]).toBeNull();
    expect(calls[1]!.args[3]).toBeUndefined();
  });

  it('brings an AppError back with its status, code and message', async () => {
    const r = await outcome(a.at('node-b').connectTransport('room-1', 'p1', 't1', { role: 'client' }));
    expect(r.err).toBeInstanceOf(AppError);
    expect(r.err).toMatchObject({ status: 404, code: 'TRANSPORT_NOT_FOUND', message: 'x' });
    expect(calls).toEqual([{ method: 'connectTransport', args: ['room-1', 'p1', 't1', { role: 'client' }] }]);
  });

  it('turns any other error into INTERNAL_ERROR without its message', async () => {
    const r = await outcome(a.at('node-b').restartIce('room-1', 'p1', 't1'));
    expect(r.err).toBeInstanceOf(AppError);
    expect(r.err).toMatchObject({ status: 500, code: ErrorCode.INTERNAL_ERROR });
    expect((r.err as Error).message).not.toMatch(/secret|hunter2|postgres/);
  });

  it('fails at once with MEDIA_UNAVAILABLE for a node nobody listens for', async () => {
    const r = await outcome(a.at('node-zzz').createTransport('room-1', 'p1', 'send'));
    expect(r.err).toBeInstanceOf(AppError);
    expect(r.err).toMatchObject({ status: 503, code: ErrorCode.MEDIA_UNAVAILABLE });
    expect(r.ms).toBeLessThan(200);
  });

  it('fails with MEDIA_UNAVAILABLE after the timeout when the node never answers', async () => {
    const r = await outcome(a.at('node-b').open('room-silent'));
    expect(calls).toEqual([{ method: 'open', args: ['room-silent'] }]);
    expect(r.err).toBeInstanceOf(AppError);
    expect(r.err).toMatchObject({ status: 503, code: ErrorCode.MEDIA_UNAVAILABLE });
    expect(r.ms).toBeGreaterThanOrEqual(290);
    expect(r.ms).toBeLessThan(1000);
  });

  it('gives its own node the local service itself, and the same forwarder each time', async () => {
    expect(a.at('node-a')).toBe(localA);
    expect(b.at('node-b')).toBe(localB);
    expect(a.at('node-b')).toBe(a.at('node-b'));
    await expect(a.at('node-a').createTransport('r', 'p', 'send')).resolves.toEqual({ transport_id: 'on-a' });
    expect(calls).toEqual([]);
  });

  it('does not crash the process when Redis stalls or fails under a call', async () => {
    // A publish slower than the timeout (a Redis stall), and one that fails
    // (Redis down): the caller gets an error, and no rejection is left unhandled.
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const stalled = { publish: () => sleep(250).then(() => 1) } as unknown as Redis;
      const failing = { publish: () => Promise.reject(new Error('Connection is closed.')) } as unknown as Redis;
      const noSub = {} as unknown as Redis;
      const slow = new MediaRpc(stalled, noSub, prefix, 'node-stall', localA, 100, log);
      const down = new MediaRpc(failing, noSub, prefix, 'node-down', localA, 100, log);
      const r1 = await outcome(slow.at('node-b').createTransport('r', 'p', 'send'));
      expect(r1.err).toMatchObject({ code: ErrorCode.MEDIA_UNAVAILABLE });
      const r2 = await outcome(down.at('node-b').createTransport('r', 'p', 'send'));
      expect((r2.err as Error).message).toBe('Connection is closed.');
      // Past the timeout of the failed call's request.
      await sleep(200);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('rejects pending calls on close()', async () => {
    const pending = outcome(a.at('node-b').open('room-closing'));
    await sleep(50);
    expect(calls).toHaveLength(1);
    a.close();
    const r = await pending;
    expect(r.err).toBeInstanceOf(AppError);
    expect(r.err).toMatchObject({ status: 503, code: ErrorCode.MEDIA_UNAVAILABLE });
    expect(r.ms).toBeLessThan(200);
  });
});

describe('pickNode and loadScore', () => {
  const load = (l: Partial<NodeLoad> = {}): NodeLoad => ({ rooms: 0, peers: 0, connections: 0, workers: 1, ...l });
  const node = (id: string, l: Partial<NodeLoad> = {}, draining = false): NodeInfo => ({ id, address: `${id}:3000`, startedAt: 0, draining, load: load(l) });

  it('weighs peers, rooms and connections per worker', () => {
    expect(loadScore(load())).toBe(0);
    expect(loadScore(load({ peers: 4, rooms: 1, connections: 10, workers: 2 }))).toBeCloseTo(3.5);
    expect(loadScore(load({ peers: 3 }))).toBe(3);
    expect(loadScore(load({ rooms: 3 }))).toBe(6);
    expect(loadScore(load({ connections: 30 }))).toBeCloseTo(3);
    // No workers: not a division by zero.
    expect(loadScore(load({ peers: 5, workers: 0 }))).toBe(5);
  });

  it('picks the least loaded node', () => {
    const nodes = [node('a', { peers: 10 }), node('b', { peers: 3 }), node('c', { peers: 6 })];
    expect(pickNode(nodes)?.id).toBe('b');
    // More workers carry more.
    expect(pickNode([node('a', { peers: 10, workers: 4 }), node('b', { peers: 3 })])?.id).toBe('a');
  });

  it('skips draining nodes and nodes without workers', () => {
    const nodes = [node('idle-draining', {}, true), node('no-workers', { workers: 0 }), node('busy', { peers: 50 })];
    expect(pickNode(nodes)?.id).toBe('busy');
    expect(pickNode([node('x', {}, true), node('y', { workers: 0 })])).toBeUndefined();
  });

  it('counts pending placements as rooms', () => {
    const nodes = [node('a', { rooms: 0 }), node('b', { rooms: 1 })];
    expect(pickNode(nodes)?.id).toBe('a');
    expect(pickNode(nodes, new Map([['a', 2]]))?.id).toBe('b');
    // A pending placement on an unknown node changes nothing.
    expect(pickNode(nodes, new Map([['zzz', 5]]))?.id).toBe('a');
  });

  it('breaks ties at random among equals only', () => {
    const nodes = [node('a', { peers: 2 }), node('b', { peers: 1, rooms: 0, connections: 10 }), node('c', { peers: 2, rooms: 1 }), node('d', { peers: 5 })];
    // a and b both score 2; c scores 4, d 5.
    const picked = new Set<string>();
    for (let i = 0; i < 200; i++) picked.add(pickNode(nodes)!.id);
    expect([...picked].sort()).toEqual(['a', 'b']);
  });

  it('returns undefined for no nodes', () => {
    expect(pickNode([])).toBeUndefined();
  });
});

describe('NodeRegistry', () => {
  const info = (id: string, peers = 0): NodeInfo => ({
    id,
    address: `10.0.0.${id.length}:3000`,
    startedAt: 1234,
    draining: false,
    load: { rooms: 1, peers, connections: 2, workers: 1 },
  });

  it('lists heartbeating nodes as live, with their descriptions', async () => {
    const reg = new NodeRegistry(redis, freshPrefix(), 5000);
    await reg.heartbeat(info('n1', 3));
    await reg.heartbeat(info('n2', 4));
    const { live, dead } = await reg.scan();
    expect([...live].sort((x, y) => x.id.localeCompare(y.id))).toEqual([info('n1', 3), info('n2', 4)]);
    expect(dead).toEqual([]);
    // A heartbeat replaces the description.
    await reg.heartbeat(info('n1', 9));
    expect((await reg.scan()).live.find((n) => n.id === 'n1')?.load.peers).toBe(9);
  });

  it('declares a node dead once it is silent for the TTL, while others stay live', async () => {
    const prefix = freshPrefix();
    // Two nodes, each with its own connection.
    const reg1 = new NodeRegistry(open(), prefix, 300);
    const reg2 = new NodeRegistry(open(), prefix, 300);
    await reg1.heartbeat(info('n1'));
    await reg2.heartbeat(info('n2'));
    expect((await reg2.scan()).dead).toEqual([]);
    const t0 = Date.now();
    while (Date.now() - t0 < 400) {
      await sleep(100);
      await reg2.heartbeat(info('n2'));
    }
    const { live, dead } = await reg2.scan();
    expect(live.map((n) => n.id)).toEqual(['n2']);
    expect(dead).toEqual(['n1']);
    // It comes back to life with a heartbeat.
    await reg1.heartbeat(info('n1'));
    expect((await reg1.scan()).dead).toEqual([]);
  });

  it('lets one survivor claim a dead node', async () => {
    const prefix = freshPrefix();
    const reg = new NodeRegistry(redis, prefix, 300);
    expect(await reg.claim('n1', 'n2', 5000)).toBe(true);
    expect(await reg.claim('n1', 'n3', 5000)).toBe(false);
    expect(await reg.claim('n1', 'n2', 5000)).toBe(false);
    expect(await redis.get(`${prefix}node:n1:reaper`)).toBe('n2');
    const ttl = await redis.pttl(`${prefix}node:n1:reaper`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5000);
    // Another dead node is claimed on its own.
    expect(await reg.claim('n4', 'n3', 5000)).toBe(true);
  });

  it('removes a node from both keys', async () => {
    const prefix = freshPrefix();
    const reg = new NodeRegistry(redis, prefix, 300);
    await reg.heartbeat(info('n1'));
    await reg.heartbeat(info('n2'));
    await reg.remove('n1');
    expect(await redis.zscore(`${prefix}nodes:seen`, 'n1')).toBeNull();
    expect(await redis.hget(`${prefix}nodes`, 'n1')).toBeNull();
    expect(await redis.zscore(`${prefix}nodes:seen`, 'n2')).not.toBeNull();
    expect(await redis.hget(`${prefix}nodes`, 'n2')).not.toBeNull();
    const { live, dead } = await reg.scan();
    expect(live.map((n) => n.id)).toEqual(['n2']);
    expect(dead).toEqual([]);
    // Removing it again is harmless.
    await reg.remove('n1');
  });

  it('drops the reaper claim with the node, so the same node dying again is claimed at once', async () => {
    const prefix = freshPrefix();
    const reg = new NodeRegistry(redis, prefix, 300);
    await reg.heartbeat(info('n1'));
    expect(await reg.claim('n1', 'n2', 60_000)).toBe(true);
    await reg.remove('n1');
    expect(await redis.exists(`${prefix}node:n1:reaper`)).toBe(0);
    // n1 restarts with the same NODE_ID and crashes again: claimable now, not after 60 s.
    await reg.heartbeat(info('n1'));
    expect(await reg.claim('n1', 'n2', 60_000)).toBe(true);
  });
});
