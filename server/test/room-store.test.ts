import { RedisRoomStore } from '../cluster/redisRoomStore';
import { InMemoryRoomStore } from '../rooms/store';
import { describeRoomStore } from './contracts/roomStore';
import { useRedis } from './helpers/redis';

/** The RoomStore contract, run against the single-node store and the cluster's (on the machine's Redis). */
const scope = useRedis('sbtest-room-store');

describeRoomStore('InMemoryRoomStore', () => new InMemoryRoomStore());
describeRoomStore('RedisRoomStore', () => new RedisRoomStore(scope.redis, scope.freshPrefix()));
