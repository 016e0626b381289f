import { Redis } from 'ioredis';
import { OwnedState } from '../cluster/ownedState';
import { RedisGate } from '../cluster/redisGate';
import { RedisRoomLocks } from '../cluster/redisLocks';
import { RedisRoomStore } from '../cluster/redisRoomStore';
import { isRedisOutage } from '../lib/redisOutage';
import type { ParticipantRecord, RoomRecord } from '../rooms/store';
import { startOwnRedis, type OwnService } from './helpers/ownServices';
import { gate, sleep, until } from './helpers/wait';

/**
 * The parts behind Redis outages, on a Redis of this file's own (stopped and
 * restarted empty here): the gate in front of the room store and locks (fails
 * at once while Redis is down, holds requests while the state is verified once
 * it is back), and OwnedState, the mirror a node writes back after Redis came
 * back empty (write-through, the heartbeat's snapshot and its epoch check).
 * The whole story, with real nodes, is faults-redis.test.ts.
 */
let own: OwnService;
const clients: Redis[] = [];
/** A command connection as a node opens it (cluster.ts): no offline queue, nothing re-sent. */
const connect = (): Redis => {
  const r = new Redis(own.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, retryStrategy: () => 50 });
  r.on('error', () => undefined);
  clients.push(r);
  return r;
};
beforeAll(async () => {
  own = await startOwnRedis();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await own?.remove();
});

const room = (name: string, over: Partial<RoomRecord> = {}): RoomRecord => ({
  room: name,
  callId: `call-${name}`,
  status: 'active',
  recording: false,
  mode: 'sfu',
  createdAt: 1,
  removedUsers: [],
  mediaNode: 'n1',
  emptySince: null,
  ...over,
});
const participant = (id: string, roomName: string, nodeId: string, over: Partial<ParticipantRecord> = {}): ParticipantRecord => ({
  id,
  room: roomName,
  userId: `u-${id}`,
  displayName: null,
  role: 'participant',
  tokenId: `t-${id}`,
  canPublish: true,
  socketId: `s-${id}`,
  capabilities: {},
  mutedTracks: [],
  lockedTracks: [],
  heldTracks: [],
  joinedAt: 1,
  clientIp: null,
  nodeId,
  disconnectedAt: null,
  ...over,
});

