// The client SDK (dist/client/sdk, built by `npm run build`) in Node: a real
// WebRTC peer (@roamhq/wrtc) driven over IPC by sdk.test.ts. Its own process,
// like media-peer.mjs (wrtc may segfault at exit). Parent → child:
// { id, cmd, args }; child → parent: { id, ok, result | error }, and
// { type: 'event', event, payload } for every SDK event.
//
// Commands:
//   connect { url, token }              SwitchboardClient.connect
//   call    { method, args }            client[method](...args) (join, mute, hold, sendDtmf, …)
//   publish { audio, video }            synthetic tracks → publishTrack(track, 'mic'|'camera')
//   state   {}                          { participantId, callId, participants, remote: { producerId: { participantId, source, frames } } }
//   drop    {}                          closes the socket's transport (a network drop; socket.io-client reconnects)
//   stop    {}
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { send } from './media-peer/ipc.mjs';
import { RTCAudioSource, RTCVideoSink, RTCVideoSource } from './media-peer/wrtc.mjs';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const { SwitchboardClient } = require(path.resolve(here, '../../../dist/client/sdk/index.js'));

process.on('disconnect', () => process.exit(0));
process.on('uncaughtException', (err) => send({ type: 'error', error: String(err?.stack ?? err) }));
process.on('unhandledRejection', (err) => send({ type: 'error', error: String(err?.stack ?? err) }));
setTimeout(() => process.exit(3), 5 * 60_000).unref();

let client = null;
const timers = [];
const remote = {};
const sinks = [];

function videoTrack() {
  const source = new RTCVideoSource();
  const width = 320;
  const height = 240;
  const data = new Uint8ClampedArray(width * height * 1.5).fill(128);
  let n = 0;
  timers.push(
    setInterval(() => {
      data.fill((n++ * 4) & 255, 0, width * height);
      source.onFrame({ width, height, data });
    }, 66),
  );
  return source.createTrack();
}

function audioTrack() {
  const source = new RTCAudioSource();
  let phase = 0;
  timers.push(
    setInterval(() => {
      for (let k = 0; k < 2; k++) {
        const samples = new Int16Array(480);
        for (let i = 0; i < 480; i++) samples[i] = Math.round(Math.sin((phase += (2 * Math.PI * 440) / 48000)) * 8000);
        source.onData({ samples, sampleRate: 48000, bitsPerSample: 16, channelCount: 1, numberOfFrames: 480 });
      }
    }, 20),
  );
  return source.createTrack();
}

const EVENTS = [
  'connection',
  'joined',
  'participant-joined',
  'participant-left',
  'participant-updated',
  'track',
  'track-ended',
  'track-paused',
  'active-speaker',
  'call-state',
  'recording-started',
  'recording-finished',
  'dtmf',
  'removed',
  'media-reset',
  'error',
];

const commands = {
  async connect({ url, token }) {
    client = await SwitchboardClient.connect({ url, token, handlerName: 'Chrome111', socket: { reconnectionDelay: 200, reconnectionDelayMax: 500 } });
    for (const event of EVENTS) {
      client.on(event, (payload) => {
        if (event === 'track') {
          const entry = { participantId: payload.participantId, source: payload.source, frames: 0 };
          remote[payload.producerId] = entry;
          if (payload.track.kind === 'video') {
            const sink = new RTCVideoSink(payload.track);
            sink.onframe = () => (entry.frames += 1);
            sinks.push(sink);
          }
          payload = { participantId: payload.participantId, source: payload.source, producerId: payload.producerId, paused: payload.paused };
        } else if (event === 'error') payload = { code: payload.code, message: payload.message };
        else if (event === 'joined') payload = { resumed: payload.resumed, participants: payload.state.participants.length };
        send({ type: 'event', event, payload });
      });
    }
    return { connected: true };
  },
  async call({ method, args = [] }) {
    try {
      const r = await client[method](...args);
      return r === undefined ? null : JSON.parse(JSON.stringify(r));
    } catch (err) {
      return { error: { code: err.code ?? 'CLIENT_ERROR', message: err.message } };
    }
  },
  async publish({ audio, video }) {
    if (audio) await client.publishTrack(audioTrack(), 'mic');
    if (video) await client.publishTrack(videoTrack(), 'camera');
    return { published: true };
  },
  async state() {
    return {
      participantId: client.participantId,
      callId: client.callId,
      recording: client.recording,
      participants: [...client.participants.values()],
      remote,
    };
  },
  async drop() {
    client.socket.io.engine.close();
    return null;
  },
  async stop() {
    for (const t of timers) clearInterval(t);
    for (const s of sinks) s.stop();
    client?.close();
    setTimeout(() => process.exit(0), 20);
    return null;
  },
};

process.on('message', async (msg) => {
  try {
    send({ id: msg.id, ok: true, result: await commands[msg.cmd](msg.args ?? {}) });
  } catch (err) {
    send({ id: msg.id, ok: false, error: { message: err.message, code: err.code } });
  }
});
send({ type: 'ready' });
