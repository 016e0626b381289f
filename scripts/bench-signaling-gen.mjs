#!/usr/bin/env node
/**
 * Load generator for scripts/bench-signaling.mjs and scripts/bench-restart.mjs (not meant to
 * be run by hand).
 * Forked with an IPC channel (scripts/signaling/generators.mjs); it answers the parent's
 * requests as scripts/lib/ipc.mjs describes.
 *
 * Commands:
 *   init     { privateKeyPem, kid, localAddress? }   signing key for local RS256 tokens
 *   mint     { prefix, start, count }                 pre-mint tokens (users `${prefix}${i}`)
 *   connect  { set, url, kind, prefix, start, count, roomPrefix, concurrency, listenOffers, reconnect? }
 *            opens count sockets (websocket only, token in the handshake for kind
 *            'switchboard'), each joins room `${roomPrefix}${floor(i/2)}`; a sliding
 *            window of `concurrency` connect+join attempts in flight. With reconnect,
 *            each socket comes back by itself as the SDK's does (client/sdk/connection.ts
 *            and wire.ts): socket.io-client's reconnection (500 ms doubling to 5 s, at most
 *            2 s apart once the server said server-draining), a retry after a disconnect
 *            packet that followed server-draining, and the room joined again on every
 *            reconnect.
 *   relay    { set, rate, warmupMs, measureMs, drainMs, sdpBytes }
 *            open-loop offers over the pairs of `set` at `rate` msgs/s; one-way latency
 *            = receive time - emit time, both taken here with performance.now().
 *   joinrate { set, url, kind, prefix, start, count, roomPrefix, rate, timeoutMs }
 *            starts new connections at `rate`/s (open loop), each connect + join.
 *   limitPairs { set, pairs }                        relay uses only the first `pairs` pairs of a set
 *   reconnects { set, since, times? }                 of a reconnecting set: how many sockets are
 *            connected, and rejoined (join acked) at or after `since` (epoch ms), the
 *            last such ack; with times, each socket's last rejoin (epoch ms)
 *   close    { set }                                  disconnects a set's sockets
 *   stats    {}                                       process memory and socket count
 *
 * Bounded: every wait has a timeout; the process exits when the parent goes away
 * (IPC disconnect) or after MAX_LIFETIME_MS whatever happens.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { serveIpc } from './lib/ipc.mjs';
import { sdpFiller } from './signaling/sdp-filler.mjs';
import { addCounts } from './lib/stats.mjs';
import { ROOT } from './lib/system.mjs';
import { tokenMinter } from './lib/tokens.mjs';

const require = createRequire(path.join(ROOT, 'package.json'));
// require, not import: the CommonJS build, the one media-peer.mjs loads too (an import
// would load the esm-debug build).
const { io } = require('socket.io-client');

const MAX_LIFETIME_MS = Number(process.env.BENCH_GEN_MAX_LIFETIME_MS ?? 3_600_000);
const CONNECT_TIMEOUT_MS = 30_000;
const ACK_TIMEOUT_MS = 30_000;

if (!process.send) {
  console.error('bench-signaling-gen: must be forked by scripts/signaling/generators.mjs (bench-signaling, bench-restart)');
  process.exit(2);
}

const lifetime = setTimeout(() => {
  console.error(`bench-signaling-gen ${process.pid}: lifetime of ${MAX_LIFETIME_MS} ms exceeded, exiting`);
  process.exit(3);
}, MAX_LIFETIME_MS);
lifetime.unref();
process.on('disconnect', () => process.exit(0));

/** @typedef {ReturnType<typeof io>} Socket */
/** @typedef {'switchboard' | 'bare'} Kind */
/**
 * What a reconnecting socket saw since it first joined; times are epoch ms (epochNow), so
 * that the parent can compare them with its own.
 * @typedef {{ disconnects: number, lastReason: string | null, connects: number, lastConnectAt: number | null, rejoins: number, lastRejoinAt: number | null, errors: Record<string, number> }} ReconnectLog
 */
