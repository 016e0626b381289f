// Synthetic media: a moving gradient (video) and a 440 Hz tone (audio), one source of each
// per peer, kept across media resets.
import { report } from './ipc.mjs';
import { S } from './state.mjs';
import { RTCAudioSource, RTCVideoSource } from './wrtc.mjs';

/** The camera track (created on first use): width x height at fps. */
export function startVideo({ width = 320, height = 240, fps = 15 } = {}) {
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

/** The mic track (created on first use): a 440 Hz tone at about -12 dBFS, 48 kHz mono. */
export function startAudio() {
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
