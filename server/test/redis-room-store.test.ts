import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisRoomStore, nodeIndexMember } from '../cluster/redisRoomStore';
import type { ParticipantRecord, RoomRecord } from '../rooms/store';

const url = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Every key of this run starts with this; all of them are deleted in afterAll. */
const runPrefix = `sbtest:${randomUUID()}:`;
let redis: Redis;
let n = 0;

/** A store under a prefix of its own, so that each test starts from nothing. */
const newStore = (): { store: RedisRoomStore; prefix: string } => {
  const prefix = `${runPrefix}${++n}:`;
  return { store: new RedisRoomStore(redis, prefix), prefix };
};

const roomRec = (room: string, mediaNode: string | null = null): RoomRecord => ({
  room,
  callId: `c-${room}`,
  status: 'active',
  recording: false,
  mode: 'sfu',
  createdAt: 0,
  removedUsers: [],
  mediaNode,
  emptySince: null,
});
const participant = (id: string, room = 'r', nodeId = 'n1'): ParticipantRecord => ({
  id,
  room,
  userId: id,
  displayName: null,
  role: 'participant',
  tokenId: 't',
  canPublish: true,
  socketId: 's',
  capabilities: {},
  mutedTracks: [],
  lockedTracks: [],
  heldTracks: [],
  joinedAt: 0,
  clientIp: null,
  nodeId,
  disconnectedAt: null,
});
const sorted = <T>(xs: T[]): T[] => [...xs].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));

