import type { Redis } from 'ioredis';
import type { ParticipantRecord, RoomRecord } from '../rooms/store';

/**
 * What this node owns in Redis, mirrored in its memory, so that it can write it
 * back when Redis comes back empty (restore.ts): the records of its participants
 * (nodeId = this node) and of the rooms they are in or whose media it carries.
 *
 * Two sources keep it current:
 * - write-through: every record this node writes or deletes (RedisRoomStore),
 *   once Redis has taken the write;
 * - a snapshot read with each heartbeat (one script, atomically with the check
 *   of the cluster's epoch key): what other nodes changed in those records (a
 *   host's mute, a role change, a removal). A snapshot never replaces what this
 *   node wrote after sending it, and is not applied when the epoch does not
 *   match (Redis lost the state: the mirror is then what is left of it).
 *
 * So what is lost with Redis is at most the last heartbeat's worth (2 s) of
 * changes other nodes made to this node's records.
 */
export interface Owned {
  rooms: Map<string, RoomRecord>;
  participants: Map<string, ParticipantRecord>;
}

/**
 * KEYS: the epoch key. ARGV: the epoch this node knows, the key prefix, this node's id.
 * Returns nil when the epoch differs; else { participant records, room records }.
 */
const SNAPSHOT = String.raw`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return nil end
local prefix, node = ARGV[2], ARGV[3]
local function part(room) return (string.gsub(room, '[%%:]', function(c) if c == '%' then return '%25' end return '%3A' end)) end
local parts, rooms, seen = {}, {}, {}
for _, m in ipairs(redis.call('SMEMBERS', prefix .. 'node:' .. node .. ':participants')) do
  local ok, pair = pcall(cjson.decode, m)
  if ok and type(pair) == 'table' and type(pair[1]) == 'string' and type(pair[2]) == 'string' then
    local rec = redis.call('HGET', prefix .. 'room:' .. part(pair[1]) .. ':p', pair[2])
    if rec then
      parts[#parts + 1] = rec
      seen[pair[1]] = true
    end
  end
end
for _, r in ipairs(redis.call('SMEMBERS', prefix .. 'node:' .. node .. ':media-rooms')) do seen[r] = true end
for r in pairs(seen) do
  local rec = redis.call('GET', prefix .. 'room:' .. part(r))
  if rec then rooms[#rooms + 1] = rec end
end
return { parts, rooms }
`;

interface SnapshotScript {
  switchboardOwnedSnapshot(epochKey: string, epoch: string, prefix: string, nodeId: string): Promise<[string[], string[]] | null>;
}

export class OwnedState {
  private rooms = new Map<string, RoomRecord>();
  private participants = new Map<string, ParticipantRecord>();
  /** The sequence number of the last local write of each record ('r' + room, 'p' + id). */
  private touched = new Map<string, number>();
  private seq = 0;

  constructor(
    private readonly redis: Redis,
    /** The client's keyPrefix + ours, as the script builds keys (like RedisRoomStore's scripts). */
    private readonly scriptPrefix: string,
    private readonly nodeId: string,
  ) {
    redis.defineCommand('switchboardOwnedSnapshot', { numberOfKeys: 1, lua: SNAPSHOT });
  }

  private touch(key: string): void {
    this.touched.set(key, ++this.seq);
  }

  // ---- write-through (RedisRoomStore, after Redis took the write) -------------------------
  putRoom(r: RoomRecord): void {
    this.rooms.set(r.room, r);
    this.touch(`r${r.room}`);
  }

  deleteRoom(room: string): void {
    this.rooms.delete(room);
    this.touch(`r${room}`);
    for (const p of [...this.participants.values()]) if (p.room === room) this.deleteParticipant(p.id);
  }

  putParticipant(p: ParticipantRecord): void {
    // A participant that reconnected to another node is that node's now.
    if (p.nodeId === this.nodeId) this.participants.set(p.id, p);
    else this.participants.delete(p.id);
    this.touch(`p${p.id}`);
  }

  deleteParticipant(id: string): void {
    this.participants.delete(id);
    this.touch(`p${id}`);
  }

  /** A copy of everything owned now (the restore works on it while requests wait). */
  snapshot(): Owned {
    return { rooms: new Map(structuredClone([...this.rooms])), participants: new Map(structuredClone([...this.participants])) };
  }

  /**
   * Reads what Redis holds for this node (the heartbeat), atomically with the epoch check:
   * false (and nothing changed here) when Redis does not hold `epoch`.
   */
  async refresh(epochKey: string, epoch: string): Promise<boolean> {
    const sent = this.seq;
    const res = await (this.redis as unknown as SnapshotScript).switchboardOwnedSnapshot(epochKey, epoch, this.scriptPrefix, this.nodeId);
    if (!res) return false;
    const [parts, rooms] = res;
    const nextParticipants = new Map<string, ParticipantRecord>();
    for (const raw of parts) {
      const p = JSON.parse(raw) as ParticipantRecord;
      nextParticipants.set(p.id, p);
    }
    const nextRooms = new Map<string, RoomRecord>();
    for (const raw of rooms) {
      const r = JSON.parse(raw) as RoomRecord;
      nextRooms.set(r.room, r);
    }
    // What this node wrote after the script was sent wins over the script's older view.
    for (const [key, at] of this.touched) {
      if (at <= sent) this.touched.delete(key);
      else if (key[0] === 'r') keep(this.rooms, nextRooms, key.slice(1));
      else keep(this.participants, nextParticipants, key.slice(1));
    }
    this.rooms = nextRooms;
    this.participants = nextParticipants;
    return true;
  }

  get size(): { rooms: number; participants: number } {
    return { rooms: this.rooms.size, participants: this.participants.size };
  }
}

function keep<T>(mine: Map<string, T>, next: Map<string, T>, id: string): void {
  const v = mine.get(id);
  if (v === undefined) next.delete(id);
  else next.set(id, v);
}
