/**
 * The load generators of bench-signaling.mjs and bench-restart.mjs: forked scripts/bench-signaling-gen.mjs
 * processes, each with its own source address (127.0.0.<2+g>) when binding to it works, and
 * the requests that spread one piece of work over all of them.
 */
import net from 'node:net';
import path from 'node:path';
import { IpcClient } from '../lib/ipc.mjs';
import { addCounts, latencySummary } from '../lib/stats.mjs';
import { ROOT, cpuSeconds } from '../lib/system.mjs';

const GEN = path.join(ROOT, 'scripts', 'bench-signaling-gen.mjs');

/** @typedef {import('../lib/runner.mjs').BenchRun} BenchRun */
/** @typedef {{ start: number, count: number }} Range */

/**
 * What one generator's `connect` answers.
 * @typedef {{ joined: number, failed: number, errors: Record<string, number>, ms: number, joinMs: number[], totalMs: number[], localAddresses: string[] }} ConnectResult
 */
/**
 * What one generator's `relay` answers.
 * @typedef {object} RelayResult
 * @property {number} pairs
 * @property {number} sent
 * @property {number} acks
 * @property {number} errorAcks
 * @property {Record<string, number>} errors
 * @property {number} missingAcks
 * @property {number} receivedTotal
 * @property {number} lost
 * @property {number} strays
 * @property {number} measuredSent
 * @property {number} measuredReceived
 * @property {number} measuredMs
 * @property {number} maxBacklog
 * @property {number[]} latencies
 */
/**
 * What one generator's `joinrate` answers.
 * @typedef {object} JoinRateResult
 * @property {number} started
 * @property {number} joined
 * @property {number} failed
 * @property {Record<string, number>} errors
 * @property {number} startSpanMs
 * @property {number | null} lastAckMs
 * @property {number} maxStartLagMs
 * @property {number[]} totalMs
 * @property {number[]} connectMs
 * @property {number[]} joinMs
 * @property {number[]} ackAt
 * @property {string[]} localAddresses
 */

/**
 * What one generator's `reconnects` answers (times are epoch ms).
 * @typedef {{ total: number, connected: number, rejoined: number, lastRejoinAt: number | null, errors: Record<string, number>, disconnectReasons: Record<string, number>, rejoinAt?: number[] }} ReconnectsResult
 */

/**
 * Can this host bind 127.0.0.2 as a source address? (Linux: all of 127/8 is on lo.)
 * @returns {Promise<boolean>}
 */
export async function localAddressWorks() {
  const server = net.createServer((s) => s.end());
  await new Promise((r) => server.listen(0, '127.0.0.1', () => r(undefined)));
  const { port } = /** @type {net.AddressInfo} */ (server.address());
  const ok = await new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
    c.once('connect', () => {
      const la = c.localAddress;
      c.destroy();
      resolve(la === '127.0.0.2');
    });
    c.once('error', () => resolve(false));
    setTimeout(() => {
      c.destroy();
      resolve(false);
    }, 2_000).unref();
  });
  await new Promise((r) => server.close(() => r(undefined)));
  return /** @type {boolean} */ (ok);
}

export class Generators {
  /**
   * Forks `count` generators; the run stops them before the servers (they hold the client sockets).
   * @param {BenchRun} run
   * @param {number} count
   * @param {number} lifetimeMs each exits by itself after this, whatever happens here
   */
  constructor(run, count, lifetimeMs) {
    this.clients = Array.from({ length: count }, (_, g) => {
      const proc = run.forkNode(`gen-${g}`, GEN, {
        env: { ...process.env, BENCH_GEN_MAX_LIFETIME_MS: String(lifetimeMs) },
        serialization: 'advanced',
        order: 0,
        stop: { killAfterMs: 3_000 },
      });
      return new IpcClient(proc);
    });
  }

  get count() {
    return this.clients.length;
  }

  /**
   * The signing key for the tokens they mint, and their source addresses.
   * @param {string} privateKeyPem
   * @param {string} kid
   * @param {boolean} useLocalAddresses
   */
  init(privateKeyPem, kid, useLocalAddresses) {
    return this.each((g) => ['init', { privateKeyPem, kid, localAddress: useLocalAddresses ? `127.0.0.${2 + g}` : undefined }], 30_000);
  }

