// Consuming other participants' producers on the recv transport, and counting what
// arrives: decoded video frames, audio callbacks, and those carrying the senders' tone.
import { report } from './ipc.mjs';
import { request } from './signaling.mjs';
import { S, counters } from './state.mjs';
import { RTCAudioSink, RTCVideoSink } from './wrtc.mjs';

/** Consumes one remote producer (once per transport generation) and resumes it. */
export async function consumeOne(info) {
  const pid = info.producer_id;
  if (!S.recv || S.consumedProducers.has(pid) || info.participant_id === S.participantId) return;
  S.consumedProducers.add(pid);
  const gen = S.transportGen;
  const recv = S.recv;
  let res;
  try {
    res = await request('consume', {
      transport_id: recv.id,
      producer_id: pid,
      rtp_capabilities: S.device.rtpCapabilities,
    });
  } catch (err) {
    S.consumedProducers.delete(pid);
    // The producer may have closed in the meantime: only report unexpected failures.
    if (S.wanted.has(pid)) report(`consume ${pid}`, err);
    return;
  }
  if (gen !== S.transportGen || recv.closed) return;
  const consumer = await recv.consume({
    id: res.consumer_id,
    producerId: res.producer_id,
    kind: res.kind,
    rtpParameters: res.rtp_parameters,
  });
  const entry = {
    consumer,
    consumer_id: res.consumer_id,
    producer_id: res.producer_id,
    participant_id: res.participant_id,
    kind: res.kind,
    source: res.source,
    producer_paused: res.producer_paused,
    videoFrames: 0,
    audioData: 0,
    audioAudible: 0,
    ssrc: res.rtp_parameters?.encodings?.[0]?.ssrc ?? null,
    createdAt: Date.now(),
    firstFrameAt: null,
    sink: null,
    closed: false,
  };
  S.consumers.set(entry.consumer_id, entry);
  const perPeer = counters(S.remote, entry.participant_id);
  const perProducer = counters(S.byProducer, entry.producer_id);
  if (entry.kind === 'video') {
    entry.sink = new RTCVideoSink(consumer.track);
    entry.sink.onframe = () => {
      if (entry.firstFrameAt === null) entry.firstFrameAt = Date.now();
      if (perProducer.firstFrameAt === null) perProducer.firstFrameAt = entry.firstFrameAt;
      entry.videoFrames += 1;
      perPeer.videoFrames += 1;
      perProducer.videoFrames += 1;
    };
  } else {
    entry.sink = new RTCAudioSink(consumer.track);
    // libwebrtc keeps delivering (concealment/silence) audio every 10 ms even when no
    // packet arrives, so audioData never stops: audioAudible counts only callbacks
    // carrying real signal (our senders play a 440 Hz tone at about -12 dBFS).
    entry.sink.ondata = ({ samples }) => {
      if (entry.firstFrameAt === null) entry.firstFrameAt = Date.now();
      if (perProducer.firstFrameAt === null) perProducer.firstFrameAt = entry.firstFrameAt;
      entry.audioData += 1;
      perPeer.audioData += 1;
      perProducer.audioData += 1;
      let peak = 0;
      for (let i = 0; i < samples.length; i += 8) {
        const v = samples[i] < 0 ? -samples[i] : samples[i];
        if (v > peak) peak = v;
      }
      if (peak > 1000) {
        entry.audioAudible += 1;
        perPeer.audioAudible += 1;
        perProducer.audioAudible += 1;
      }
    };
  }
  consumer.on('transportclose', () => closeConsumerEntry(entry, false));
  consumer.on('trackended', () => closeConsumerEntry(entry, false));
  await request('resume-consumer', { consumer_id: entry.consumer_id });
}

/** Stops counting for a consumer, and closes it too unless its transport already went. */
export function closeConsumerEntry(entry, closeConsumer) {
  if (entry.closed) return;
  entry.closed = true;
  try {
    entry.sink?.stop();
  } catch {
    /* ignore */
  }
  if (closeConsumer) {
    try {
      entry.consumer.close();
    } catch (err) {
      report('consumer.close', err);
    }
  }
}

/** With consumeAll, consumes every known remote producer not consumed yet. */
export function consumePending() {
  if (!S.opts?.consumeAll || !S.recv) return;
  for (const info of S.wanted.values()) {
    if (!S.consumedProducers.has(info.producer_id)) {
      consumeOne(info).catch((err) => report(`consume ${info.producer_id}`, err));
    }
  }
}
