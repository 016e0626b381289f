import type { Redis } from 'ioredis';
import type { ParticipantRecord, RoomRecord, RoomStore } from '../rooms/store';
import type { OwnedState } from './ownedState';
import type { RedisGate } from './redisGate';

/**
 * The RoomStore shared by every node of a cluster, in Redis.
 *
 * Key layout (P = the prefix given to the constructor, e.g. 'sb:'; R = the room name with '%'
 * written '%25' and ':' written '%3A', see roomKeyPart; any other character is kept as is):
 *
 *   P + 'room:' + R                     string  the RoomRecord as JSON
 *   P + 'room:' + R + ':p'              hash    participant id -> ParticipantRecord as JSON
 *   P + 'rooms'                         set     every room name
 *   P + 'participants:count'            string  integer: participants in all rooms
 *   P + 'node:' + nodeId + ':participants'
 *                                       set     participants whose nodeId is nodeId, each member
 *                                               being JSON.stringify([room, participantId])
 *   P + 'node:' + nodeId + ':media-rooms'
 *                                       set     names of the rooms whose mediaNode is nodeId
 *
 * Why R and not the raw name: with raw names, the record of room 'x:p' and the participants of
 * room 'x' would be the same key. R has no ':', so ':p' can only be the hash suffix. The room
 * names inside the sets and the JSON records are the raw names.
 *
 * Nothing has a TTL: the participants of a dead node are cleaned up by the node reaper
 * (participantsOnNode + deleteParticipant), empty rooms by their scheduled end (deleteRoom).
 *
 * Every method is one round trip. The writes are Lua scripts (EVALSHA through ioredis
 * defineCommand), so that the counter and the node indexes are kept exact atomically: a
 * script reads the previous record to know which index entry to move or remove.
 *
 * The index members are built inside the scripts by a Lua function that produces exactly what
 * JSON.stringify([room, id]) produces (see nodeIndexMember), so JS can compute them as well.
 * The scripts build the node index keys from the prefix and the nodeIds found in the records,
 * so they touch keys not listed in KEYS: this works on a standalone Redis (or a primary with
 * replicas), not on Redis Cluster. If the client has a keyPrefix, it is honoured (the scripts
 * get keyPrefix + prefix).
 *
 * In a running node (cluster.ts) every call goes through a RedisGate (CLUSTER_UNAVAILABLE while
 * Redis is down; held while the state is restored after Redis came back empty), and every write
 * Redis took is mirrored into the node's OwnedState (what it writes back then).
 */

/** Shared Lua helpers, prepended to each script. */
const LUA_HELPERS = String.raw`
local ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function jstr(s)
  return '"' .. (string.gsub(s, '[%z\1-\31"\\]', function(c)
    return ESC[c] or string.format('\\u%04x', string.byte(c))
  end)) .. '"'
end
-- Same string as JSON.stringify([room, id]) in JS.
local function member(room, id)
  return '[' .. jstr(room) .. ',' .. jstr(id) .. ']'
end
-- A string field of a JSON record, or nil (field missing, null or record unreadable).
local function field(json, name)
  if not json then return nil end
  local ok, rec = pcall(cjson.decode, json)
  if ok and type(rec) == 'table' and type(rec[name]) == 'string' then return rec[name] end
  return nil
end
local function nodeParticipantsKey(prefix, node) return prefix .. 'node:' .. node .. ':participants' end
local function nodeMediaKey(prefix, node) return prefix .. 'node:' .. node .. ':media-rooms' end
`;

/**
 * KEYS: room key, rooms set.
 * ARGV: prefix, room, record JSON, mediaNode ('' when null), '1' when mediaNode is not null.
 */
const PUT_ROOM =
  LUA_HELPERS +
  String.raw`
local prefix, room = ARGV[1], ARGV[2]
local oldMedia = field(redis.call('GET', KEYS[1]), 'mediaNode')
local newMedia = nil
if ARGV[5] == '1' then newMedia = ARGV[4] end
if oldMedia and oldMedia ~= newMedia then redis.call('SREM', nodeMediaKey(prefix, oldMedia), room) end
if newMedia then redis.call('SADD', nodeMediaKey(prefix, newMedia), room) end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], room)
return 1
`;

/**
 * KEYS: room key, participants hash, participant counter.
 * ARGV: prefix, room, participant id, record JSON, nodeId.
 * Returns 0 when the room does not exist (nothing written), 1 otherwise.
 */
