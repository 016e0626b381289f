import { KeyedMutex } from '../lib/keyedMutex';
import type { MediaService } from '../mediaNode/service';

/**
 * Per-room mutual exclusion, as the room services use it: KeyedMutex on one
 * node, RedisRoomLocks (cluster/redisLocks.ts) across nodes. Room changes
 * (join, leave, moderation, end) run under it so that their read-modify-write
 * of room state never interleaves; relaying does not take it.
 */
export interface RoomLocks {
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
  idle(): Promise<void>;
}

/**
 * Where the rooms run: the node's id, the per-room locks, the media service
 * of any node, and where a new room's media goes. One node (SingleNode) or a
 * cluster sharing Redis (cluster/cluster.ts).
 */
export interface Topology {
  readonly nodeId: string;
  readonly locks: RoomLocks;
  /** The media service of a node: this process's, or one forwarding to it. */
  media(nodeId: string): MediaService;
  /** The node that carries a new room's media (the least loaded; never one of `exclude`). */
  placeRoom(exclude?: string[]): Promise<string>;
  /** Whether another live node can take over this node's calls (drain). */
  peerAvailable(): Promise<boolean>;
}

export class SingleNode implements Topology {
  readonly locks = new KeyedMutex();

  constructor(
    readonly nodeId: string,
    private readonly local: MediaService,
  ) {}

  media(): MediaService {
    return this.local;
  }

  async placeRoom(): Promise<string> {
    return this.nodeId;
  }

  async peerAvailable(): Promise<boolean> {
    return false;
  }
}
