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
//   stats     { transport?: boolean } → see snapshot() in media-peer/stats.mjs
//   emit      { event, payload?, timeoutMs? } → the raw ack (error responses included)
//   waitEvent { event, timeoutMs? } → the oldest not-yet-taken payload of that server event
//   producer  { source: 'mic'|'camera', action: 'pause'|'resume'|'close' } → local + server
//   restartIce { direction: 'send'|'recv' } → restarts ICE through `restart-ice`
//   stop      {} → closes everything, replies, then process.exit(0)
//
// The peer's parts are in media-peer/: IPC (ipc.mjs), state (state.mjs), signaling
// requests and the event queue (signaling.mjs), synthetic media (synthetic.mjs),
// transports and producers (transports.mjs), consumers (consume.mjs) and stats (stats.mjs).
import './media-peer/wrtc.mjs'; // first: the WebRTC globals
import { createRequire } from 'node:module';
import { closeConsumerEntry, consumePending } from './media-peer/consume.mjs';
import { errInfo, report, send } from './media-peer/ipc.mjs';
import { pushEvent, rawEmit, request, waitEvent } from './media-peer/signaling.mjs';
import { S } from './media-peer/state.mjs';
import { snapshot } from './media-peer/stats.mjs';
import { closeTransports, setupMedia } from './media-peer/transports.mjs';

const require = createRequire(import.meta.url);
const { Device } = require('mediasoup-client');
const { io } = require('socket.io-client');

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
/** Ends the process after `ms` whatever happens (start's maxLifetimeMs, else 10 minutes). */
const watchdog = (ms) =>
  setTimeout(() => {
    report('watchdog', new Error('maxLifetimeMs reached, exiting'));
    hardExit(3);
  }, ms);
let lifetimeTimer = watchdog(10 * 60_000);

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

async function start(args) {
  if (S.socket) throw new Error('already started');
  S.opts = { consumeAll: true, autoRecover: true, ...args };
  if (args.maxLifetimeMs) {
    clearTimeout(lifetimeTimer);
    lifetimeTimer = watchdog(args.maxLifetimeMs);
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