/** @typedef {{ socket: Socket, index: number, participantId: string, callId: string, reconnect?: ReconnectLog, stop?: () => void }} Entry */
/** @typedef {{ kind: Kind, entries: Entry[], maxPairs?: number }} ConnectionSet */
/**
 * @typedef {{ ok: true, socket: Socket, connectMs: number, joinMs: number, totalMs: number, ack: any, startedAt?: number | null, ackAt?: number | null }
 *   | { ok: false, stage: string, error: string, startedAt?: number | null, ackAt?: number | null }} Opened
 */

const now = () => performance.now();
/** Wall-clock ms with performance.now()'s resolution: comparable across the processes of one machine. */
const epochNow = () => performance.timeOrigin + performance.now();

/** socket.io-client's reconnection as the SDK configures it (client/sdk/connection.ts). */
const SDK_RECONNECTION = { reconnection: true, reconnectionDelay: 500, reconnectionDelayMax: 5000 };
/** Refusals the SDK tries again after RETRY_DELAY_MS plus jitter (client/sdk/wire.ts). */
const SDK_RETRY_CODES = new Set(['SERVER_DRAINING', 'SERVER_FULL']);
const SDK_RETRY_DELAY_MS = 500;

/** @type {((sub: string, name: string) => string) | null} */
let mint = null;
/** @type {string | undefined} */
let localAddress;
/** prefix -> Map(index -> token) */
/** @type {Map<string, Map<number, string>>} */
const tokens = new Map();
/** @type {Map<string, ConnectionSet>} */
const sets = new Map();
/** The relay run in progress (receives every socket's `offer`). */
/** @type {{ onOffer: (msg: any, t: number) => void } | null} */
let activeRelay = null;
/** @type {Set<string>} */
const localAddrsSeen = new Set();

/**
 * @param {string} sub
 * @param {string} name
 */
function mintToken(sub, name) {
  if (!mint) throw new Error('init first');
  return mint(sub, name);
}

/**
 * @param {string} prefix
 * @param {number} i
 */
function tokenFor(prefix, i) {
  const t = tokens.get(prefix)?.get(i);
  return t ?? mintToken(`${prefix}${i}`, `Bench ${prefix}${i}`);
}

/** @param {Socket} socket */
function noteLocalAddress(socket) {
  try {
    // @ts-expect-error engine.io internals (the ws socket), not part of its types
    const a = socket.io.engine.transport.ws._socket.localAddress;
    if (a && localAddrsSeen.size < 64) localAddrsSeen.add(a);
  } catch {
    /* internals differ: not essential */
  }
}

/**
 * One connection: connect (token in the handshake for switchboard) then join.
 * Resolves { ok, socket, connectMs, joinMs, totalMs, ack } or { ok: false, stage, error }.
 * @param {{ url: string, kind: Kind, token?: string, room: string, displayName: string, onOffer?: (msg: any) => void, reconnect?: boolean }} o
 * @returns {Promise<Opened>}
 */
function openAndJoin({ url, kind, token, room, displayName, onOffer, reconnect = false }) {
  return new Promise((resolve) => {
    const t0 = now();
    let settled = false;
    /** @type {NonNullable<Parameters<typeof io>[1]> & { localAddress?: string }} */
    const opts = { transports: ['websocket'], forceNew: true, timeout: CONNECT_TIMEOUT_MS, ...(reconnect ? SDK_RECONNECTION : { reconnection: false }) };
    if (kind === 'switchboard') opts.auth = { token };
    if (localAddress) opts.localAddress = localAddress;
    const socket = io(url, opts);
    const timer = setTimeout(
      () => done({ ok: false, stage: 'timeout', error: `no join ack within ${CONNECT_TIMEOUT_MS + ACK_TIMEOUT_MS} ms` }),
      CONNECT_TIMEOUT_MS + ACK_TIMEOUT_MS,
    );
    /** @param {Opened} r */
    function done(r) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!r.ok) {
        // A failed attempt does not come back by itself.
        socket.io.reconnection(false);
        socket.close();
      }
      resolve(r);
    }
    if (onOffer) socket.on('offer', onOffer);
    socket.once('connect_error', (/** @type {Error & { data?: { code?: string } }} */ err) =>
      done({ ok: false, stage: 'connect', error: err?.data?.code ?? err?.message ?? String(err) }),
    );
    socket.once('connect', () => {
      const tc = now();
      noteLocalAddress(socket);
      const payload = kind === 'switchboard' ? { room, display_name: displayName } : { room };
      socket.timeout(ACK_TIMEOUT_MS).emit('join', payload, (/** @type {Error | null} */ err, /** @type {any} */ ack) => {
        const ta = now();
        if (err) return done({ ok: false, stage: 'join', error: 'join ack timeout' });
        if (!ack || ack.ok !== true) return done({ ok: false, stage: 'join', error: ack?.error?.code ?? JSON.stringify(ack).slice(0, 200) });
        done({ ok: true, socket, connectMs: tc - t0, joinMs: ta - tc, totalMs: ta - t0, ack });
      });
    });
    socket.on('disconnect', (reason) => {
      if (!settled) done({ ok: false, stage: 'disconnect', error: reason });
    });
  });
}

