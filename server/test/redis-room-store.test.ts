import type { Redis } from 'ioredis';
import { RedisRoomStore, nodeIndexMember } from '../cluster/redisRoomStore';
import { keysWith, useRedis } from './helpers/redis';
import { participant, putLookalikeRooms, putOddRooms, putTwoRooms, roomRec, sorted } from './helpers/rooms';

/**
 * What only the Redis room store shows: its keys, their layout and escaping,
 * and its round trips. What every RoomStore does is in room-store.test.ts.
 */
const scope = useRedis('sbtest-redis-room-store');
const runPrefix = scope.runPrefix;
let redis: Redis;
beforeAll(() => {
  redis = scope.redis;
});

/** A store under a prefix of its own, so that each test starts from nothing. */
const newStore = (): { store: RedisRoomStore; prefix: string } => {
  const prefix = scope.freshPrefix();
  return { store: new RedisRoomStore(redis, prefix), prefix };
};

describe('RedisRoomStore, beyond the contract', () => {
  it('copies participants in and out deeply, nested capabilities included', async () => {
    const { store: s } = newStore();
    await s.putRoom(roomRec('r'));
    const p = { ...participant('p1'), capabilities: { audio: true, nested: { a: [1, 2] } }, displayName: 'Zoë', clientIp: '10.0.0.1' };
    await s.putParticipant(p);
    (p.capabilities.nested as { a: number[] }).a.push(3);
    expect((await s.getParticipant('r', 'p1'))?.capabilities).toEqual({ audio: true, nested: { a: [1, 2] } });
    expect(await s.listParticipants('r')).toEqual([
      { ...participant('p1'), capabilities: { audio: true, nested: { a: [1, 2] } }, displayName: 'Zoë', clientIp: '10.0.0.1' },
    ]);
  });

  it('writes no key for a participant refused for want of its room', async () => {
    const { store: s, prefix } = newStore();
    await expect(s.putParticipant(participant('p1', 'nope'))).rejects.toThrow('room nope does not exist');
    expect(await keysWith(redis, prefix)).toEqual([]);
  });

  it('leaves only the participant counter (at 0) once its rooms are deleted', async () => {
    const { store: s, prefix } = newStore();
    await putTwoRooms(s);
    await s.deleteRoom('a');
    await s.deleteRoom('a'); // already gone
    await s.putRoom(roomRec('a')); // re-created, then deleted again
    for (const room of ['a', 'b']) await s.deleteRoom(room);
    expect(await keysWith(redis, prefix)).toEqual([`${prefix}participants:count`]);
  });

  it('writes the node index members as exactly JSON.stringify([room, id]), odd names included', async () => {
    const { store: s, prefix } = newStore();
    const expected = await putOddRooms(s);
    // The members written by Lua are exactly JSON.stringify([room, id]).
    for (const { room, id } of expected) {
      expect(await redis.sismember(`${prefix}node:n1:participants`, nodeIndexMember(room, id))).toBe(1);
    }
  });

  it("escapes room names that look like other rooms' keys", async () => {
    const { store: s, prefix } = newStore();
    await putLookalikeRooms(s);
    await s.deleteRoom('x');
    expect(await keysWith(redis, prefix)).toContain(`${prefix}room:x%3Ap:p`);
    expect(await keysWith(redis, prefix)).toContain(`${prefix}room:x%253Ap`);
  });

  it('uses the documented key layout', async () => {
    const { store: s, prefix } = newStore();
    await s.putRoom(roomRec('r', 'm1'));
    await s.putParticipant(participant('p1', 'r', 'n1'));
    expect(sorted(await keysWith(redis, prefix))).toEqual(
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
    const client = scope.open({ keyPrefix: `${runPrefix}kp:` });
    try {
      const s = new RedisRoomStore(client, 'sb:');
      await s.putRoom(roomRec('r', 'm1'));
      await s.putParticipant(participant('p1', 'r', 'n1'));
      await s.putParticipant(participant('p1', 'r', 'n2'));
      expect(await s.participantsOnNode('n2')).toEqual([{ room: 'r', id: 'p1' }]);
      expect(await s.participantsOnNode('n1')).toEqual([]);
      expect(await s.roomsWithMediaOn('m1')).toEqual(['r']);
      expect(await s.countAllParticipants()).toBe(1);
      const all = await keysWith(redis, runPrefix);
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
