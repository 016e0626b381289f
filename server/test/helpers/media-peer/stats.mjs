// The peer's stats command: its producers, consumers and counters and, on request,
// libwebrtc's RTP counters of both transports (wrtc has no per-sender getStats).
import { errorsReported } from './ipc.mjs';
import { S, counters } from './state.mjs';

async function transportStats(t, bySsrc) {
  const out = { inbound: {}, outbound: {}, candidatePair: null };
  if (!t || t.closed) return out;
  const rtcStats = await t.getStats();
  for (const s of rtcStats.values()) {
    if (s.type === 'outbound-rtp' || s.type === 'inbound-rtp') {
      const bucket = s.type === 'outbound-rtp' ? out.outbound : out.inbound;
      const kind = s.kind ?? s.mediaType;
      const b = (bucket[kind] ??= { packets: 0, bytes: 0, frames: 0 });
      b.packets += s.packetsSent ?? s.packetsReceived ?? 0;
      b.bytes += s.bytesSent ?? s.bytesReceived ?? 0;
      b.frames += s.framesEncoded ?? s.framesDecoded ?? 0;
      const c = s.type === 'inbound-rtp' ? bySsrc?.get(s.ssrc) : undefined;
      if (c) {
        const pc = counters(S.byProducer, c.producer_id);
        pc.packets = s.packetsReceived ?? 0;
        pc.bytes = s.bytesReceived ?? 0;
      }
    } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
      out.candidatePair = { bytesSent: s.bytesSent, bytesReceived: s.bytesReceived };
    }
  }
  return out;
}

/** Everything the parent's PeerStats describes (server/test/helpers/mediaPeers.ts). */
export async function snapshot(args = {}) {
  let sendStats;
  let recvStats;
  if (args.transport) {
    // Before cloning byProducer: fills its packets/bytes from the recv transport.
    const bySsrc = new Map();
    for (const c of S.consumers.values()) if (!c.closed && c.ssrc != null) bySsrc.set(c.ssrc, c);
    sendStats = await transportStats(S.send);
    recvStats = await transportStats(S.recv, bySsrc);
  }
  const producers = [];
  for (const p of S.producers.values()) {
    producers.push({
      producer_id: p.producer.id,
      kind: p.kind,
      source: p.source,
      paused: p.producer.paused,
      closed: p.producer.closed,
      producedAt: p.producedAt,
    });
  }
  const consumers = [];
  for (const c of S.consumers.values()) {
    consumers.push({
      consumer_id: c.consumer_id,
      producer_id: c.producer_id,
      participant_id: c.participant_id,
      kind: c.kind,
      source: c.source,
      closed: c.closed,
      videoFrames: c.videoFrames,
      audioData: c.audioData,
      audioAudible: c.audioAudible,
      createdAt: c.createdAt,
      firstFrameAt: c.firstFrameAt,
    });
  }
  const result = {
    now: Date.now(),
    participant_id: S.participantId,
    call_id: S.callId,
    connected: !!S.socket?.connected,
    transports: { ...S.transportState, sendId: S.send?.id ?? null, recvId: S.recv?.id ?? null },
    producers,
    consumers,
    remote: structuredClone(S.remote),
    byProducer: structuredClone(S.byProducer),
    errors: errorsReported(),
    rss: process.memoryUsage.rss(),
    cpu: process.cpuUsage(),
  };
  if (args.transport) {
    result.sendStats = sendStats;
    result.recvStats = recvStats;
  }
  return result;
}
