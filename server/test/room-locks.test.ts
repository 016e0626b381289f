import { RedisRoomLocks } from '../cluster/redisLocks';
import { roomKeyPart } from '../cluster/redisRoomStore';
import { KeyedMutex } from '../lib/keyedMutex';
import { describeRoomLocks } from './contracts/roomLocks';
import { useRedis } from './helpers/redis';

/** The room-lock contract, run against the single node's mutex and the cluster's Redis locks (two connections: two nodes). */
const scope = useRedis('sbtest-room-locks');

describeRoomLocks('KeyedMutex', () => {
  const m = new KeyedMutex();
  return { a: m, b: m, held: async () => m.size };
});

describeRoomLocks('RedisRoomLocks', (opts) => {
  const prefix = scope.freshPrefix();
  const held = async (...rooms: string[]) => {
    const exists = await Promise.all(rooms.map((room) => scope.redis.exists(`${prefix}lock:${roomKeyPart(room)}`)));
    return exists.reduce((sum, n) => sum + n, 0);
  };
  return { a: new RedisRoomLocks(scope.open(), prefix, opts), b: new RedisRoomLocks(scope.open(), prefix, opts), held };
});
