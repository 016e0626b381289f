// The Switchboard client SDK in Node, with @roamhq/wrtc as its WebRTC:
// joins the room of a token, publishes a camera and microphone (Node has none:
// MEDIA_DEVICE_UNAVAILABLE, so it publishes synthetic tracks instead), counts the
// video frames it receives from the others, records a few seconds while media flows
// when its token is a host's, and leaves. Its last line is a JSON summary.
//
//   SWITCHBOARD_URL=http://localhost:8080 SWITCHBOARD_TOKEN=$(switchboard token create --room demo --role host) node index.mjs
//
// Environment: SWITCHBOARD_URL (default http://localhost:8080), SWITCHBOARD_TOKEN (required),
// SWITCHBOARD_ROOM (default: the token's room), SWITCHBOARD_NAME (display name),
// STAY_SECONDS (how long to stay in the call, default 10), RECORD_SECONDS (default 3).
import wrtc from '@roamhq/wrtc';
import { SwitchboardClient, SwitchboardError } from '@switchboard/client';

const { RTCVideoSource, RTCAudioSource, RTCVideoSink } = wrtc.nonstandard;
const url = process.env.SWITCHBOARD_URL ?? 'http://localhost:8080';
const token = process.env.SWITCHBOARD_TOKEN;
if (!token) {
  console.error('set SWITCHBOARD_TOKEN (e.g. switchboard token create --room demo --role host)');
  process.exit(2);
}
const room = process.env.SWITCHBOARD_ROOM ?? JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString() || '{}').room;
const stayMs = Number(process.env.STAY_SECONDS ?? 10) * 1000;
const recordMs = Number(process.env.RECORD_SECONDS ?? 3) * 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...args) => console.log(new Date().toISOString().slice(11, 23), ...args);

const timers = [];
const sinks = [];
let framesReceived = 0;

/** A synthetic camera: 320x240 frames of changing grey, 15 per second. */
function syntheticVideo() {
  const source = new RTCVideoSource();
  const width = 320;
  const height = 240;
  const data = new Uint8ClampedArray(width * height * 1.5).fill(128);
  let n = 0;
  timers.push(setInterval(() => source.onFrame({ width, height, data: data.fill((n++ * 4) & 255, 0, width * height) }), 66));
  return source.createTrack();
}

/** A synthetic microphone: a 440 Hz tone in 10 ms frames. */
function syntheticAudio() {
  const source = new RTCAudioSource();
  let phase = 0;
  timers.push(
    setInterval(() => {
      for (let k = 0; k < 2; k++) {
        const samples = new Int16Array(480).map(() => Math.round(Math.sin((phase += (2 * Math.PI * 440) / 48000)) * 8000));
        source.onData({ samples, sampleRate: 48000, bitsPerSample: 16, channelCount: 1, numberOfFrames: 480 });
      }
    }, 20),
  );
  return source.createTrack();
}

async function main() {
  // Node has no WebRTC of its own: pass wrtc, and the mediasoup-client handler to use with it.
  const call = await SwitchboardClient.connect({ url, token, webrtc: wrtc, handlerName: 'Chrome111' });
  call.on('participant-joined', (p) => log(`${p.display_name ?? p.user_id} joined`));
  call.on('participant-left', ({ participant, reason }) => log(`${participant?.display_name ?? 'someone'} left (${reason})`));
  call.on('track', ({ participantId, source, track }) => {
    log(`receiving ${source} from ${call.participants.get(participantId)?.display_name ?? participantId}`);
    if (track.kind !== 'video') return;
    const sink = new RTCVideoSink(track);
    sink.onframe = () => (framesReceived += 1);
    sinks.push(sink);
  });
  call.on('error', (e) => log(`error ${e.code}: ${e.message}`));

  const state = await call.join(room, { displayName: process.env.SWITCHBOARD_NAME ?? 'Node example' });
  const joinedAt = Date.now();
  const role = call.me?.role ?? null;
  log(`joined room ${room} (call ${state.call_id}) as ${role}; ${state.participants.length} in the call`);

  try {
    await call.publishCamera();
    await call.publishMicrophone();
  } catch (e) {
    if (!(e instanceof SwitchboardError && e.code === 'MEDIA_DEVICE_UNAVAILABLE')) throw e;
    log('no camera or microphone here: publishing synthetic tracks');
    await call.publishTrack(syntheticVideo(), 'camera');
    await call.publishTrack(syntheticAudio(), 'mic');
  }

  // Record only once the other side's media flows (a recording started before is empty).
  while (framesReceived === 0 && Date.now() - joinedAt < stayMs) await sleep(100);
  log(framesReceived > 0 ? 'the other side is playing' : 'nobody else published video');
  let recording = null;
  if (framesReceived > 0 && ['host', 'moderator'].includes(role)) {
    const { recordingId } = await call.startRecording();
    log(`recording ${recordingId}`);
    await sleep(recordMs);
    recording = await call.stopRecording();
    for (const f of recording?.files ?? []) log(`recorded ${f.file_path}: ${f.status}, ${f.size_bytes} bytes`);
  }
  await sleep(Math.max(0, stayMs - (Date.now() - joinedAt)));
  await call.leave();
  call.close();
  return { ok: framesReceived > 0, room, call_id: state.call_id, role, frames_received: framesReceived, recording };
}

let summary;
try {
  summary = await main();
} catch (e) {
  summary = { ok: false, error: e instanceof SwitchboardError ? { code: e.code, message: e.message } : { code: 'UNEXPECTED', message: String(e) } };
}
for (const t of timers) clearInterval(t);
for (const s of sinks) s.stop();
console.log(JSON.stringify(summary));
// wrtc keeps native threads running: exit explicitly.
setTimeout(() => process.exit(summary.ok ? 0 : 1), 100);
