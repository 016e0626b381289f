/**
 * @roamhq/wrtc for the load test: libwebrtc in Node, loaded only when needed
 * (a devDependency: `npm install @roamhq/wrtc` where the CLI is installed
 * without it), with synthetic sources (its nonstandard RTCVideoSource and
 * RTCAudioSource) and a sink that counts decoded video frames.
 */
import { createRequire } from 'node:module';
import { CliError, EXIT_USAGE } from './shared';

interface VideoFrame {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}
interface Nonstandard {
  RTCVideoSource: new () => { onFrame(frame: VideoFrame): void; createTrack(): MediaStreamTrack };
  RTCAudioSource: new () => {
    onData(d: { samples: Int16Array; sampleRate: number; bitsPerSample: number; channelCount: number; numberOfFrames: number }): void;
    createTrack(): MediaStreamTrack;
  };
  RTCVideoSink: new (track: MediaStreamTrack) => { onframe: (() => void) | null; stop(): void };
}
export interface Wrtc {
  RTCPeerConnection: unknown;
  nonstandard: Nonstandard;
  [name: string]: unknown;
}

export function loadWrtc(): Wrtc {
  try {
    return createRequire(__filename)('@roamhq/wrtc') as Wrtc;
  } catch (err) {
    throw new CliError(EXIT_USAGE, 'WRTC_MISSING', `load-test needs @roamhq/wrtc (npm install @roamhq/wrtc): ${(err as Error).message}`);
  }
}

/** Synthetic media at a bounded cost: 320x240 video at 15 fps, a 440 Hz tone; stop() ends the timers and tracks. */
export class SyntheticMedia {
  private readonly timers: ReturnType<typeof setInterval>[] = [];
  private readonly tracks: MediaStreamTrack[] = [];

  constructor(private readonly wrtc: Wrtc) {}

  video(): MediaStreamTrack {
    const source = new this.wrtc.nonstandard.RTCVideoSource();
    const width = 320;
    const height = 240;
    const data = new Uint8ClampedArray(width * height * 1.5).fill(128);
    let n = 0;
    this.timers.push(
      setInterval(() => {
        data.fill((n++ * 4) & 255, 0, width * height);
        source.onFrame({ width, height, data });
      }, 66),
    );
    const track = source.createTrack();
    this.tracks.push(track);
    return track;
  }

  audio(): MediaStreamTrack {
    const source = new this.wrtc.nonstandard.RTCAudioSource();
    let phase = 0;
    this.timers.push(
      setInterval(() => {
        for (let k = 0; k < 2; k++) {
          const samples = new Int16Array(480);
          for (let i = 0; i < 480; i++) samples[i] = Math.round(Math.sin((phase += (2 * Math.PI * 440) / 48000)) * 8000);
          source.onData({ samples, sampleRate: 48000, bitsPerSample: 16, channelCount: 1, numberOfFrames: 480 });
        }
      }, 20),
    );
    const track = source.createTrack();
    this.tracks.push(track);
    return track;
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    for (const t of this.tracks) t.stop();
  }
}

/** Counts the decoded frames of received video tracks. */
export class FrameCounter {
  frames = 0;
  private readonly sinks: Array<{ stop(): void }> = [];

  constructor(private readonly wrtc: Wrtc) {}

  watch(track: MediaStreamTrack): void {
    const sink = new this.wrtc.nonstandard.RTCVideoSink(track);
    sink.onframe = () => (this.frames += 1);
    this.sinks.push(sink);
  }

  stop(): void {
    for (const s of this.sinks) s.stop();
  }
}