async function keysWith(prefix: string, client: Redis = redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

beforeAll(() => {
  redis = new Redis(url);
});

afterAll(async () => {
  const keys = await keysWith(runPrefix);
  for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  await redis.quit();
});

describe('RedisRoomStore', () => {
  it('passes the in-memory room store behaviour: copies in and out, counts, deletes rooms with their participants', async () => {
    const { store: s } = newStore();
    await s.putRoom({
      room: 'r',
      callId: 'c',
      status: 'active',
      recording: false,
      mode: 'sfu',
      createdAt: 0,
      removedUsers: [],
      mediaNode: null,
      emptySince: null,
    });
    const p = participant('p1');
    await s.putParticipant(p);
    p.mutedTracks.push('audio');
    expect((await s.getParticipant('r', 'p1'))?.mutedTracks).toEqual([]);
    const out = (await s.getParticipant('r', 'p1'))!;
    out.heldTracks.push('video');
    expect((await s.getParticipant('r', 'p1'))?.heldTracks).toEqual([]);
    await s.putParticipant(participant('p2'));
    expect(await s.countParticipants('r')).toBe(2);
    expect(await s.countAllParticipants()).toBe(2);
    await s.deleteRoom('r');
    expect(await s.countRooms()).toBe(0);
    expect(await s.countAllParticipants()).toBe(0);
    await expect(s.putParticipant(participant('p3'))).rejects.toThrow(/does not exist/);
  });

  it('copies room records in and out and returns undefined for what is missing', async () => {
    const { store: s } = newStore();
    expect(await s.getRoom('r')).toBeUndefined();
    expect(await s.getParticipant('r', 'p1')).toBeUndefined();
    expect(await s.listParticipants('r')).toEqual([]);
    expect(await s.countParticipants('r')).toBe(0);
    expect(await s.countAllParticipants()).toBe(0);
    const rec = roomRec('r');
    await s.putRoom(rec);
    rec.removedUsers.push('u1');
    rec.status = 'ended';
    expect(await s.getRoom('r')).toEqual(roomRec('r'));
    const out = (await s.getRoom('r'))!;
    out.removedUsers.push('u2');
    expect((await s.getRoom('r'))?.removedUsers).toEqual([]);
    await s.putRoom({ ...roomRec('r'), removedUsers: ['u3'], emptySince: 42 });
    expect(await s.getRoom('r')).toEqual({ ...roomRec('r'), removedUsers: ['u3'], emptySince: 42 });
    expect(await s.countRooms()).toBe(1);

    const p = { ...participant('p1'), capabilities: { audio: true, nested: { a: [1, 2] } }, displayName: 'Zoë', clientIp: '10.0.0.1' };
    await s.putParticipant(p);
    (p.capabilities.nested as { a: number[] }).a.push(3);
    expect((await s.getParticipant('r', 'p1'))?.capabilities).toEqual({ audio: true, nested: { a: [1, 2] } });
    expect(await s.listParticipants('r')).toEqual([
      { ...participant('p1'), capabilities: { audio: true, nested: { a: [1, 2] } }, displayName: 'Zoë', clientIp: '10.0.0.1' },
    ]);
  });

  it('rejects putParticipant into a missing room and writes nothing', async () => {
    const { store: s, prefix } = newStore();
    await expect(s.putParticipant(participant('p1', 'nope'))).rejects.toThrow('room nope does not exist');
    expect(await s.countAllParticipants()).toBe(0);
    expect(await s.participantsOnNode('n1')).toEqual([]);
    expect(await keysWith(prefix)).toEqual([]);
  });

  it('counts per room and across rooms, without counting a re-put twice', async () => {
    const { store: s } = newStore();
    await s.putRoom(roomRec('a'));
    await s.putRoom(roomRec('b'));
    await s.putParticipant(participant('p1', 'a'));
    await s.putParticipant(participant('p2', 'a'));
    await s.putParticipant(participant('p1', 'b'));
    await s.putParticipant({ ...participant('p1', 'a'), mutedTracks: ['audio'] });
    await s.putParticipant({ ...participant('p1', 'a'), socketId: null, disconnectedAt: 5 });
    expect(await s.countParticipants('a')).toBe(2);
    expect(await s.countParticipants('b')).toBe(1);
    expect(await s.countAllParticipants()).toBe(3);
    expect(await s.countRooms()).toBe(2);
    expect(await s.getParticipant('a', 'p1')).toEqual({ ...participant('p1', 'a'), socketId: null, disconnectedAt: 5 });
    // Re-putting a room keeps its participants.
    await s.putRoom({ ...roomRec('a'), recording: true });
    expect(await s.countParticipants('a')).toBe(2);
    expect(await s.countRooms()).toBe(2);
  });

  it('deletes participants, keeping the counter and the node index exact', async () => {
    const { store: s } = newStore();
    await s.putRoom(roomRec('r'));
    await s.putParticipant(participant('p1'));
    await s.putParticipant(participant('p2'));
    await s.deleteParticipant('r', 'p1');
    await s.deleteParticipant('r', 'p1'); // already gone: no double decrement
    await s.deleteParticipant('r', 'ghost');
    await s.deleteParticipant('missing-room', 'p2');
    expect(await s.getParticipant('r', 'p1')).toBeUndefined();
    expect((await s.listParticipants('r')).map((p) => p.id)).toEqual(['p2']);
    expect(await s.countParticipants('r')).toBe(1);
    expect(await s.countAllParticipants()).toBe(1);
    expect(await s.participantsOnNode('n1')).toEqual([{ room: 'r', id: 'p2' }]);
  });

  it('deleteRoom removes the participants, fixes the counter and the indexes, and leaves no keys behind', async () => {
    const { store: s, prefix } = newStore();
    await s.putRoom(roomRec('a', 'm1'));
    await s.putRoom(roomRec('b', 'm1'));
    await s.putParticipant(participant('p1', 'a', 'n1'));
    await s.putParticipant(participant('p2', 'a', 'n2'));
    await s.putParticipant(participant('p3', 'b', 'n1'));
    await s.deleteRoom('a');
    expect(await s.getRoom('a')).toBeUndefined();
    expect(await s.listParticipants('a')).toEqual([]);
    expect(await s.countParticipants('a')).toBe(0);
    expect(await s.countAllParticipants()).toBe(1);
    expect(await s.countRooms()).toBe(1);
    expect(await s.listRooms()).toEqual(['b']);
    expect(await s.participantsOnNode('n1')).toEqual([{ room: 'b', id: 'p3' }]);
    expect(await s.participantsOnNode('n2')).toEqual([]);
    expect(await s.roomsWithMediaOn('m1')).toEqual(['b']);
    await s.deleteRoom('a'); // already gone: a no-op
    expect(await s.countAllParticipants()).toBe(1);
    // A room deleted before being re-created starts empty.
    await s.putRoom(roomRec('a'));
    expect(await s.countParticipants('a')).toBe(0);
    await s.deleteRoom('a');
    await s.deleteRoom('b');
    expect(await s.countAllParticipants()).toBe(0);
    expect(await s.countRooms()).toBe(0);
    // Only the counter (at 0) remains.
    expect(await keysWith(prefix)).toEqual([`${prefix}participants:count`]);
  });

  it('participantsOnNode follows nodeId changes', async () => {
    const { store: s } = newStore();
    await s.putRoom(roomRec('a'));
    await s.putRoom(roomRec('b'));
    await s.putParticipant(participant('p1', 'a', 'n1'));
    await s.putParticipant(participant('p2', 'a', 'n1'));
    await s.putParticipant(participant('p1', 'b', 'n2'));
    expect(sorted(await s.participantsOnNode('n1'))).toEqual([
      { room: 'a', id: 'p1' },
      { room: 'a', id: 'p2' },
    ]);
    expect(await s.participantsOnNode('n2')).toEqual([{ room: 'b', id: 'p1' }]);
    // p1 of room a reconnects through n2, then n3, then back to n1.
    await s.putParticipant(participant('p1', 'a', 'n2'));
    expect(await s.participantsOnNode('n1')).toEqual([{ room: 'a', id: 'p2' }]);
    expect(sorted(await s.participantsOnNode('n2'))).toEqual([
      { room: 'a', id: 'p1' },
      { room: 'b', id: 'p1' },
    ]);
    await s.putParticipant(participant('p1', 'a', 'n3'));
    expect(await s.participantsOnNode('n2')).toEqual([{ room: 'b', id: 'p1' }]);
    expect(await s.participantsOnNode('n3')).toEqual([{ room: 'a', id: 'p1' }]);
    await s.putParticipant(participant('p1', 'a', 'n1'));
    expect(await s.participantsOnNode('n3')).toEqual([]);
    expect(sorted(await s.participantsOnNode('n1'))).toEqual([
      { room: 'a', id: 'p1' },
      { room: 'a', id: 'p2' },
    ]);
    expect(await s.participantsOnNode('nobody')).toEqual([]);
    expect(await s.countAllParticipants()).toBe(3);
  });

  it('roomsWithMediaOn follows mediaNode changes (to and from null) and deleteRoom', async () => {
    const { store: s } = newStore();
    await s.putRoom(roomRec('a', null));
    await s.putRoom(roomRec('b', 'm1'));
    expect(await s.roomsWithMediaOn('m1')).toEqual(['b']);
    await s.putRoom(roomRec('a', 'm1'));
    expect(sorted(await s.roomsWithMediaOn('m1'))).toEqual(['a', 'b']);
    await s.putRoom(roomRec('a', 'm2'));
    expect(await s.roomsWithMediaOn('m1')).toEqual(['b']);
    expect(await s.roomsWithMediaOn('m2')).toEqual(['a']);
    await s.putRoom(roomRec('a', null));
    expect(await s.roomsWithMediaOn('m2')).toEqual([]);
    await s.putRoom(roomRec('b', 'm1')); // unchanged
    expect(await s.roomsWithMediaOn('m1')).toEqual(['b']);
    await s.deleteRoom('b');
    expect(await s.roomsWithMediaOn('m1')).toEqual([]);
  });

  it('lists rooms', async () => {
    const { store: s } = newStore();
    expect(await s.listRooms()).toEqual([]);
    await s.putRoom(roomRec('a'));
    await s.putRoom(roomRec('b'));
    await s.putRoom(roomRec('a'));
    expect(sorted(await s.listRooms())).toEqual(['a', 'b']);
    expect(await s.countRooms()).toBe(2);
  });

  it('handles room names and ids with odd characters', async () => {
    const { store: s, prefix } = newStore();
    const odd = [
      'with space',
      'a:b:c',
      'room:x:p',
      'ünïcødé 会议室 🎉',
      'line\nbreak',
      'tab\there',
      'quote"back\\slash/',
      '\u0001\u001f\u007f',
      '*?[glob]',
      ']',
      'x'.repeat(128),
    ];
    for (const [i, room] of odd.entries()) {
      await s.putRoom(roomRec(room, 'm1'));
      await s.putParticipant(participant(`p${i}`, room, 'n1'));
      await s.putParticipant(participant(`id with\n"odd" ${room}`, room, 'n1'));
    }
    // With raw names in keys, the record of 'room:x:p' would be the participants hash of 'room:x'.
    await s.putRoom(roomRec('room:x'));
    expect(await s.countParticipants('room:x')).toBe(0);
    expect(await s.countRooms()).toBe(odd.length + 1);
    expect(sorted(await s.listRooms())).toEqual(sorted([...odd, 'room:x']));
    expect(sorted(await s.roomsWithMediaOn('m1'))).toEqual(sorted(odd));
    const expected = odd.flatMap((room, i) => [
      { room, id: `p${i}` },
      { room, id: `id with\n"odd" ${room}` },
    ]);
    expect(sorted(await s.participantsOnNode('n1'))).toEqual(sorted(expected));
    // The members written by Lua are exactly JSON.stringify([room, id]).
    for (const { room, id } of expected) {
      expect(await redis.sismember(`${prefix}node:n1:participants`, nodeIndexMember(room, id))).toBe(1);
      expect((await s.getParticipant(room, id))?.room).toBe(room);
    }
    expect(await s.countAllParticipants()).toBe(2 * odd.length);
    // Moving and deleting work with them too.
    await s.putParticipant(participant('p0', odd[0]!, 'n2'));
    expect(await s.participantsOnNode('n2')).toEqual([{ room: odd[0], id: 'p0' }]);
    for (const room of odd) await s.deleteRoom(room);
    expect(await s.participantsOnNode('n1')).toEqual([]);
    expect(await s.participantsOnNode('n2')).toEqual([]);
    expect(await s.roomsWithMediaOn('m1')).toEqual([]);
    expect(await s.countAllParticipants()).toBe(0);
    expect(await s.listRooms()).toEqual(['room:x']);
  });

  it("keeps rooms whose names look like other rooms' keys apart", async () => {
    const { store: s, prefix } = newStore();
    const names = ['x', 'x:p', 'x:p:p', 'x%3Ap', 'x%253Ap', '%', '%25', ':', 'p'];
    for (const room of names) {
      await s.putRoom(roomRec(room));
      await s.putParticipant(participant(`in ${room}`, room));
    }
    for (const room of names) {
      expect((await s.getRoom(room))?.callId).toBe(`c-${room}`);
      expect((await s.listParticipants(room)).map((p) => p.id)).toEqual([`in ${room}`]);
    }
    expect(await s.countAllParticipants()).toBe(names.length);
    await s.deleteRoom('x');
    for (const room of names.slice(1)) expect(await s.countParticipants(room)).toBe(1);
    expect(await keysWith(prefix)).toContain(`${prefix}room:x%3Ap:p`);
    expect(await keysWith(prefix)).toContain(`${prefix}room:x%253Ap`);
  });

  it('uses the documented key layout', async () => {
    const { store: s, prefix } = newStore();
    await s.putRoom(roomRec('r', 'm1'));
    await s.putParticipant(participant('p1', 'r', 'n1'));
    expect(sorted(await keysWith(prefix))).toEqual(
      sorted([
        `${prefix}room:r`,
        `${prefix}room:r:p`,
        `${prefix}rooms`,
        `${prefix}participants:count`,
        `${prefix}node:n1:participants`,
        `${prefix}node:m1:media-rooms`,
      ]),
    );
    expect(JSON.parse((await redis.get(`${prefix}room:r`))!)).toEqual(roomRec('r', 'm1'));
    expect(JSON.parse((await redis.hget(`${prefix}room:r:p`, 'p1'))!)).toEqual(participant('p1', 'r', 'n1'));
    expect(await redis.get(`${prefix}participants:count`)).toBe('1');
    expect(await redis.smembers(`${prefix}node:n1:participants`)).toEqual([JSON.stringify(['r', 'p1'])]);
    expect(await redis.ttl(`${prefix}room:r`)).toBe(-1);
    expect(await redis.ttl(`${prefix}room:r:p`)).toBe(-1);
  });

  it('honours a keyPrefix on the client', async () => {
    const client = new Redis(url, { keyPrefix: `${runPrefix}kp:` });
    try {
      const s = new RedisRoomStore(client, 'sb:');
      await s.putRoom(roomRec('r', 'm1'));
      await s.putParticipant(participant('p1', 'r', 'n1'));
      await s.putParticipant(participant('p1', 'r', 'n2'));
      expect(await s.participantsOnNode('n2')).toEqual([{ room: 'r', id: 'p1' }]);
      expect(await s.participantsOnNode('n1')).toEqual([]);
      expect(await s.roomsWithMediaOn('m1')).toEqual(['r']);
      expect(await s.countAllParticipants()).toBe(1);
      const all = await keysWith(runPrefix);
      expect(sorted(all.filter((k) => k.startsWith(`${runPrefix}kp:`)))).toEqual(
        sorted([
          `${runPrefix}kp:sb:room:r`,
          `${runPrefix}kp:sb:room:r:p`,
          `${runPrefix}kp:sb:rooms`,
          `${runPrefix}kp:sb:participants:count`,
          `${runPrefix}kp:sb:node:n2:participants`,
          `${runPrefix}kp:sb:node:m1:media-rooms`,
        ]),
      );
      await s.deleteRoom('r');
      expect(await s.participantsOnNode('n2')).toEqual([]);
      expect(await s.roomsWithMediaOn('m1')).toEqual([]);
    } finally {
      await client.quit();
    }
  });

  it('does one round trip per method (EVALSHA for writes)', async () => {
    const { store: s } = newStore();
    const sent: string[] = [];
    const monitorless = redis as unknown as { sendCommand: (cmd: { name: string }) => unknown };
    const original = monitorless.sendCommand.bind(redis);
    monitorless.sendCommand = (cmd) => {
      sent.push(cmd.name);
      return original(cmd);
    };
    try {
      await s.putRoom(roomRec('r', 'm1')); // may fall back to EVAL once if the script is not loaded yet
      await s.putParticipant(participant('p1'));
      await s.deleteParticipant('r', 'p1');
      await s.deleteRoom('r');
      sent.length = 0;
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['putRoom', () => s.putRoom(roomRec('r', 'm1'))],
        ['putParticipant', () => s.putParticipant(participant('p1'))],
        ['getRoom', () => s.getRoom('r')],
        ['getParticipant', () => s.getParticipant('r', 'p1')],
        ['listParticipants', () => s.listParticipants('r')],
        ['countParticipants', () => s.countParticipants('r')],
        ['countAllParticipants', () => s.countAllParticipants()],
        ['countRooms', () => s.countRooms()],
        ['participantsOnNode', () => s.participantsOnNode('n1')],
        ['roomsWithMediaOn', () => s.roomsWithMediaOn('m1')],
        ['listRooms', () => s.listRooms()],
        ['deleteParticipant', () => s.deleteParticipant('r', 'p1')],
        ['deleteRoom', () => s.deleteRoom('r')],
      ];
      const perCall: Record<string, string[]> = {};
      for (const [name, fn] of calls) {
        sent.length = 0;
        await fn();
        perCall[name] = [...sent];
      }
      expect(perCall).toEqual({
        putRoom: ['evalsha'],
        putParticipant: ['evalsha'],
        getRoom: ['get'],
        getParticipant: ['hget'],
        listParticipants: ['hvals'],
        countParticipants: ['hlen'],
        countAllParticipants: ['get'],
        countRooms: ['scard'],
        participantsOnNode: ['smembers'],
        roomsWithMediaOn: ['smembers'],
        listRooms: ['smembers'],
        deleteParticipant: ['evalsha'],
        deleteRoom: ['evalsha'],
      });
    } finally {
      delete (redis as unknown as { sendCommand?: unknown }).sendCommand; // back to the prototype's
    }
  });
});