/**
 * @param {Extract<Opened, { ok: true }>} r
 * @param {number} index
 * @param {Kind} kind
 * @returns {Entry}
 */
function entryFrom(r, index, kind) {
  return {
    socket: r.socket,
    index,
    participantId: kind === 'switchboard' ? r.ack.participant_id : String(r.socket.id),
    callId: kind === 'switchboard' ? r.ack.room_state?.call_id : 'bare-call',
  };
}

/**
 * Keeps a joined socket coming back as the SDK does (see connect in the file comment) and
 * logs it in entry.reconnect. entry.stop ends it (close).
 * @param {Entry} entry
 * @param {{ kind: Kind, room: string, displayName: string }} o
 */
function followReconnects(entry, { kind, room, displayName }) {
  const s = entry.socket;
  /** @type {ReconnectLog} */
  const log = { disconnects: 0, lastReason: null, connects: 0, lastConnectAt: null, rejoins: 0, lastRejoinAt: null, errors: {} };
  entry.reconnect = log;
  let stopped = false;
  let drained = false;
  /** @type {(() => void) | null} */
  let restoreBackoff = null;
  /** @type {NodeJS.Timeout | undefined} */
  let retry;
  const retryLater = () => {
    clearTimeout(retry);
    retry = setTimeout(
      () => {
        if (!stopped && !s.connected) s.connect();
      },
      SDK_RETRY_DELAY_MS + Math.random() * SDK_RETRY_DELAY_MS * 2,
    );
  };
  entry.stop = () => {
    stopped = true;
    clearTimeout(retry);
  };
  s.on('server-draining', () => {
    drained = true;
    if (!restoreBackoff) {
      const [delay, max] = [s.io.reconnectionDelay(), s.io.reconnectionDelayMax()];
      restoreBackoff = () => s.io.reconnectionDelay(delay).reconnectionDelayMax(max);
      s.io.reconnectionDelay(Math.min(delay, 500)).reconnectionDelayMax(Math.min(max, 2000));
    }
  });
  s.on('disconnect', (reason) => {
    log.disconnects++;
    log.lastReason = reason;
    // A disconnect packet stops socket.io-client for good; the SDK comes back only if the server
    // announced its stop first.
    if (!stopped && reason === 'io server disconnect' && drained) retryLater();
  });
  s.on('connect_error', (/** @type {Error & { data?: { code?: string } }} */ err) => {
    const code = err?.data?.code;
    if (!code) return; // a transport error: socket.io-client retries by itself
    countErrors(log.errors, `connect:${code}`);
    if (!stopped && SDK_RETRY_CODES.has(code)) retryLater();
  });
  s.on('connect', () => {
    drained = false;
    restoreBackoff?.();
    restoreBackoff = null;
    log.connects++;
    log.lastConnectAt = epochNow();
    const payload = kind === 'switchboard' ? { room, display_name: displayName } : { room };
    s.timeout(ACK_TIMEOUT_MS).emit('join', payload, (/** @type {Error | null} */ err, /** @type {any} */ ack) => {
      if (err) return countErrors(log.errors, 'rejoin:ack timeout');
      if (!ack || ack.ok !== true) return countErrors(log.errors, `rejoin:${ack?.error?.code ?? 'bad-ack'}`);
      log.rejoins++;
      log.lastRejoinAt = epochNow();
      if (kind === 'switchboard') {
        entry.participantId = ack.participant_id;
        entry.callId = ack.room_state?.call_id;
      }
    });
  });
}

