// A real WebRTC peer for tests: mediasoup-client on @roamhq/wrtc (libwebrtc in Node),
// speaking Switchboard's Socket.IO signaling. Runs in its OWN child process (a process
// that created an RTCVideoSource segfaults at exit) and is driven over IPC by
// mediaPeers.ts. Not a module to import.
//
// Parent → child: { id, cmd, args }. Child → parent: { id, ok: true, result } |
// { id, ok: false, error: { message, stack } }, plus unsolicited
// { type: 'event', event, payload } (every server event), { type: 'error', error }
// (uncaught errors, failed auto-consume, …) and { type: 'ready' } once listening.
//
// Commands:
//   start     { url, token, room, displayName?, mode?, publish?: { audio, video, width?, height?, fps?,
//               simulcast?, paused? }, consumeAll?, autoRecover?, ackTimeoutMs?, maxLifetimeMs? }
//             → { participant_id, call_id, room_state, producers: { mic?, camera? } }
//   stats     { transport?: boolean } → see snapshot() below
//   emit      { event, payload?, timeoutMs? } → the raw ack (error responses included)
//   waitEvent { event, timeoutMs? } → the oldest not-yet-taken payload of that server event
//   producer  { source: 'mic'|'camera', action: 'pause'|'resume'|'close' } → local + server
//   restartIce { direction: 'send'|'recv' } → restarts ICE through `restart-ice`
//   stop      {} → closes everything, replies, then process.exit(0)
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const wrtc = require('@roamhq/wrtc');
const { Device } = require('mediasoup-client');
const { io } = require('socket.io-client');

const { RTCVideoSource, RTCAudioSource, RTCVideoSink, RTCAudioSink } = wrtc.nonstandard;

// mediasoup-client looks these up as globals.
for (const name of [
  'RTCPeerConnection',
  'RTCSessionDescription',
  'RTCIceCandidate',
  'MediaStream',
  'MediaStreamTrack',
  'RTCRtpSender',
  'RTCRtpReceiver',
  'RTCRtpTransceiver',
  'RTCDataChannel',
  'RTCDtlsTransport',
  'RTCIceTransport',
  'RTCSctpTransport',
  'RTCPeerConnectionIceEvent',
  'RTCDataChannelEvent',
]) {
  if (wrtc[name] && globalThis[name] === undefined) globalThis[name] = wrtc[name];
}

// ---- IPC plumbing ------------------------------------------------------------------
function send(msg) {
  try {
    if (process.connected) process.send(msg);
  } catch {
    /* parent gone */
  }
}
function errInfo(err) {
  if (err instanceof Error) return { message: err.message, name: err.name, stack: err.stack };
  return { message: typeof err === 'string' ? err : JSON.stringify(err) };
}
let errorCount = 0;
function report(where, err) {
  errorCount += 1;
  send({ type: 'error', where, error: errInfo(err) });
}
process.on('uncaughtException', (err) => report('uncaughtException', err));
process.on('unhandledRejection', (err) => report('unhandledRejection', err));

let exiting = false;
function hardExit(code) {
  if (exiting) return;
  exiting = true;
  try {
    cleanup();
  } catch {
    /* exiting anyway */
  }
  // Give IPC a moment to flush, then leave (wrtc may segfault here: the parent tolerates it).
  setTimeout(() => process.exit(code), 20).unref?.();
}
process.on('disconnect', () => hardExit(0)); // parent died or let go: never linger
let lifetimeTimer = setTimeout(() => {
  report('watchdog', new Error('maxLifetimeMs reached, exiting'));
  hardExit(3);
}, 10 * 60_000);

// ---- state -------------------------------------------------------------------------
const S = {
  opts: null,
  socket: null,
  device: null,
  participantId: null,
  callId: null,
  send: null, // mediasoup-client send transport
  recv: null,
  transportState: { send: 'none', recv: 'none' },
  transportGen: 0,
  producers: new Map(), // source → { producer, kind, source, producedAt, paused }
  tracks: new Map(), // source → MediaStreamTrack (kept across media resets)
  consumers: new Map(), // consumer_id → entry (see consumeOne)
  wanted: new Map(), // producer_id → ProducerInfo, known remote producers
  consumedProducers: new Set(), // producer ids consumed or being consumed in this transport generation
  remote: {}, // participant_id → { videoFrames, audioData }
  byProducer: {}, // producer_id → { videoFrames, audioData, firstFrameAt }
  queues: new Map(), // event → payload[]
  waiters: new Map(), // event → [{ resolve, timer }]
  timers: [],
  videoSource: null,
  audioSource: null,
  recovering: null,
};

function pushEvent(event, payload) {
  send({ type: 'event', event, payload });
  const w = S.waiters.get(event);
  if (w && w.length) {
    const { resolve, timer } = w.shift();
    clearTimeout(timer);
    resolve(payload);
    return;
  }
  const q = S.queues.get(event) ?? [];
  q.push(payload);
  if (q.length > 500) q.shift();
  S.queues.set(event, q);
}