describe('RedisGate', () => {
  it('fails at once while Redis is down, then holds requests until the state is verified', async () => {
    const redis = connect();
    await until('connected', () => redis.status === 'ready');
    const g = new RedisGate(redis, 5000);
    const held = gate();
    let verifications = 0;
    g.setVerifier(async () => {
      verifications++;
      await held.released;
    });
    const store = new RedisRoomStore(redis, 'gate:', { gate: g });
    const locks = new RedisRoomLocks(redis, 'gate:', undefined, g);
    await store.putRoom(room('a'));
    expect(g.state).toBe('up');

    await own.stop();
    await until('the connection to drop', () => redis.status !== 'ready');
    expect(g.state).toBe('down');
    const t0 = Date.now();
    await expect(store.getRoom('a')).rejects.toMatchObject({ code: 'CLUSTER_UNAVAILABLE' });
    await expect(locks.run('a', async () => 'ran')).rejects.toMatchObject({ code: 'CLUSTER_UNAVAILABLE' });
    expect(Date.now() - t0).toBeLessThan(200);

    await own.start();
    await until('the connection to come back', () => redis.status === 'ready', { timeoutMs: 5000 });
    // Back, but not verified: nothing may read the (empty) Redis yet.
    let read: RoomRecord | undefined | 'pending' = 'pending';
    const reading = store.getRoom('a').then((r) => (read = r));
    const locking = locks.run('a', async () => 'ran');
    await sleep(100);
    expect(read).toBe('pending');
    expect(g.state).toBe('restoring');
    held.release();
    await reading;
    expect(read).toBeUndefined();
    expect(await locking).toBe('ran');
    expect(verifications).toBe(1);
    expect(g.state).toBe('up');
  });

  it('answers CLUSTER_UNAVAILABLE when the verification outlasts its wait, and verifies again on the next request', async () => {
    const redis = connect();
    await until('connected', () => redis.status === 'ready');
    const g = new RedisGate(redis, 200);
    g.setVerifier(async () => {
      await sleep(300);
      throw new Error('Connection is closed.');
    });
    g.markStale();
    const t0 = Date.now();
    await expect(g.run(() => redis.ping())).rejects.toMatchObject({ code: 'CLUSTER_UNAVAILABLE' });
    expect(Date.now() - t0).toBeLessThan(290);
    // The verification failed: still not verified.
    await sleep(200);
    expect(g.state).toBe('restoring');
    g.setVerifier(async () => undefined);
    expect(await g.run(() => redis.ping())).toBe('PONG');
    expect(g.state).toBe('up');
  });

  it('classifies ioredis connection failures as Redis outages, and nothing else', () => {
    expect(isRedisOutage(new Error("Stream isn't writeable and enableOfflineQueue options is false"))).toBe(true);
    expect(isRedisOutage(new Error('Command timed out'))).toBe(true);
    expect(isRedisOutage(Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' }))).toBe(true);
    expect(isRedisOutage(new Error('LOADING Redis is loading the dataset in memory'))).toBe(true);
    expect(isRedisOutage(new Error('ERR wrong number of arguments'))).toBe(false);
    expect(isRedisOutage(undefined)).toBe(false);
  });
});

describe('OwnedState', () => {
  it("mirrors this node's writes, takes other nodes' changes from the snapshot, and refuses a snapshot once the epoch changed", async () => {
    const redis = connect();
    await until('connected', () => redis.status === 'ready');
    await redis.set('own:epoch', 'e1');
    const owned = new OwnedState(redis, 'own:', 'n1');
    const mine = new RedisRoomStore(redis, 'own:', { owned });
    const other = new RedisRoomStore(redis, 'own:');
    await mine.putRoom(room('r1'));
    await mine.putParticipant(participant('p1', 'r1', 'n1'));
    await mine.putParticipant(participant('p2', 'r1', 'n2'));
    await other.putRoom(room('elsewhere', { mediaNode: 'n2' }));
    expect([...owned.snapshot().participants.keys()]).toEqual(['p1']);

    // Another node mutes p1 and removes a user: the snapshot has it; the room it does not touch is not ours.
    await other.putParticipant(participant('p1', 'r1', 'n1', { mutedTracks: ['audio'], lockedTracks: ['audio'] }));
    await other.putRoom(room('r1', { removedUsers: ['u-x'] }));
    expect(await owned.refresh('own:epoch', 'e1')).toBe(true);
    let snap = owned.snapshot();
    expect(snap.participants.get('p1')?.lockedTracks).toEqual(['audio']);
    expect(snap.rooms.get('r1')?.removedUsers).toEqual(['u-x']);
    expect([...snap.rooms.keys()]).toEqual(['r1']);

    // Written here after the snapshot was sent: the write wins over the snapshot's older view.
    const refreshing = owned.refresh('own:epoch', 'e1');
    const writing = mine.putParticipant(participant('p1', 'r1', 'n1', { displayName: 'later', mutedTracks: ['audio'], lockedTracks: ['audio'] }));
    const deleting = mine.deleteParticipant('r1', 'p2');
    await Promise.all([refreshing, writing, deleting]);
    expect(owned.snapshot().participants.get('p1')?.displayName).toBe('later');

    // Redis lost the state: the snapshot is refused, the mirror is what is left.
    await redis.flushall();
    expect(await owned.refresh('own:epoch', 'e1')).toBe(false);
    snap = owned.snapshot();
    expect(snap.participants.get('p1')).toMatchObject({ displayName: 'later', lockedTracks: ['audio'] });
    expect(snap.rooms.get('r1')).toMatchObject({ callId: 'call-r1', removedUsers: ['u-x'] });
    // A copy: changing it changes nothing here.
    snap.participants.clear();
    expect(owned.size).toEqual({ rooms: 1, participants: 1 });
  });
});
