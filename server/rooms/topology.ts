import type { MediaService } from '../media/mediaService';
import { KeyedMutex, type RoomLocks } from './keyedMutex';

/**
 * Where signaling runs: the node's id, the per-room locks, the media service
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
