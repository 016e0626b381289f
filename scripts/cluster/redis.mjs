/**
 * How bench-cluster.mjs counts Redis commands: INFO commandstats (server-wide, commands
 * inside Lua scripts included) and MONITOR (top-level commands per client connection).
 */

/** @typedef {import('ioredis').Redis} Redis */
/** @typedef {Record<string, number>} Counts command (lower case) -> calls */

/** Our own probe commands, left out of every sum. @param {string} name */
const OWN = (name) => name === 'info' || name === 'monitor' || name.startsWith('client|');
/** The cluster heartbeat's Lua script, told apart from the commands a join causes. */
const HEARTBEAT_SCRIPT = /redis\.call\('(ZADD|ZRANGEBYSCORE)'/;

/**
 * INFO commandstats as { command: calls }, our own probe commands left out.
 * @param {Redis} redis
 * @returns {Promise<Counts>}
 */
export async function commandStats(redis) {
  /** @type {Counts} */
  const out = {};
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m?.[1] && !OWN(m[1])) out[m[1]] = Number(m[2]);
  }
  return out;
}

/**
 * b - a per command, zeros left out.
 * @param {Counts} a
 * @param {Counts} b
 * @returns {Counts}
 */
export const diff = (a, b) =>
  Object.fromEntries(
    Object.keys(b)
      .map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)])
      .filter(([, v]) => v !== 0),
  );
/** @param {Counts} o */
export const sum = (o) => Object.values(o).reduce((s, v) => s + v, 0);
/**
 * Adds o (times f) into acc; returns acc.
 * @param {Counts} acc
 * @param {Counts} o
 * @param {number} [f]
 */
export const addTo = (acc, o, f = 1) => {
  for (const [k, v] of Object.entries(o)) acc[k] = (acc[k] ?? 0) + v * f;
  return acc;
};

/** @typedef {{ top: Counts, heartbeats: number, lua: number, foreign: number, byNode: Counts }} MonitorCounts */

/**
 * MONITOR on a connection of its own: top-level commands per name from the nodes'
 * connections, heartbeat scripts apart, foreign ones counted.
 * @param {Redis} redis
 * @param {Set<string>} ownAddrs our connections (addr of CLIENT LIST)
 * @param {Map<string, string>} nodeAddrs the nodes' connections -> node id
 */
export async function startMonitor(redis, ownAddrs, nodeAddrs) {
  const m = await redis.monitor();
  /** @type {MonitorCounts} */
  const counts = { top: {}, heartbeats: 0, lua: 0, foreign: 0, byNode: {} };
  m.on('monitor', (/** @type {string} */ _time, /** @type {string[]} */ argv, /** @type {string} */ source) => {
    const name = String(argv[0] ?? '').toLowerCase();
    if (source === 'lua') return void counts.lua++;
    if (ownAddrs.has(source)) return;
    const node = nodeAddrs.get(source);
    if (!node) return void counts.foreign++;
    if (name === 'eval' && HEARTBEAT_SCRIPT.test(argv[1] ?? '')) return void counts.heartbeats++;
    counts.top[name] = (counts.top[name] ?? 0) + 1;
    counts.byNode[node] = (counts.byNode[node] ?? 0) + 1;
  });
  /** @returns {MonitorCounts} */
  const snap = () => structuredClone(counts);
  return { snap, stop: () => m.disconnect() };
}

/**
 * @param {MonitorCounts} a
 * @param {MonitorCounts} b
 */
export function monitorDiff(a, b) {
  return { top: diff(a.top, b.top), heartbeats: b.heartbeats - a.heartbeats, foreign: b.foreign - a.foreign, byNode: diff(a.byNode, b.byNode) };
}

/**
 * Deletes the keys under `prefix`; returns how many were deleted and how many are left.
 * @param {Redis} redis
 * @param {string} prefix
 */
export async function deleteKeys(redis, prefix) {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  let remaining = 0;
  cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    remaining += keys.length;
  } while (cursor !== '0');
  return { deleted, remaining };
}