  /**
   * One request per generator, its arguments from argsOf(g); resolves with every answer.
   * @param {(g: number) => [string, object]} argsOf
   * @param {number} timeoutMs
   * @returns {Promise<any[]>}
   */
  each(argsOf, timeoutMs) {
    return Promise.all(this.clients.map((c, g) => c.request(...argsOf(g), timeoutMs)));
  }

  /**
   * The same request to every generator.
   * @param {string} cmd
   * @param {object} args
   * @param {number} [timeoutMs]
   */
  all(cmd, args, timeoutMs = 30_000) {
    return this.each(() => [cmd, args], timeoutMs);
  }

  /**
   * Splits [0, total) into contiguous ranges of even length, one per generator (pairs stay in one).
   * @param {number} total
   * @returns {Range[]}
   */
  splitEven(total) {
    const G = this.count;
    const pairs = Math.floor(total / 2);
    const out = [];
    let start = 0;
    for (let g = 0; g < G; g++) {
      const n = 2 * (Math.floor(pairs / G) + (g < pairs % G ? 1 : 0));
      out.push({ start, count: n });
      start += n;
    }
    return out;
  }

  /**
   * Pre-mints `total` tokens (users `${prefix}${i}`) in the generators; returns the ms it took.
   * @param {string} prefix
   * @param {number} total
   */
  async mint(prefix, total) {
    const t0 = performance.now();
    const ranges = this.splitEven(total);
    await this.each((g) => ['mint', { prefix, ...ranges[g] }], 300_000);
    return performance.now() - t0;
  }

  /**
   * Opens a set of `total` connections, each joined to room `${roomPrefix}${floor(i/2)}`, with
   * `concurrency` connect+join attempts in flight in all; with `reconnect`, each comes back by
   * itself as the SDK's does (see reconnects).
   * @param {{ set: string, url: string, kind: 'switchboard' | 'bare', prefix: string, total: number, roomPrefix: string, concurrency: number, listenOffers: boolean, timeoutMs: number, reconnect?: boolean }} o
   */
  async connectSet({ set, url, kind, prefix, total, roomPrefix, concurrency, listenOffers, timeoutMs, reconnect = false }) {
    const ranges = this.splitEven(total);
    const per = Math.max(1, Math.ceil(concurrency / this.count));
    const t0 = performance.now();
    /** @type {ConnectResult[]} */
    const rs = await this.each((g) => ['connect', { set, url, kind, prefix, ...ranges[g], roomPrefix, concurrency: per, listenOffers, reconnect }], timeoutMs);
    const ms = performance.now() - t0;
    return {
      joined: rs.reduce((s, r) => s + r.joined, 0),
      failed: rs.reduce((s, r) => s + r.failed, 0),
      errors: addCounts(rs.map((r) => r.errors)),
      ms,
      join_emit_to_ack_ms: latencySummary(rs.flatMap((r) => r.joinMs)),
      connect_to_ack_ms: latencySummary(rs.flatMap((r) => r.totalMs)),
      local_addresses: [...new Set(rs.flatMap((r) => r.localAddresses))],
    };
  }

  /**
   * Of a set opened with `reconnect`: sockets connected now, and rejoined (join acked) at or
   * after `since` (epoch ms: performance.timeOrigin + performance.now()), over all generators;
   * with `times`, every such socket's last rejoin.
   * @param {string} set
   * @param {number} since
   * @param {boolean} [times]
   */
  async reconnects(set, since, times = false) {
    /** @type {ReconnectsResult[]} */
    const rs = await this.all('reconnects', { set, since, times }, 30_000);
    const last = rs.map((r) => r.lastRejoinAt).filter((t) => t != null);
    return {
      total: rs.reduce((s, r) => s + r.total, 0),
      connected: rs.reduce((s, r) => s + r.connected, 0),
      rejoined: rs.reduce((s, r) => s + r.rejoined, 0),
      lastRejoinAt: last.length ? Math.max(...last) : null,
      errors: addCounts(rs.map((r) => r.errors)),
      disconnectReasons: addCounts(rs.map((r) => r.disconnectReasons)),
      rejoinAt: times ? rs.flatMap((r) => r.rejoinAt ?? []) : [],
    };
  }

  /**
   * Disconnects a set's sockets (errors ignored: a generator may be gone).
   * @param {string} set
   */
  async closeSet(set) {
    await Promise.all(this.clients.map((c) => c.request('close', { set }, 60_000).catch(() => undefined)));
  }

  /** CPU seconds of each generator so far (null if gone). */
  cpuSeconds() {
    return this.clients.map((c) => cpuSeconds(c.proc.pid));
  }
}