/**
 * @param {Record<string, number>} map
 * @param {string} code
 */
function countErrors(map, code) {
  map[code] = (map[code] ?? 0) + 1;
}

/** @returns {(msg: any) => void} */
function offerListener() {
  return (msg) => {
    const t = now();
    if (activeRelay) activeRelay.onOffer(msg, t);
  };
}

// ---------------------------------------------------------------- commands

/** @typedef {{ set: string, url: string, kind: Kind, prefix: string, start: number, count: number, roomPrefix: string }} SetArgs */

const commands = {
  /** @param {{ privateKeyPem: string, kid: string, localAddress?: string }} args */
  init({ privateKeyPem, kid, localAddress: la }) {
    const token = tokenMinter(privateKeyPem, kid);
    mint = (sub, name) => token({ sub, name, role: 'participant' }, 4 * 3600);
    localAddress = la || undefined;
    return { pid: process.pid, localAddress: localAddress ?? null };
  },

  /** @param {{ prefix: string, start: number, count: number }} args */
  mint({ prefix, start, count }) {
    const t0 = now();
    const m = tokens.get(prefix) ?? new Map();
    for (let i = start; i < start + count; i++) m.set(i, mintToken(`${prefix}${i}`, `Bench ${prefix}${i}`));
    tokens.set(prefix, m);
    return { minted: count, ms: now() - t0 };
  },

  /** @param {SetArgs & { concurrency: number, listenOffers: boolean, reconnect?: boolean }} args */
  async connect({ set, url, kind, prefix, start, count, roomPrefix, concurrency, listenOffers, reconnect = false }) {
    const entries = sets.get(set)?.entries ?? [];
    sets.set(set, { kind, entries });
    /** @type {Record<string, number>} */
    const errors = {};
    let next = start;
    let joined = 0;
    let failed = 0;
    const t0 = now();
    /** @type {number[]} */
    const joinMs = [];
    /** @type {number[]} */
    const totalMs = [];
    const worker = async () => {
      while (next < start + count) {
        const i = next++;
        const room = `${roomPrefix}${Math.floor(i / 2)}`;
        const displayName = `Bench ${i}`;
        const r = await openAndJoin({
          url,
          kind,
          token: kind === 'switchboard' ? tokenFor(prefix, i) : undefined,
          room,
          displayName,
          onOffer: listenOffers ? offerListener() : undefined,
          reconnect,
        });
        if (r.ok) {
          joined++;
          const entry = entryFrom(r, i, kind);
          if (reconnect) followReconnects(entry, { kind, room, displayName });
          entries.push(entry);
          joinMs.push(r.joinMs);
          totalMs.push(r.totalMs);
        } else {
          failed++;
          countErrors(errors, `${r.stage}:${r.error}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
    tokens.get(prefix)?.clear();
    return { joined, failed, errors, ms: now() - t0, joinMs: round(joinMs), totalMs: round(totalMs), localAddresses: [...localAddrsSeen] };
  },

  /** @param {{ set: string, rate: number, warmupMs: number, measureMs: number, drainMs: number, sdpBytes: number }} args */
  async relay({ set, rate, warmupMs, measureMs, drainMs, sdpBytes }) {
    const s = sets.get(set);
    if (!s) throw new Error(`no connection set ${set}`);
    // Pairs: entries with the same room index (floor(index / 2)), both sides here.
    /** @type {Map<number, Entry[]>} */
    const byRoom = new Map();
    for (const e of s.entries) {
      const k = Math.floor(e.index / 2);
      byRoom.set(k, [...(byRoom.get(k) ?? []), e]);
    }
    const pairs = [...byRoom.values()].filter((p) => p.length === 2 && p.every((e) => e.socket.connected)).slice(0, s.maxPairs ?? Infinity);
    if (pairs.length === 0) throw new Error(`set ${set} has no connected pairs`);
    const totalMs = warmupMs + measureMs;
    const capacity = Math.ceil((rate * totalMs) / 1000) + 1024;
    const sentAt = new Float64Array(capacity);
    const received = new Uint8Array(capacity);
    /** @type {number[]} */
    const latencies = [];
    /** @type {Record<string, number>} */
    const errors = {};
    let sent = 0;
    let measuredSent = 0;
    let measuredReceived = 0;
    let acks = 0;
    let errorAcks = 0;
    let receivedTotal = 0;
    let strays = 0;
    let maxBacklog = 0;
    const filler = sdpFiller(sdpBytes);
    const t0 = now();
    const measureFrom = t0 + warmupMs;
    let measureEnd = 0;

    activeRelay = {
      onOffer(msg, t) {
        const sdp = msg?.sdp;
        const at = typeof sdp === 'string' ? sdp.indexOf('o=- ') : -1;
        const seq = at >= 0 ? parseInt(sdp.slice(at + 4, at + 24), 10) : NaN;
        if (!Number.isInteger(seq) || seq < 0 || seq >= sent || received[seq] || typeof msg.from !== 'string') {
          strays++;
          return;
        }
        received[seq] = 1;
        receivedTotal++;
        if (sentAt[seq] >= measureFrom && sentAt[seq] < measureEnd) {
          measuredReceived++;
          latencies.push(t - sentAt[seq]);
        }
      },
    };
    measureEnd = Infinity;

    /** @param {any} res */
    const onAck = (res) => {
      acks++;
      if (!res || res.ok !== true) {
        errorAcks++;
        countErrors(errors, res?.error?.code ?? 'bad-ack');
      }
    };
    const sendOne = () => {
      const seq = sent++;
      const pair = /** @type {Entry[]} */ (pairs[seq % pairs.length]);
      const dir = Math.floor(seq / pairs.length) % 2;
      const from = /** @type {Entry} */ (pair[dir]);
      const sdp = `v=0\r\no=- ${seq} 2 IN IP4 127.0.0.1\r\n${filler}`;
      const t = now();
      sentAt[seq] = t;
      if (t >= measureFrom) measuredSent++;
      from.socket.emit('offer', { sdp, call_id: from.callId }, onAck);
    };

    await new Promise((resolve) => {
      const tick = () => {
        const el = now() - t0;
        if (el >= totalMs) return resolve(undefined);
        const due = Math.min(capacity - 1, Math.floor((el * rate) / 1000));
        maxBacklog = Math.max(maxBacklog, due - sent);
        while (sent < due) sendOne();
        setTimeout(tick, 1);
      };
      tick();
    });
    measureEnd = now();
    const measuredMs = measureEnd - measureFrom;
    // Drain: wait for outstanding messages and acks (bounded).
    const drainUntil = now() + drainMs;
    while ((receivedTotal < sent || acks < sent) && now() < drainUntil) await new Promise((r) => setTimeout(r, 10));
    activeRelay = null;
    return {
      pairs: pairs.length,
      sent,
      acks,
      errorAcks,
      errors,
      missingAcks: sent - acks,
      receivedTotal,
      lost: sent - receivedTotal,
      strays,
      measuredSent,
      measuredReceived,
      measuredMs,
      maxBacklog,
      latencies: round(latencies),
    };
  },

  /** @param {SetArgs & { rate: number, timeoutMs: number }} args */
  async joinrate({ set, url, kind, prefix, start, count, roomPrefix, rate, timeoutMs }) {
    const entries = sets.get(set)?.entries ?? [];
    sets.set(set, { kind, entries });
    /** @type {Opened[]} */
    const results = [];
    /** @type {Record<string, number>} */
    const errors = {};
    const t0 = now();
    let started = 0;
    let maxLagMs = 0;
    /** @type {Promise<void>[]} */
    const pending = [];
    await new Promise((resolve) => {
      const tick = () => {
        const el = now() - t0;
        const due = Math.min(count, Math.floor((el * rate) / 1000) + 1);
        while (started < due) {
          const i = start + started;
          const scheduled = t0 + (started * 1000) / rate;
          maxLagMs = Math.max(maxLagMs, now() - scheduled);
          started++;
          pending.push(
            openAndJoin({ url, kind, token: tokenFor(prefix, i), room: `${roomPrefix}${Math.floor(i / 2)}`, displayName: `Bench ${i}` }).then((r) => {
              r.startedAt = r.ok ? now() - r.totalMs - t0 : null;
              r.ackAt = r.ok ? now() - t0 : null;
              if (r.ok) entries.push(entryFrom(r, i, kind));
              else countErrors(errors, `${r.stage}:${r.error}`);
              results.push(r);
            }),
          );
        }
        if (started >= count) return resolve(undefined);
        setTimeout(tick, 1);
      };
      tick();
    });
    const startSpanMs = now() - t0;
    await Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, timeoutMs))]);
    const ok = /** @type {(Extract<Opened, { ok: true }> & { ackAt: number, startedAt: number })[]} */ (results.filter((r) => r.ok));
    tokens.get(prefix)?.clear();
    return {
      started,
      joined: ok.length,
      failed: started - ok.length,
      errors,
      startSpanMs,
      firstStartMs: 0,
      lastAckMs: ok.length ? Math.max(...ok.map((r) => r.ackAt)) : null,
      maxStartLagMs: maxLagMs,
      totalMs: round(ok.map((r) => r.totalMs)),
      connectMs: round(ok.map((r) => r.connectMs)),
      joinMs: round(ok.map((r) => r.joinMs)),
      ackAt: round(ok.map((r) => r.ackAt)),
      localAddresses: [...localAddrsSeen],
    };
  },

  /** @param {{ set: string, since: number, times?: boolean }} args */
  reconnects({ set, since, times = false }) {
    const s = sets.get(set);
    if (!s) throw new Error(`no connection set ${set}`);
    let connected = 0;
    let rejoined = 0;
    /** @type {number | null} */
    let lastRejoinAt = null;
    /** @type {Record<string, number>} */
    const reasons = {};
    /** @type {number[]} */
    const rejoinAt = [];
    for (const e of s.entries) {
      if (e.socket.connected) connected++;
      const r = e.reconnect;
      if (!r) continue;
      if (r.lastReason) countErrors(reasons, r.lastReason);
      if (r.lastRejoinAt != null && r.lastRejoinAt >= since) {
        rejoined++;
        lastRejoinAt = Math.max(lastRejoinAt ?? 0, r.lastRejoinAt);
        if (times) rejoinAt.push(r.lastRejoinAt);
      }
    }
    return {
      total: s.entries.length,
      connected,
      rejoined,
      lastRejoinAt,
      errors: addCounts(s.entries.map((e) => e.reconnect?.errors ?? {})),
      disconnectReasons: reasons,
      ...(times ? { rejoinAt } : {}),
    };
  },

  /** @param {{ set: string }} args */
  async close({ set }) {
    const s = sets.get(set);
    if (!s) return { closed: 0 };
    let closed = 0;
    for (const e of s.entries) {
      e.stop?.();
      e.socket.close();
      closed++;
    }
    sets.delete(set);
    await new Promise((r) => setTimeout(r, 50));
    return { closed };
  },

  /** @param {{ set: string, pairs: number }} args */
  limitPairs({ set, pairs }) {
    const s = sets.get(set);
    if (!s) throw new Error(`no connection set ${set}`);
    s.maxPairs = pairs;
    return { maxPairs: pairs };
  },

  stats() {
    let open = 0;
    for (const s of sets.values()) for (const e of s.entries) if (e.socket.connected) open++;
    return { pid: process.pid, rssMb: Math.round(process.memoryUsage().rss / 1048576), open };
  },
};

/** @param {number[]} a */
function round(a) {
  return a.map((x) => Math.round(x * 1000) / 1000);
}

serveIpc(commands);