const PUT_PARTICIPANT =
  LUA_HELPERS +
  String.raw`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local prefix, room, id, node = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local m = member(room, id)
local old = redis.call('HGET', KEYS[2], id)
if old then
  local oldNode = field(old, 'nodeId')
  if oldNode and oldNode ~= node then redis.call('SREM', nodeParticipantsKey(prefix, oldNode), m) end
else
  redis.call('INCR', KEYS[3])
end
redis.call('HSET', KEYS[2], id, ARGV[4])
redis.call('SADD', nodeParticipantsKey(prefix, node), m)
return 1
`;

/**
 * KEYS: participants hash, participant counter.
 * ARGV: prefix, room, participant id.
 */
const DELETE_PARTICIPANT =
  LUA_HELPERS +
  String.raw`
local prefix, room, id = ARGV[1], ARGV[2], ARGV[3]
local old = redis.call('HGET', KEYS[1], id)
if not old then return 0 end
redis.call('HDEL', KEYS[1], id)
redis.call('DECR', KEYS[2])
local node = field(old, 'nodeId')
if node then redis.call('SREM', nodeParticipantsKey(prefix, node), member(room, id)) end
return 1
`;

/**
 * KEYS: room key, participants hash, participant counter, rooms set.
 * ARGV: prefix, room.
 */
const DELETE_ROOM =
  LUA_HELPERS +
  String.raw`
local prefix, room = ARGV[1], ARGV[2]
local all = redis.call('HGETALL', KEYS[2])
local n = 0
for i = 1, #all, 2 do
  n = n + 1
  local node = field(all[i + 1], 'nodeId')
  if node then redis.call('SREM', nodeParticipantsKey(prefix, node), member(room, all[i])) end
end
if n > 0 then
  redis.call('DECRBY', KEYS[3], n)
  redis.call('DEL', KEYS[2])
end
local media = field(redis.call('GET', KEYS[1]), 'mediaNode')
if media then redis.call('SREM', nodeMediaKey(prefix, media), room) end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[4], room)
return n
`;

/** The commands defineCommand adds to the client (names chosen not to clash with others). */
interface StoreScripts {
  switchboardRoomStorePutRoom(
    roomKey: string,
    roomsKey: string,
    prefix: string,
    room: string,
    json: string,
    mediaNode: string,
    hasMedia: string,
  ): Promise<number>;
  switchboardRoomStorePutParticipant(
    roomKey: string,
    hashKey: string,
    countKey: string,
    prefix: string,
    room: string,
    id: string,
    json: string,
    nodeId: string,
  ): Promise<number>;
  switchboardRoomStoreDeleteParticipant(hashKey: string, countKey: string, prefix: string, room: string, id: string): Promise<number>;
  switchboardRoomStoreDeleteRoom(roomKey: string, hashKey: string, countKey: string, roomsKey: string, prefix: string, room: string): Promise<number>;
}

/** The room name as it appears in keys: '%' -> '%25', ':' -> '%3A' (injective, and the result has no ':'). */
export function roomKeyPart(room: string): string {
  return room.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));
}

/** The member of a node's participant index for this participant. */
export function nodeIndexMember(room: string, id: string): string {
  return JSON.stringify([room, id]);
}

