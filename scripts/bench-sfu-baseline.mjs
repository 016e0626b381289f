#!/usr/bin/env node
/**
 * Minimal SFU baseline for scripts/bench-sfu.mjs (not meant to be run by hand, not a
 * product): plain Socket.IO + ONE mediasoup worker, one WebRtcServer on 127.0.0.1, one
 * router, WebRtcTransports. No auth, no validation, no database, no rooms registry, no
 * metrics. It implements exactly the subset of the media protocol that
 * server/test/helpers/media-peer.mjs uses (join, get-router-rtp-capabilities,
 * create-transport, connect-transport, produce, consume, resume-consumer,
 * pause-/resume-/close-producer, and cleanup on disconnect with producer-closed /
 * consumer-closed), adapted from a throwaway proof of concept.
 *
 * The media settings mirror Switchboard's (server/media/codecs.ts: same codec list and
 * x-google-start-bitrate; server/media/sfu.ts: initialAvailableOutgoingBitrate 1 Mbps,
 * UDP+TCP preferring UDP, WebRtcServer on one port) so that a difference measured
 * against Switchboard is the control plane, not the media configuration.
 *
 *   node scripts/bench-sfu-baseline.mjs <httpPort|0> <webRtcPort>
 *
 * Prints `LISTENING <port>` on stdout once ready. Exits on SIGTERM/SIGINT, when its
 * parent goes away (stdin closes, if piped) or after --max-lifetime (30 min).
 */
import { createRequire } from 'node:module';
import http from 'node:http';
import path from 'node:path';
import { announceListening, portArgument } from './lib/baseline.mjs';
import { ROOT } from './lib/system.mjs';

const require = createRequire(path.join(ROOT, 'package.json'));
const mediasoup = require('mediasoup');
const { Server } = require('socket.io');

const HTTP_PORT = portArgument('bench-sfu-baseline');
const WEBRTC_PORT = Number(process.argv[3] ?? 0);
const HOST = '127.0.0.1';
const MAX_LIFETIME_MS = 30 * 60_000;

// Same as server/media/codecs.ts (copied: a .mjs script cannot import the TS source).
/** @type {import('mediasoup').types.RouterRtpCodecCapability[]} */
const MEDIA_CODECS = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: { 'x-google-start-bitrate': 1000 } },
  { kind: 'video', mimeType: 'video/VP9', clockRate: 90000, parameters: { 'profile-id': 0, 'x-google-start-bitrate': 1000 } },
  { kind: 'video', mimeType: 'video/VP9', clockRate: 90000, parameters: { 'profile-id': 2, 'x-google-start-bitrate': 1000 } },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1, 'x-google-start-bitrate': 1000 },
  },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '4d0032', 'level-asymmetry-allowed': 1, 'x-google-start-bitrate': 1000 },
  },
];

const worker = await mediasoup.createWorker({ logLevel: 'warn' });
worker.on('died', (err) => {
  console.error(`baseline: mediasoup worker died: ${err?.message ?? err}`);
  process.exit(1);
});
const webRtcServer = await worker.createWebRtcServer({
  listenInfos: [
    { protocol: 'udp', ip: HOST, port: WEBRTC_PORT },
    { protocol: 'tcp', ip: HOST, port: WEBRTC_PORT },
  ],
});
const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });

const httpServer = http.createServer();
const io = new Server(httpServer, { transports: ['websocket'] });
/**
 * @typedef {{ id: string, room: string | null, transports: Map<string, import('mediasoup').types.WebRtcTransport>, consumers: Map<string, import('mediasoup').types.Consumer>, producers: Set<string> }} Peer
 * @typedef {{ producer_id: string, participant_id: string, kind: string, source: string, paused: boolean }} ProducerInfo
 */
/** @type {Map<string, { producer: import('mediasoup').types.Producer, info: ProducerInfo, owner: Peer }>} */
const producers = new Map();
let seq = 0;

