import type { Redis } from 'ioredis';

/**
 * The node registry: every node heartbeats its id, address and load into Redis
 * (a hash of descriptions and a sorted set of last-seen times, stamped with
 * Redis's clock so nodes' clocks need not agree). Nodes silent for the TTL are
 * dead; one survivor claims each dead node (SET NX) and cleans up after it.
 *
 * Keys: P nodes (hash id -> JSON NodeInfo), P nodes:seen (zset id -> ms),
 * P node:<id>:reaper (claim, with a TTL).
 */
export interface NodeLoad {
  /** Rooms whose media this node carries. */
  rooms: number;
  /** Participants with media on this node. */
  peers: number;
  /** Socket.IO connections on this node. */
  connections: number;
  /** mediasoup workers alive. */
  workers: number;
}

export interface NodeInfo {
  id: string;
  address: string;
  startedAt: number;
  draining: boolean;
  load: NodeLoad;
}

const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return now`;

/** Live nodes (seen within the TTL) and dead ones, by Redis's clock. */
const SCAN = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))
local infos = {}
for i, id in ipairs(live) do infos[i] = redis.call('HGET', KEYS[2], id) or '' end
return { live, infos, dead }`;

/** A node's load as one number: media peers weigh most, rooms and connections less; per worker. */
export function loadScore(l: NodeLoad): number {
  return (l.peers + 2 * l.rooms + 0.1 * l.connections) / Math.max(1, l.workers);
}

/** The least-loaded node among candidates (ties broken at random); pending placements count as rooms. */
export function pickNode(nodes: NodeInfo[], pending: Map<string, number> = new Map()): NodeInfo | undefined {
  let best: NodeInfo[] = [];
  let bestScore = Infinity;
  for (const n of nodes) {
    if (n.draining || n.load.workers === 0) continue;
    const extra = pending.get(n.id) ?? 0;
    const s = loadScore({ ...n.load, rooms: n.load.rooms + extra });
    if (s < bestScore - 1e-9) {
      best = [n];
      bestScore = s;
    } else if (Math.abs(s - bestScore) <= 1e-9) best.push(n);
  }
  return best.length ? best[Math.floor(Math.random() * best.length)] : undefined;
}

export class NodeRegistry {
  private readonly seenKey: string;
  private readonly infoKey: string;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly ttlMs: number,
  ) {
    this.seenKey = `${prefix}nodes:seen`;
    this.infoKey = `${prefix}nodes`;
  }

  async heartbeat(info: NodeInfo): Promise<void> {
    await this.redis.eval(HEARTBEAT, 2, this.seenKey, this.infoKey, info.id, JSON.stringify(info));
  }

  async scan(): Promise<{ live: NodeInfo[]; dead: string[] }> {
    const [ids, infos, dead] = (await this.redis.eval(SCAN, 2, this.seenKey, this.infoKey, String(this.ttlMs))) as [string[], string[], string[]];
    const live: NodeInfo[] = [];
    ids.forEach((id, i) => {
      const raw = infos[i];
      if (raw) live.push(JSON.parse(raw) as NodeInfo);
    });
    return { live, dead };
  }

  /** One survivor cleans up after a dead node: true for the one that claims it. */
  async claim(deadId: string, byId: string, forMs: number): Promise<boolean> {
    return (await this.redis.set(`${this.prefix}node:${deadId}:reaper`, byId, 'PX', forMs, 'NX')) === 'OK';
  }

  /**
   * Forgets a node (cleaned up after, or left), and its reaper claim with it:
   * a claim outliving the clean-up would stop the next one (the same NODE_ID
   * crashing again) for the claim's whole TTL.
   */
  async remove(id: string): Promise<void> {
    await this.redis.multi().zrem(this.seenKey, id).hdel(this.infoKey, id).del(`${this.prefix}node:${id}:reaper`).exec();
  }
}
