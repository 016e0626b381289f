/**
 * The Socket.IO clients of bench-cluster.mjs: each connects with a token of its own and
 * joins a room; pairs of them ping-pong offers and answers through the servers.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { ROOT } from '../lib/system.mjs';

/** @typedef {import('./redis.mjs').Counts} Counts */
/** @typedef {{ name: string, url: string }} Server */

const require = createRequire(path.join(ROOT, 'package.json'));
// require, not import: the CommonJS build, as media-peer.mjs loads it.
const { io } = require('socket.io-client');

/** @typedef {ReturnType<typeof io>} Socket */

const PING_TIMEOUT_MS = 2_000;

/** Every socket opened, for cleanup. */
/** @type {Set<Socket>} */
export const sockets = new Set();

/** @type {import('../lib/tokens.mjs').MintToken} */
let mint = () => {
  throw new Error('useTokens first');
};
/** @param {string} user */
const token = (user) => mint({ sub: user, name: user, role: 'participant' });

/**
 * The minter of the clients' tokens.
 * @param {import('../lib/tokens.mjs').MintToken} minter
 */
export function useTokens(minter) {
  mint = minter;
}

/**
 * @typedef {{ socket: Socket, pid: string, callId: string, joinMs: number }} Joined
 */

/**
 * Connects with its own token (websocket only) and joins `room`.
 * @param {Server} srv
 * @param {string} user
 * @param {string} room
 * @param {number} [timeoutMs]
 * @returns {Promise<Joined>}
 */
export function connectAndJoin(srv, user, room, timeoutMs = 15_000) {
  return new Promise((resolve, reject) => {
    const socket = io(srv.url, { transports: ['websocket'], auth: { token: token(user) }, reconnection: false, forceNew: true, timeout: timeoutMs });
    sockets.add(socket);
    const timer = setTimeout(() => reject(new Error(`${user}: connect+join to ${srv.name} timed out`)), timeoutMs);
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${user}: connect to ${srv.name} failed: ${err.message}`));
    });
    socket.once('connect', () => {
      const t = performance.now();
      socket.emit('join', { room }, (/** @type {any} */ ack) => {
        clearTimeout(timer);
        if (!ack?.ok) return reject(new Error(`${user}: join ${room} on ${srv.name}: ${JSON.stringify(ack?.error ?? ack)}`));
        resolve({ socket, pid: ack.participant_id, callId: ack.room_state.call_id, joinMs: performance.now() - t });
      });
    });
  });
}

/**
 * A pair A -> B in one room, and what its ping-pongs found.
 * @typedef {object} Pair
 * @property {string} label
 * @property {Joined} a
 * @property {Joined} b
 * @property {boolean} cluster
 * @property {number} errors
 * @property {number} lost
 * @property {number} strays
 * @property {{ seq: number, resolve: (rtt: number | null) => void, timer: NodeJS.Timeout } | null} pending
 * @property {number} seq
 * @property {number} warm
 * @property {number[]} rtts
 * @property {number} lostMeasured
 * @property {Counts} cmds
 * @property {number} blockS
 */

/**
 * A pair A -> B in one room; B answers every offer at once.
 * @param {string} label
 * @param {string} room
 * @param {Server} srvA
 * @param {Server} srvB
 * @param {boolean} cluster
 * @returns {Promise<Pair>}
 */
export async function makePair(label, room, srvA, srvB, cluster) {
  const a = await connectAndJoin(srvA, `${room}-a`, room);
  const b = await connectAndJoin(srvB, `${room}-b`, room);
  /** @type {Pair} */
  const pair = { label, a, b, errors: 0, lost: 0, strays: 0, pending: null, seq: 0, cluster, warm: 0, rtts: [], lostMeasured: 0, cmds: {}, blockS: 0 };
  b.socket.on('offer', (/** @type {any} */ m) => b.socket.emit('answer', { call_id: m.call_id, to: m.from, sdp: m.sdp }));
  a.socket.on('answer', (/** @type {any} */ m) => {
    const [, seq, t0] = /^bench (\d+) ([\d.]+)/.exec(m.sdp) ?? [];
    const p = pair.pending;
    if (!p || Number(seq) !== p.seq) return void pair.strays++;
    pair.pending = null;
    clearTimeout(p.timer);
    p.resolve(performance.now() - Number(t0));
  });
  for (const s of [a.socket, b.socket]) s.on('signaling-error', () => pair.errors++);
  return pair;
}

/** @param {number} n */
const pad = (n) => 'a=x-bench-padding:'.padEnd(Math.max(0, n), 'x');
/**
 * One offer of sdpBytes from A and B's answer: the round trip in ms, or null if lost.
 * @param {Pair} pair
 * @param {number} sdpBytes
 * @returns {Promise<number | null>}
 */
export function pingPong(pair, sdpBytes) {
  return new Promise((resolve) => {
    const seq = ++pair.seq;
    const head = `bench ${seq} ${performance.now().toFixed(4)}\r\n`;
    pair.pending = {
      seq,
      resolve,
      timer: setTimeout(() => {
        pair.pending = null;
        pair.lost++;
        resolve(null);
      }, PING_TIMEOUT_MS),
    };
    pair.a.socket.emit('offer', { call_id: pair.a.callId, to: pair.b.pid, sdp: head + pad(sdpBytes - head.length) });
  });
}