io.on('connection', (socket) => {
  /** @type {Peer} */
  const me = { id: `p${++seq}`, room: null, transports: new Map(), consumers: new Map(), producers: new Set() };
  /** The peer's room: every request but join comes after its join. */
  const room = () => /** @type {string} */ (me.room);
  /**
   * @param {string} event
   * @param {(payload: any) => Promise<object>} fn
   */
  const handle = (event, fn) =>
    socket.on(event, async (/** @type {any} */ payload, /** @type {unknown} */ ack) => {
      if (typeof ack !== 'function') return;
      try {
        ack({ ok: true, ...(await fn(payload ?? {})) });
      } catch (err) {
        ack({ error: { code: 'ERR', message: err instanceof Error ? err.message : String(err) } });
      }
    });

  handle('join', async (payload) => {
    me.room = String(payload.room);
    socket.join(me.room);
    socket.to(me.room).emit('peer-joined', { call_id: 'baseline', participant: { participant_id: me.id } });
    return {
      participant_id: me.id,
      resumed: false,
      room_state: {
        call_id: 'baseline',
        room: me.room,
        status: 'active',
        recording: false,
        mode: 'sfu',
        participants: [],
        producers: [...producers.values()].filter((p) => p.owner.room === me.room).map((p) => p.info),
        ice_servers: [],
      },
    };
  });
  handle('get-router-rtp-capabilities', async () => ({ rtp_capabilities: router.rtpCapabilities }));
  handle('create-transport', async ({ direction }) => {
    const t = await router.createWebRtcTransport({
      webRtcServer,
      enableUdp: true,
      enableTcp: true,
      preferUdp: true,
      initialAvailableOutgoingBitrate: 1_000_000,
      appData: { direction },
    });
    me.transports.set(t.id, t);
    return { transport_id: t.id, ice_parameters: t.iceParameters, ice_candidates: t.iceCandidates, dtls_parameters: t.dtlsParameters };
  });
  handle('connect-transport', async ({ transport_id, dtls_parameters }) => {
    const t = me.transports.get(transport_id);
    if (!t) throw new Error('no transport');
    await t.connect({ dtlsParameters: dtls_parameters });
    return {};
  });
  handle('produce', async ({ transport_id, kind, rtp_parameters, source, paused }) => {
    const t = me.transports.get(transport_id);
    if (!t) throw new Error('no transport');
    const producer = await t.produce({ kind, rtpParameters: rtp_parameters, paused: !!paused });
    const info = { producer_id: producer.id, participant_id: me.id, kind, source, paused: !!paused };
    producers.set(producer.id, { producer, info, owner: me });
    me.producers.add(producer.id);
    socket.to(room()).emit('new-producer', info);
    return { producer_id: producer.id, paused: !!paused };
  });
  handle('consume', async ({ transport_id, producer_id, rtp_capabilities }) => {
    const t = me.transports.get(transport_id);
    const p = producers.get(producer_id);
    if (!t || !p) throw new Error('no transport or producer');
    if (!router.canConsume({ producerId: producer_id, rtpCapabilities: rtp_capabilities })) throw new Error('cannot consume');
    const consumer = await t.consume({ producerId: producer_id, rtpCapabilities: rtp_capabilities, paused: true });
    me.consumers.set(consumer.id, consumer);
    consumer.on('producerclose', () => {
      me.consumers.delete(consumer.id);
      socket.emit('consumer-closed', { consumer_id: consumer.id, producer_id });
    });
    consumer.on('transportclose', () => me.consumers.delete(consumer.id));
    return {
      consumer_id: consumer.id,
      producer_id,
      participant_id: p.info.participant_id,
      kind: consumer.kind,
      source: p.info.source,
      rtp_parameters: consumer.rtpParameters,
      paused: true,
      producer_paused: consumer.producerPaused,
    };
  });
  handle('resume-consumer', async ({ consumer_id }) => {
    const c = me.consumers.get(consumer_id);
    if (!c) throw new Error('no consumer');
    await c.resume();
    return {};
  });
  for (const [ev, method, out] of /** @type {const} */ ([
    ['pause-producer', 'pause', 'producer-paused'],
    ['resume-producer', 'resume', 'producer-resumed'],
  ])) {
    handle(ev, async ({ producer_id }) => {
      const p = producers.get(producer_id);
      if (!p || p.owner !== me) throw new Error('not your producer');
      await p.producer[method]();
      p.info.paused = method === 'pause';
      socket.to(room()).emit(out, { producer_id, participant_id: me.id });
      return {};
    });
  }
  /** @param {string} id */
  const closeProducer = (id) => {
    const p = producers.get(id);
    if (!p) return false;
    producers.delete(id);
    me.producers.delete(id);
    p.producer.close();
    if (me.room) socket.to(me.room).emit('producer-closed', { producer_id: id, participant_id: me.id });
    return true;
  };
  handle('close-producer', async ({ producer_id }) => {
    const p = producers.get(producer_id);
    if (!p || p.owner !== me) throw new Error('not your producer');
    closeProducer(producer_id);
    return {};
  });
  socket.on('disconnect', () => {
    for (const id of [...me.producers]) closeProducer(id);
    for (const t of me.transports.values()) t.close();
    me.transports.clear();
    if (me.room) socket.to(me.room).emit('peer-left', { call_id: 'baseline', participant_id: me.id, reason: 'left' });
  });
});

await new Promise((resolve, reject) => {
  httpServer.once('error', reject);
  httpServer.listen(HTTP_PORT, HOST, () => resolve(undefined));
});
announceListening(httpServer.address(), ` worker ${worker.pid}`);

let stopping = false;
function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  io.close();
  httpServer.close();
  worker.close();
  setTimeout(() => process.exit(code), 100).unref();
}
process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));
process.stdin.on('end', () => stop(0));
process.stdin.on('error', () => stop(0));
process.stdin.resume();
setTimeout(() => {
  console.error('baseline: max lifetime reached, exiting');
  stop(3);
}, MAX_LIFETIME_MS).unref();
