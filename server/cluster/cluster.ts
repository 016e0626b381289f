import { randomUUID } from 'node:crypto';
import { createAdapter } from '@socket.io/redis-adapter';
import type { FastifyBaseLogger } from 'fastify';
import { Redis, type RedisOptions } from 'ioredis';
import type { ClusterConfig } from '../config/config';

import type { MediaService } from '../mediaNode/service';
import type { RoomLocks, Topology } from '../rooms/topology';
import type { RoomStore } from '../rooms/store';
import { NodeRegistry, pickNode, type NodeInfo, type NodeLoad } from './nodes';
import { OwnedState, type Owned } from './ownedState';
import { RedisGate } from './redisGate';
import { RedisRoomLocks } from './redisLocks';
import { RedisRoomStore } from './redisRoomStore';
import { MediaRpc } from './rpc';
import { AppError } from '../errors';

/** A command a stalled Redis has not answered within this fails (CLUSTER_UNAVAILABLE), rather than hang a request. */
const COMMAND_TIMEOUT_MS = 3000;
/** How long a request waits for the state to be verified, or restored, after Redis came back. */
const RESTORE_WAIT_MS = 5000;
/** How long a node is listed as restoring at most (a node that died restoring is not waited for longer). */
const RESTORING_MARK_MS = 10_000;
/** Reconnecting every 100 ms, 200 ms, … at most 1 s: a Redis that is back is noticed within a second. */
const retryStrategy = (times: number): number => Math.min(times * 100, 1000);

