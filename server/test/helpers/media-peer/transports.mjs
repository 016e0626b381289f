// The peer's two mediasoup-client transports and its own producers: created at start,
// and again after a media-reset (a new transport generation).
import { closeConsumerEntry, consumePending } from './consume.mjs';
import { report } from './ipc.mjs';
import { request } from './signaling.mjs';
import { S } from './state.mjs';
import { startAudio, startVideo } from './synthetic.mjs';

async function createTransport(direction, gen) {
  const info = await request('create-transport', { direction });
  const opts = {
    id: info.transport_id,
    iceParameters: info.ice_parameters,
    iceCandidates: info.ice_candidates,
    dtlsParameters: info.dtls_parameters,
    iceServers: [],
  };
  const t = direction === 'send' ? S.device.createSendTransport(opts) : S.device.createRecvTransport(opts);
  t.on('connect', ({ dtlsParameters }, callback, errback) => {
    request('connect-transport', { transport_id: t.id, dtls_parameters: dtlsParameters })
      .then(() => callback())
      .catch((err) => errback(err));
  });
  if (direction === 'send') {
    t.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
      const payload = { transport_id: t.id, kind, rtp_parameters: rtpParameters, source: appData.source };
      if (appData.paused) payload.paused = true;
      request('produce', payload)
        .then((res) => callback({ id: res.producer_id }))
        .catch((err) => errback(err));
    });
  }
  t.on('connectionstatechange', (state) => {
    if (gen === S.transportGen) S.transportState[direction] = state;
  });
  return t;
}

async function produce(source, publish) {
  const track = source === 'camera' ? startVideo(publish) : startAudio();
  const paused = !!publish.paused;
  const options = { track, stopTracks: false, appData: { source, paused } };
  if (source === 'camera' && publish.simulcast) {
    options.encodings = [
      { rid: 'r0', scaleResolutionDownBy: 2, maxBitrate: 150_000 },
      { rid: 'r1', scaleResolutionDownBy: 1, maxBitrate: 500_000 },
    ];
  }
  const producer = await S.send.produce(options);
  if (paused) producer.pause();
  const entry = { producer, kind: producer.kind, source, producedAt: Date.now(), paused };
  S.producers.set(source, entry);
  return entry;
}

/** Closes both transports (and with them every consumer) and starts a new transport generation. */
export function closeTransports() {
  S.transportGen += 1;
  for (const c of S.consumers.values()) closeConsumerEntry(c, false);
  // Close only the transports: closing producers/consumers first queues work that the
  // transport close then aborts (AwaitQueueStoppedError).
  for (const t of [S.send, S.recv]) {
    try {
      if (t && !t.closed) t.close();
    } catch (err) {
      report('transport.close', err);
    }
  }
  S.send = null;
  S.recv = null;
  S.transportState = { send: 'none', recv: 'none' };
  S.consumedProducers.clear();
  for (const p of S.producers.values()) p.closed = true;
}

/** Creates both transports, produces what `opts.publish` asks for and consumes what is there; after a reset, from scratch. */
export async function setupMedia(isReset) {
  if (isReset) {
    closeTransports();
    S.wanted.clear(); // old producers died with the old router; others announce new ones
    S.producers.clear();
  }
  const gen = S.transportGen;
  const publish = S.opts.publish ?? {};
  const send = await createTransport('send', gen);
  const recv = await createTransport('recv', gen);
  if (gen !== S.transportGen) {
    send.close();
    recv.close();
    throw new Error('transports replaced during setup');
  }
  S.send = send;
  S.recv = recv;
  if (publish.audio) await produce('mic', publish);
  if (publish.video) await produce('camera', publish);
  consumePending();
}
