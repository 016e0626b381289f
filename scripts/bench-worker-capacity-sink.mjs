#!/usr/bin/env node
/**
 * UDP sink for scripts/bench-worker-capacity.mjs (forked by it; not meant to be run alone).
 *
 * Binds N UDP sockets on 127.0.0.1 (ephemeral ports) and counts what mediasoup's
 * consumer PlainTransports (rtcpMux: true) send to them: RTP packets/bytes in total and
 * per SSRC (each consumer has its own SSRC), and RTCP packets separately.
 *
 * Requests over IPC (scripts/lib/ipc.mjs):
 *   start    { sockets: N }  -> [port, ...]
 *   snapshot {}              -> { t, rtpPackets, rtpBytes, rtcpPackets, rtcpBytes, perSsrc: [[ssrc, packets], ...] }
 * SIGTERM or the IPC channel closing: it closes its sockets and exits. A hard timeout
 * (--max-seconds, passed as argv[2]) ends the process regardless.
 */
import dgram from 'node:dgram';
import { serveIpc } from './lib/ipc.mjs';

const maxSeconds = Number(process.argv[2] || 900);
/** @type {dgram.Socket[]} */
const sockets = [];
let rtpPackets = 0;
let rtpBytes = 0;
let rtcpPackets = 0;
let rtcpBytes = 0;
/** @type {Map<number, number>} */
const perSsrc = new Map();

/** @param {Buffer} buf */
function onMessage(buf) {
  // RTCP (rtcpMux): second byte is the packet type 200..206 (SR, RR, SDES, BYE, APP, RTPFB, PSFB).
  const pt = buf.length > 1 ? buf[1] : 0;
  if (pt >= 200 && pt <= 206) {
    rtcpPackets++;
    rtcpBytes += buf.length;
    return;
  }
  rtpPackets++;
  rtpBytes += buf.length;
  if (buf.length >= 12) {
    const ssrc = buf.readUInt32BE(8);
    perSsrc.set(ssrc, (perSsrc.get(ssrc) || 0) + 1);
  }
}

/** @returns {Promise<number>} */
function bindOne() {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    s.on('message', onMessage);
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      s.off('error', reject);
      s.on('error', () => {});
      sockets.push(s);
      resolve(s.address().port);
    });
  });
}

function shutdown() {
  for (const s of sockets) {
    try {
      s.close();
    } catch {
      // already closed
    }
  }
  process.exit(0);
}

serveIpc({
  /** @param {{ sockets: number }} args */
  async start({ sockets: n }) {
    const ports = [];
    for (let i = 0; i < n; i++) ports.push(await bindOne());
    return ports;
  },
  snapshot: () => ({ t: performance.now(), rtpPackets, rtpBytes, rtcpPackets, rtcpBytes, perSsrc: [...perSsrc] }),
});
process.on('disconnect', shutdown);
process.on('SIGINT', () => {}); // the parent decides when we stop
process.on('SIGTERM', shutdown);
setTimeout(shutdown, maxSeconds * 1000).unref();