/** The adapter publishes without awaiting: while Redis is down, those rejections must not end the process. */
function quietPublisher(redis: Redis): Redis {
  return new Proxy(redis, {
    get(target, prop) {
      if (prop === 'publish')
        return (...args: unknown[]) => {
          const sent = (target.publish as (...a: unknown[]) => Promise<number>).apply(target, args);
          sent.catch(() => undefined);
          return sent;
        };
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' && prop !== 'constructor' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * A node of a cluster sharing Redis (REDIS_URL):
 * - Socket.IO's Redis adapter carries server-to-client events to sockets on any node;
 * - room state is in Redis (RedisRoomStore), changed under Redis locks (RedisRoomLocks);
 * - each node heartbeats its id, address and load (NodeRegistry); a new room's
 *   media goes to the least-loaded node, and media requests for it are
 *   forwarded there (MediaRpc);
 * - a node silent for NODE_TTL_MS is cleaned up after by one survivor (onNodeDead).
 *
 * Redis connections: one for commands and publishing, one subscriber for the
 * adapter, one subscriber for media requests.
 *
 * Redis outages (docs/deployment.md, "Redis outages"): while the command
 * connection is down, requests fail at once with CLUSTER_UNAVAILABLE (RedisGate)
 * and /ready answers 503; calls go on (media, connections). The key P epoch
 * holds a random value set by the first node: when a node finds it missing or
 * changed (on reconnecting, or in its heartbeat's snapshot), Redis lost the
 * state, and the node writes back the rooms and participants it owns
 * (onStateLost, restore.ts) before its requests use Redis again. After any
 * outage a node waits NODE_TTL_MS of good heartbeats before declaring other
 * nodes dead: their last heartbeats are old only because Redis was away.
 */
export class Cluster implements Topology {
  readonly store: RedisRoomStore;
  readonly locks: RedisRoomLocks;
  readonly registry: NodeRegistry;
  readonly adapter: ReturnType<typeof createAdapter>;
  readonly nodeId: string;
  /** A store and locks that skip the gate: the restore itself uses them. */
  readonly recovery: { store: RoomStore; locks: RoomLocks };
  private readonly gate: RedisGate;
  private readonly owned: OwnedState;
  private epoch = '';
  private readonly epochKey: string;
  /** Nodes writing back their state after Redis came back empty (zset: node -> until when). */
  private readonly restoringKey: string;
  /** When Redis was last unreachable (or a heartbeat failed): no node is declared dead until NODE_TTL_MS after. */
  private unhealthyAt = 0;
  private load: () => NodeLoad = () => ({ rooms: 0, peers: 0, connections: 0, workers: 0 });
  private rpc: MediaRpc | undefined;
  private live: NodeInfo[] = [];
  /** Rooms this node placed since the last heartbeat, per node: the load figures lag behind. */
  private readonly pending = new Map<string, number>();
  private readonly reaped = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  private draining = false;
  private readonly startedAt = Date.now();

  private constructor(
    private readonly cfg: ClusterConfig,
    private readonly redis: Redis,
    private readonly adapterSub: Redis,
    private readonly rpcSub: Redis,
    private readonly log: FastifyBaseLogger,
  ) {
    this.nodeId = cfg.nodeId;
    this.epochKey = `${cfg.redisKeyPrefix}epoch`;
    this.restoringKey = `${cfg.redisKeyPrefix}restoring`;
    this.gate = new RedisGate(redis, RESTORE_WAIT_MS);
    this.owned = new OwnedState(redis, RedisRoomStore.scriptPrefix(redis, cfg.redisKeyPrefix), cfg.nodeId);
    this.store = new RedisRoomStore(redis, cfg.redisKeyPrefix, { gate: this.gate, owned: this.owned });
    this.locks = new RedisRoomLocks(redis, cfg.redisKeyPrefix, undefined, this.gate);
    this.recovery = { store: new RedisRoomStore(redis, cfg.redisKeyPrefix, { owned: this.owned }), locks: new RedisRoomLocks(redis, cfg.redisKeyPrefix) };
    this.registry = new NodeRegistry(redis, cfg.redisKeyPrefix, cfg.nodeTtlMs);
    this.adapter = createAdapter(quietPublisher(redis), adapterSub, { key: `${cfg.redisKeyPrefix}socket.io` });
    redis.on('close', () => (this.unhealthyAt = Date.now()));
  }

  /** Connects to Redis (failing clearly when it does not answer). */
  static async connect(cfg: ClusterConfig, log: FastifyBaseLogger): Promise<Cluster> {
    const url = cfg.redisUrl!;
    const open = async (name: string, options: RedisOptions): Promise<Redis> => {
      const r = new Redis(url, { lazyConnect: true, connectionName: `switchboard:${cfg.nodeId}:${name}`, retryStrategy, ...options });
      // One line when a connection fails and one when it is back, not one per reconnection attempt.
      let failing = false;
      const lost = (err?: Error): void => {
        if (!failing) log.warn({ err: err?.message, connection: name }, 'redis connection lost; reconnecting');
        failing = true;
      };
      r.on('error', (err: Error) => lost(err));
      // Not when it is closed on purpose (shutdown): then it ends rather than reconnects.
      r.on('close', () => r.status !== 'end' && lost());
      r.on('ready', () => {
        if (failing) log.info({ connection: name }, 'redis connection back');
        failing = false;
      });
      try {
        await r.connect();
      } catch (err) {
        r.disconnect();
        throw new Error(`REDIS_URL: cannot connect to Redis (${(err as Error).message})`);
      }
      return r;
    };
    // Commands fail at once while the connection is down: no offline queue, and nothing re-sent
    // after a reconnect (a write re-sent into a Redis that came back empty would land before the
    // state is restored); against a stalled server, within COMMAND_TIMEOUT_MS.
    const redis = await open('cmd', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: COMMAND_TIMEOUT_MS,
    });
    const [adapterSub, rpcSub] = await Promise.all([open('adapter', { maxRetriesPerRequest: 3 }), open('rpc', { maxRetriesPerRequest: 3 })]);
    return new Cluster(cfg, redis, adapterSub, rpcSub, log);
  }

  /**
   * Starts serving media requests for other nodes and heartbeating. `load`
   * reports this node's load; `onNodeDead` cleans up after a dead node (it
   * runs on the one node that claims it), and first after this node's own
   * previous life when it restarts with the same NODE_ID. `onStateLost`
   * writes back what this node owns when Redis lost the state (restore.ts).
   */
  async start(
    local: MediaService,
    load: () => NodeLoad,
    onNodeDead: (id: string) => Promise<unknown>,
    onStateLost: (owned: Owned) => Promise<unknown>,
  ): Promise<void> {
    this.load = load;
    this.rpc = new MediaRpc(this.redis, this.rpcSub, this.cfg.redisKeyPrefix, this.nodeId, local, this.cfg.rpcTimeoutMs, this.log);
    await this.rpc.start();
    await this.redis.set(this.epochKey, randomUUID(), 'NX');
    this.epoch = (await this.redis.get(this.epochKey)) ?? '';
    this.gate.setVerifier(() => this.verify(onStateLost));
    let failing = false;
    const beat = async (): Promise<void> => {
      // What this node owns, as Redis has it (for a restore); an epoch that changed means Redis lost the state.
      if (this.gate.state === 'up' && !(await this.owned.refresh(this.epochKey, this.epoch))) this.gate.markStale();
      // Not verified since an outage, and no request came to do it: now (verify logs a failed restore).
      if (this.gate.state === 'restoring') this.gate.verify().catch(() => undefined);
      await this.registry.heartbeat(this.info());
      const { live, dead } = await this.registry.scan();
      this.live = live;
      this.pending.clear();
      if (failing) this.log.info('heartbeats go through again');
      failing = false;
      // Right after an outage every other node's last heartbeat looks old: none is dead before a TTL of good ones.
      if (Date.now() - this.unhealthyAt < this.cfg.nodeTtlMs) return;
      for (const id of dead) {
        if (this.reaped.has(id) || !(await this.registry.claim(id, this.nodeId, 60_000))) continue;
        this.reaped.add(id);
        this.rpc?.forget(id);
        const started = Date.now();
        try {
          const r = await onNodeDead(id);
          await this.registry.remove(id);
          this.log.warn({ node: id, ...(r as object), ms: Date.now() - started }, 'cleaned up after a dead node');
        } catch (err) {
          this.log.error({ err, node: id }, 'cleaning up after a dead node failed');
        } finally {
          this.reaped.delete(id);
        }
      }
    };
    // Leftovers of this node's previous life (same NODE_ID, crashed) go first.
    await beat();
    const since = Date.now();
    await onNodeDead(this.nodeId)
      .then((r) => this.log.info({ node: this.nodeId, ...(r as object), ms: Date.now() - since }, "cleaned up after this node's previous run"))
      .catch((err: unknown) => this.log.error({ err }, "cleaning up after this node's previous run failed"));
    let beating = false;
    this.timer = setInterval(() => {
      // One at a time: against a stalled Redis each takes a command timeout; they must not pile up.
      if (beating) return;
      beating = true;
      this.ticking = beat()
        .catch((err: unknown) => {
          this.unhealthyAt = Date.now();
          if (!failing) this.log.warn({ err: (err as Error).message }, 'heartbeat failed (Redis unavailable?)');
          failing = true;
        })
        .finally(() => (beating = false));
    }, this.cfg.heartbeatMs);
  }

  private info(): NodeInfo {
    return { id: this.nodeId, address: this.cfg.nodeAddress, startedAt: this.startedAt, draining: this.draining, load: this.load() };
  }

  /**
   * The gate's verifier, once Redis answers again: it still holds this cluster's epoch (nothing
   * lost), or it lost the state, and this node writes back what it owns. The first node to find
   * the epoch missing sets a new one; this node adopts it once its restore is done, so that a
   * restore cut short by another outage runs again.
   */
  private async verify(onStateLost: (owned: Owned) => Promise<unknown>): Promise<void> {
    const current = await this.redis.get(this.epochKey);
    if (current === this.epoch) return;
    if (current === null) await this.redis.set(this.epochKey, randomUUID(), 'NX');
    const next = await this.redis.get(this.epochKey);
    if (next === null) throw new AppError('CLUSTER_UNAVAILABLE', 'the state in Redis was lost again while being restored');
    this.unhealthyAt = Date.now();
    const started = Date.now();
    this.log.warn({ owned: this.owned.size }, 'Redis lost the cluster state (restarted empty?): restoring the rooms and participants this node owns');
    // Registered again at once (rooms can be placed here), rather than at the next heartbeat;
    // and listed as restoring, so that a node starting meanwhile waits (settled()).
    await this.registry.heartbeat(this.info());
    await this.redis.zadd(this.restoringKey, Date.now() + RESTORING_MARK_MS, this.nodeId);
    try {
      const restored = await onStateLost(this.owned.snapshot());
      this.epoch = next;
      this.log.warn({ ...(restored as object), ms: Date.now() - started }, 'restored the room state this node owns');
    } catch (err) {
      this.log.error({ err }, 'restoring the room state failed; it is tried again at the next request or heartbeat');
      throw err;
    } finally {
      await this.redis.zrem(this.restoringKey, this.nodeId).catch(() => undefined);
    }
  }

  /**
   * Waits (at most timeoutMs) while other nodes are writing back their state after Redis came back
   * empty. A node starting then must not take their rooms, not written back yet, for the rooms of
   * calls nobody holds (crash recovery ends those): main.ts calls this before recovering.
   */
  async settled(timeoutMs = RESTORING_MARK_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const restoring = await this.redis.zrangebyscore(this.restoringKey, Date.now(), '+inf');
      if (restoring.length === 0) return;
      if (Date.now() >= deadline) {
        this.log.warn({ nodes: restoring }, 'other nodes are still restoring the room state after Redis came back empty; going on');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** /ready: every connection up, Redis answering within timeoutMs, and the state verified (not being restored). */
  async readiness(timeoutMs: number): Promise<{ ok: boolean; detail: string }> {
    const conns: Array<[string, Redis]> = [
      ['cmd', this.redis],
      ['adapter', this.adapterSub],
      ['rpc', this.rpcSub],
    ];
    const down = conns.filter(([, r]) => r.status !== 'ready');
    if (down.length > 0) return { ok: false, detail: `not connected: ${down.map(([name, r]) => `${name} ${r.status}`).join(', ')}` };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.redis.ping(),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer to PING within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    } finally {
      clearTimeout(timer);
    }
    if (this.gate.state !== 'up') {
      this.gate.verify().catch(() => undefined);
      return { ok: false, detail: 'verifying (or restoring) the room state after Redis came back' };
    }
    return { ok: true, detail: 'connected' };
  }

  media(nodeId: string): MediaService {
    if (!this.rpc) throw new Error('cluster not started');
    return this.rpc.at(nodeId);
  }

  async placeRoom(exclude: string[] = []): Promise<string> {
    // A retry after a failed placement reads the registry afresh (the cached list is up to a heartbeat old).
    if (this.live.length === 0 || exclude.length > 0) this.live = (await this.registry.scan()).live;
    const candidates = this.live.filter((n) => !exclude.includes(n.id) && !(n.id === this.nodeId && this.draining));
    const chosen = pickNode(candidates, this.pending)?.id ?? (exclude.includes(this.nodeId) || this.draining ? undefined : this.nodeId);
    if (!chosen) throw new AppError('MEDIA_UNAVAILABLE', 'no media node can take this room now; try again');
    this.pending.set(chosen, (this.pending.get(chosen) ?? 0) + 1);
    return chosen;
  }

  async peerAvailable(): Promise<boolean> {
    const { live } = await this.registry.scan();
    this.live = live;
    return live.some((n) => n.id !== this.nodeId && !n.draining && n.load.workers > 0);
  }

  /** SIGTERM: the next heartbeat says so; no room is placed here any more. */
  async startDraining(load: NodeLoad): Promise<void> {
    this.draining = true;
    await this.registry.heartbeat({ ...this.info(), draining: true, load }).catch((err: unknown) => this.log.warn({ err }, 'announcing the drain failed'));
  }

  /** Stops heartbeating (the survivors clean up after this node once its TTL passes) and closes Redis. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking;
    this.rpc?.close();
    await Promise.all([this.redis, this.adapterSub, this.rpcSub].map((r) => r.quit().catch(() => r.disconnect())));
  }

  /** Figures for the benchmark and /metrics. */
  get rpcCounts(): { sent: number; served: number } {
    return { sent: this.rpc?.sent ?? 0, served: this.rpc?.served ?? 0 };
  }
}
