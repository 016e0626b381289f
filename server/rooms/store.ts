import type { CallMode, CallStatus, ParticipantState, Role, Track } from '../protocol';

/**
 * Where the live state of rooms lives: who is in which room, with which role,
 * mute and hold state. The room services only go through this interface, never through
 * maps of their own, so that a cluster keeps it in Redis (cluster/redisRoomStore.ts). Records
 * are plain data: read one, change a copy, put it back (under the room's lock).
 */
export interface RoomRecord {
  room: string;
  callId: string;
  status: CallStatus;
  recording: boolean;
  mode: CallMode;
  createdAt: number;
  /** Users removed by a host or moderator; they cannot rejoin this call. */
  removedUsers: string[];
  /**
   * Roles changed by a host in this call (user id → role). They outlive the participant's
   * connection: a demoted host who rejoins, or calls REST with the old token, is still demoted.
   * Optional: records written before it existed have none.
   */
  roleChanges?: Record<string, Role>;
  /** The node whose mediasoup routers carry this room (SFU mode); null in p2p mode. */
  mediaNode: string | null;
  /** When the room became empty (its end is scheduled); null while anyone is in it. */
  emptySince: number | null;
}

export interface ParticipantRecord {
  id: string;
  room: string;
  userId: string;
  displayName: string | null;
  role: Role;
  /** jti of the token it joined with (a reconnect with it resumes). */
  tokenId: string;
  /** The token's publish grant (SFU mode). */
  canPublish: boolean;
  /** Current socket; null while disconnected within the grace period. */
  socketId: string | null;
  capabilities: Record<string, unknown>;
  mutedTracks: Track[];
  lockedTracks: Track[];
  heldTracks: Track[];
  joinedAt: number;
  clientIp: string | null;
  /** The node holding its socket (or, while disconnected, the node it was on). */
  nodeId: string;
  /** When its socket went away (grace period running); null while connected. */
  disconnectedAt: number | null;
}

export interface RoomStore {
  getRoom(room: string): Promise<RoomRecord | undefined>;
  putRoom(record: RoomRecord): Promise<void>;
  /** Deletes the room and all its participants. */
  deleteRoom(room: string): Promise<void>;
  countRooms(): Promise<number>;

  listParticipants(room: string): Promise<ParticipantRecord[]>;
  getParticipant(room: string, id: string): Promise<ParticipantRecord | undefined>;
  countParticipants(room: string): Promise<number>;
  putParticipant(record: ParticipantRecord): Promise<void>;
  deleteParticipant(room: string, id: string): Promise<void>;
  /** Total participants on this store (for metrics). */
  countAllParticipants(): Promise<number>;
  /** Participants whose nodeId is `nodeId`, in any room. */
  participantsOnNode(nodeId: string): Promise<Array<{ room: string; id: string }>>;
  /** Rooms whose mediaNode is `nodeId`. */
  roomsWithMediaOn(nodeId: string): Promise<string[]>;
  listRooms(): Promise<string[]>;
}

/** The single-node store: maps in this process. Copies on the way in and out, like a remote store would. */
/** A copy that shares nothing with the original (records are changed as copies, then put back). */
function copyRoom(r: RoomRecord): RoomRecord {
  return { ...r, removedUsers: [...r.removedUsers], ...(r.roleChanges ? { roleChanges: { ...r.roleChanges } } : {}) };
}

export class InMemoryRoomStore implements RoomStore {
  private readonly rooms = new Map<string, { record: RoomRecord; participants: Map<string, ParticipantRecord> }>();
  private participantCount = 0;

  async getRoom(room: string): Promise<RoomRecord | undefined> {
    const r = this.rooms.get(room);
    return r ? copyRoom(r.record) : undefined;
  }

  async putRoom(record: RoomRecord): Promise<void> {
    const r = this.rooms.get(record.room);
    const copy = copyRoom(record);
    if (r) r.record = copy;
    else this.rooms.set(record.room, { record: copy, participants: new Map() });
  }

  async deleteRoom(room: string): Promise<void> {
    const r = this.rooms.get(room);
    if (r) this.participantCount -= r.participants.size;
    this.rooms.delete(room);
  }

  async countRooms(): Promise<number> {
    return this.rooms.size;
  }

  async listParticipants(room: string): Promise<ParticipantRecord[]> {
    const r = this.rooms.get(room);
    return r ? [...r.participants.values()].map(copyParticipant) : [];
  }

  async getParticipant(room: string, id: string): Promise<ParticipantRecord | undefined> {
    const p = this.rooms.get(room)?.participants.get(id);
    return p ? copyParticipant(p) : undefined;
  }

  async countParticipants(room: string): Promise<number> {
    return this.rooms.get(room)?.participants.size ?? 0;
  }

  async putParticipant(record: ParticipantRecord): Promise<void> {
    const r = this.rooms.get(record.room);
    if (!r) throw new Error(`room ${record.room} does not exist`);
    if (!r.participants.has(record.id)) this.participantCount++;
    r.participants.set(record.id, copyParticipant(record));
  }

  async deleteParticipant(room: string, id: string): Promise<void> {
    const r = this.rooms.get(room);
    if (r?.participants.delete(id)) this.participantCount--;
  }

  async countAllParticipants(): Promise<number> {
    return this.participantCount;
  }

  async participantsOnNode(nodeId: string): Promise<Array<{ room: string; id: string }>> {
    const out: Array<{ room: string; id: string }> = [];
    for (const [room, r] of this.rooms) for (const p of r.participants.values()) if (p.nodeId === nodeId) out.push({ room, id: p.id });
    return out;
  }

  async roomsWithMediaOn(nodeId: string): Promise<string[]> {
    return [...this.rooms.values()].filter((r) => r.record.mediaNode === nodeId).map((r) => r.record.room);
  }

  async listRooms(): Promise<string[]> {
    return [...this.rooms.keys()];
  }
}

function copyParticipant(p: ParticipantRecord): ParticipantRecord {
  // Capabilities are free JSON: a nested object must not stay shared with the caller (a remote store never shares).
  return {
    ...p,
    capabilities: structuredClone(p.capabilities),
    mutedTracks: [...p.mutedTracks],
    lockedTracks: [...p.lockedTracks],
    heldTracks: [...p.heldTracks],
  };
}

/** A participant as the protocol shows it (room_state, peer-joined). */
export function participantState(p: ParticipantRecord): ParticipantState {
  return {
    participant_id: p.id,
    user_id: p.userId,
    display_name: p.displayName,
    role: p.role,
    muted_tracks: p.mutedTracks,
    locked_tracks: p.lockedTracks,
    held_tracks: p.heldTracks,
    connected: p.socketId !== null,
    capabilities: p.capabilities,
    joined_at: new Date(p.joinedAt).toISOString(),
  };
}