function waitEvent(event, timeoutMs = 5000) {
  const q = S.queues.get(event);
  if (q && q.length) return Promise.resolve(q.shift());
  return new Promise((resolve, reject) => {
    const list = S.waiters.get(event) ?? [];
    const w = { resolve, timer: null };
    w.timer = setTimeout(() => {
      const i = list.indexOf(w);
      if (i >= 0) list.splice(i, 1);
      reject(new Error(`no '${event}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    list.push(w);
    S.waiters.set(event, list);
  });
}

function rawEmit(event, payload, timeoutMs) {
  const ms = timeoutMs ?? S.opts?.ackTimeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    if (!S.socket) return reject(new Error('not connected'));
    const cb = (err, res) => (err ? reject(new Error(`no ack for '${event}' within ${ms} ms`)) : resolve(res));
    if (payload === undefined) S.socket.timeout(ms).emit(event, cb);
    else S.socket.timeout(ms).emit(event, payload, cb);
  });
}

async function request(event, payload) {
  const res = await rawEmit(event, payload);
  if (!res || res.ok !== true) {
    const e = new Error(`${event} failed: ${JSON.stringify(res?.error ?? res)}`);
    e.code = res?.error?.code;
    throw e;
  }
  return res;
}

// ---- synthetic media -----------------------------------------------------------------
function startVideo({ width = 320, height = 240, fps = 15 } = {}) {
  if (S.videoSource) return S.tracks.get('camera');
  const source = new RTCVideoSource();
  S.videoSource = source;
  const ySize = width * height;
  const data = new Uint8ClampedArray(ySize * 1.5);
  data.fill(128, ySize); // neutral chroma
  let n = 0;
  const tick = () => {
    // A gradient whose offset moves every frame, so the encoder has something to send.
    const shift = (n++ * 4) & 255;
    for (let y = 0; y < height; y += 1) {
      const row = y * width;
      const v = (y + shift) & 255;
      data.fill(v, row, row + width);
    }
    try {
      source.onFrame({ width, height, data });
    } catch (err) {
      report('video.onFrame', err);
    }
  };
  S.timers.push(setInterval(tick, Math.round(1000 / fps)));
  tick();
  const track = source.createTrack();
  S.tracks.set('camera', track);
  return track;
}

function startAudio() {
  if (S.audioSource) return S.tracks.get('mic');
  const source = new RTCAudioSource();
  S.audioSource = source;
  const sampleRate = 48000;
  const frames = 480; // 10 ms
  let phase = 0;
  let sent = 0;
  const t0 = performance.now();
  const chunk = () => {
    const samples = new Int16Array(frames);
    for (let i = 0; i < frames; i += 1) {
      samples[i] = Math.round(Math.sin(phase) * 8000);
      phase += (2 * Math.PI * 440) / sampleRate;
    }
    if (phase > 2 * Math.PI * 1000) phase -= 2 * Math.PI * 1000;
    source.onData({ samples, sampleRate, bitsPerSample: 16, channelCount: 1, numberOfFrames: frames });
  };
  // One timer every 20 ms, catching up to wall time (Node's timers drift), bounded bursts.
  S.timers.push(
    setInterval(() => {
      const due = Math.floor((performance.now() - t0) / 10);
      let burst = Math.min(due - sent, 10);
      if (due - sent > 10) sent = due - 10; // fell far behind (paused process): drop, don't flood
      try {
        while (burst-- > 0) {
          chunk();
          sent += 1;
        }
      } catch (err) {
        report('audio.onData', err);
      }
    }, 20),
  );
  const track = source.createTrack();
  S.tracks.set('mic', track);
  return track;
}

// ---- mediasoup-client ------------------------------------------------------------------
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

function counters(map, key) {
  if (!map[key]) map[key] = { videoFrames: 0, audioData: 0, audioAudible: 0, firstFrameAt: null };
  return map[key];
}

async function consumeOne(info) {
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

function closeConsumerEntry(entry, closeConsumer) {
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

function consumePending() {
  if (!S.opts?.consumeAll || !S.recv) return;
  for (const info of S.wanted.values()) {
    if (!S.consumedProducers.has(info.producer_id)) {
      consumeOne(info).catch((err) => report(`consume ${info.producer_id}`, err));
    }
  }
}

function onServerEvent(event, payload) {
  switch (event) {
    case 'new-producer':
      if (payload.participant_id !== S.participantId) {
        S.wanted.set(payload.producer_id, payload);
        consumePending();
      }
      break;
    case 'producer-closed':
      S.wanted.delete(payload.producer_id);
      for (const c of S.consumers.values()) if (c.producer_id === payload.producer_id) closeConsumerEntry(c, true);
      break;
    case 'consumer-closed': {
      const c = S.consumers.get(payload.consumer_id);
      if (c) closeConsumerEntry(c, true);
      break;
    }
    case 'media-reset':
      if (S.opts?.autoRecover !== false) {
        S.recovering = setupMedia(true)
          .then(() => pushEvent('peer:recovered', { reason: payload?.reason ?? null }))
          .catch((err) => report('media-reset recovery', err));
      }
      break;
    default:
      break;
  }
}

function closeTransports() {
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

async function setupMedia(isReset) {
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

async function start(args) {
  if (S.socket) throw new Error('already started');
  S.opts = { consumeAll: true, autoRecover: true, ...args };
  if (args.maxLifetimeMs) {
    clearTimeout(lifetimeTimer);
    lifetimeTimer = setTimeout(() => {
      report('watchdog', new Error('maxLifetimeMs reached, exiting'));
      hardExit(3);
    }, args.maxLifetimeMs);
  }
  const socket = io(args.url, {
    auth: { token: args.token },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  S.socket = socket;
  socket.onAny((event, payload) => {
    pushEvent(event, payload);
    try {
      onServerEvent(event, payload);
    } catch (err) {
      report(`handling ${event}`, err);
    }
  });
  socket.on('disconnect', (reason) => pushEvent('disconnect', reason));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('socket connect timeout')), S.opts.ackTimeoutMs ?? 10_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      pushEvent('connect_error', { message: err.message, data: err.data ?? null });
      reject(new Error(`connect_error: ${err.message}`));
    });
  });
  const joinPayload = { room: args.room, mode: args.mode ?? 'sfu' };
  if (args.displayName) joinPayload.display_name = args.displayName;
  const joined = await request('join', joinPayload);
  S.participantId = joined.participant_id;
  S.callId = joined.room_state?.call_id ?? null;
  for (const p of joined.room_state?.producers ?? []) {
    if (p.participant_id !== S.participantId) S.wanted.set(p.producer_id, p);
  }
  const caps = await request('get-router-rtp-capabilities', {});
  S.device = new Device({ handlerName: 'Chrome111' });
  await S.device.load({ routerRtpCapabilities: caps.rtp_capabilities });
  await setupMedia(false);
  const producers = {};
  for (const [source, p] of S.producers) producers[source] = p.producer.id;
  return {
    participant_id: S.participantId,
    call_id: S.callId,
    room_state: joined.room_state,
    producers,
    startedAt: Date.now(),
  };
}

async function transportStats(t, bySsrc) {
  const out = { inbound: {}, outbound: {}, candidatePair: null };
  if (!t || t.closed) return out;
  const report = await t.getStats();
  for (const s of report.values()) {
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

async function snapshot(args = {}) {
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
    errors: errorCount,
    rss: process.memoryUsage.rss(),
    cpu: process.cpuUsage(),
  };
  if (args.transport) {
    result.sendStats = sendStats;
    result.recvStats = recvStats;
  }
  return result;
}

async function producerAction({ source, action }) {
  const p = S.producers.get(source);
  if (!p) throw new Error(`no producer for source ${source}`);
  const id = p.producer.id;
  if (action === 'pause') {
    p.producer.pause();
    await request('pause-producer', { producer_id: id });
  } else if (action === 'resume') {
    p.producer.resume();
    await request('resume-producer', { producer_id: id });
  } else if (action === 'close') {
    await request('close-producer', { producer_id: id });
    p.producer.close();
    S.producers.delete(source);
  } else throw new Error(`unknown action ${action}`);
  return { producer_id: id };
}

async function restartIce({ direction }) {
  const t = direction === 'send' ? S.send : S.recv;
  if (!t) throw new Error(`no ${direction} transport`);
  const res = await request('restart-ice', { transport_id: t.id });
  await t.restartIce({ iceParameters: res.ice_parameters });
  return { ice_parameters: res.ice_parameters };
}

function cleanup() {
  for (const t of S.timers) clearInterval(t);
  S.timers = [];
  closeTransports();
  for (const track of S.tracks.values()) {
    try {
      track.stop();
    } catch {
      /* ignore */
    }
  }
  S.tracks.clear();
  try {
    S.socket?.disconnect();
  } catch {
    /* ignore */
  }
}

const commands = {
  start,
  stats: snapshot,
  emit: ({ event, payload, timeoutMs }) => rawEmit(event, payload, timeoutMs),
  waitEvent: ({ event, timeoutMs }) => waitEvent(event, timeoutMs),
  producer: producerAction,
  restartIce,
  async stop() {
    if (!exiting) {
      exiting = true;
      cleanup();
    }
    return { stopped: true };
  },
};

process.on('message', async (msg) => {
  if (!msg || typeof msg !== 'object' || msg.id === undefined) return;
  const fn = commands[msg.cmd];
  if (!fn) return send({ id: msg.id, ok: false, error: { message: `unknown command ${msg.cmd}` } });
  try {
    const result = await fn(msg.args ?? {});
    if (msg.cmd === 'stop') {
      if (process.connected) process.send({ id: msg.id, ok: true, result }, () => process.exit(0));
      else process.exit(0);
      setTimeout(() => process.exit(0), 500).unref();
      return;
    }
    send({ id: msg.id, ok: true, result: result === undefined ? null : result });
  } catch (err) {
    send({ id: msg.id, ok: false, error: errInfo(err) });
  }
});

send({ type: 'ready', pid: process.pid });