export class RedisRoomStore implements RoomStore {
  private readonly scripts: StoreScripts;
  /** The prefix as the scripts must use it: the client's keyPrefix (added by ioredis to KEYS and to plain commands) + ours. */
  private readonly scriptPrefix: string;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly opts: { gate?: RedisGate; owned?: OwnedState } = {},
  ) {
    this.scriptPrefix = RedisRoomStore.scriptPrefix(redis, prefix);
    redis.defineCommand('switchboardRoomStorePutRoom', { numberOfKeys: 2, lua: PUT_ROOM });
    redis.defineCommand('switchboardRoomStorePutParticipant', { numberOfKeys: 3, lua: PUT_PARTICIPANT });
    redis.defineCommand('switchboardRoomStoreDeleteParticipant', { numberOfKeys: 2, lua: DELETE_PARTICIPANT });
    redis.defineCommand('switchboardRoomStoreDeleteRoom', { numberOfKeys: 4, lua: DELETE_ROOM });
    this.scripts = redis as unknown as StoreScripts;
  }

  /** The prefix of keys that scripts build themselves: the client's keyPrefix + ours. */
  static scriptPrefix(redis: Redis, prefix: string): string {
    return (redis.options.keyPrefix ?? '') + prefix;
  }

  private run<T>(fn: () => Promise<T>): Promise<T> {
    return this.opts.gate ? this.opts.gate.run(fn) : fn();
  }

  private roomKey(room: string): string {
    return `${this.prefix}room:${roomKeyPart(room)}`;
  }

  private participantsKey(room: string): string {
    return `${this.prefix}room:${roomKeyPart(room)}:p`;
  }

  private get roomsKey(): string {
    return `${this.prefix}rooms`;
  }

  private get countKey(): string {
    return `${this.prefix}participants:count`;
  }

  getRoom(room: string): Promise<RoomRecord | undefined> {
    return this.run(async () => {
      const json = await this.redis.get(this.roomKey(room));
      return json === null ? undefined : (JSON.parse(json) as RoomRecord);
    });
  }

  putRoom(record: RoomRecord): Promise<void> {
    return this.run(async () => {
      await this.scripts.switchboardRoomStorePutRoom(
        this.roomKey(record.room),
        this.roomsKey,
        this.scriptPrefix,
        record.room,
        JSON.stringify(record),
        record.mediaNode ?? '',
        record.mediaNode === null ? '0' : '1',
      );
      this.opts.owned?.putRoom(record);
    });
  }

  deleteRoom(room: string): Promise<void> {
    return this.run(async () => {
      await this.scripts.switchboardRoomStoreDeleteRoom(this.roomKey(room), this.participantsKey(room), this.countKey, this.roomsKey, this.scriptPrefix, room);
      this.opts.owned?.deleteRoom(room);
    });
  }

  countRooms(): Promise<number> {
    return this.run(() => this.redis.scard(this.roomsKey));
  }

  listParticipants(room: string): Promise<ParticipantRecord[]> {
    return this.run(async () => {
      const values = await this.redis.hvals(this.participantsKey(room));
      return values.map((v) => JSON.parse(v) as ParticipantRecord);
    });
  }

  getParticipant(room: string, id: string): Promise<ParticipantRecord | undefined> {
    return this.run(async () => {
      const json = await this.redis.hget(this.participantsKey(room), id);
      return json === null ? undefined : (JSON.parse(json) as ParticipantRecord);
    });
  }

  countParticipants(room: string): Promise<number> {
    return this.run(() => this.redis.hlen(this.participantsKey(room)));
  }

  putParticipant(record: ParticipantRecord): Promise<void> {
    return this.run(async () => {
      const done = await this.scripts.switchboardRoomStorePutParticipant(
        this.roomKey(record.room),
        this.participantsKey(record.room),
        this.countKey,
        this.scriptPrefix,
        record.room,
        record.id,
        JSON.stringify(record),
        record.nodeId,
      );
      if (done !== 1) throw new Error(`room ${record.room} does not exist`);
      this.opts.owned?.putParticipant(record);
    });
  }

  deleteParticipant(room: string, id: string): Promise<void> {
    return this.run(async () => {
      await this.scripts.switchboardRoomStoreDeleteParticipant(this.participantsKey(room), this.countKey, this.scriptPrefix, room, id);
      this.opts.owned?.deleteParticipant(id);
    });
  }

  countAllParticipants(): Promise<number> {
    return this.run(async () => {
      const n = await this.redis.get(this.countKey);
      return n === null ? 0 : Number(n);
    });
  }

  /** Participants whose nodeId is `nodeId` (any room): [room, participantId] pairs. */
  participantsOnNode(nodeId: string): Promise<Array<{ room: string; id: string }>> {
    return this.run(async () => {
      const members = await this.redis.smembers(`${this.prefix}node:${nodeId}:participants`);
      return members.map((m) => {
        const [room, id] = JSON.parse(m) as [string, string];
        return { room, id };
      });
    });
  }

  /** Rooms whose mediaNode is `nodeId`. */
  roomsWithMediaOn(nodeId: string): Promise<string[]> {
    return this.run(() => this.redis.smembers(`${this.prefix}node:${nodeId}:media-rooms`));
  }

  /** Every room name (for sweeps). */
  listRooms(): Promise<string[]> {
    return this.run(() => this.redis.smembers(this.roomsKey));
  }
}
