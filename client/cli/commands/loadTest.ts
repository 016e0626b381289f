/**
 * `switchboard load-test`: N simulated participants with real WebRTC
 * (@roamhq/wrtc + mediasoup-client, through the SDK) join one room, some
 * publish synthetic video and audio, all receive for the given time; then it
 * reports join latency (connect + join + media set up: p50, p95, max) and the
 * media each participant received (decoded video frames, RTP bytes).
 * The anchor is LiveKit's `lk load-test`. Bounded: every join has a timeout,
 * the whole run a deadline, and it stops by itself.
 */
import { SwitchboardClient } from '../../sdk/client';
import { SwitchboardError } from '../../sdk/errors';
import {
  CliError,
  EXIT_OK,
  EXIT_SERVER,
  intOption,
  parse,
  rest,
  server,
  SERVER_HELP,
  SERVER_OPTIONS,
  table,
  usageError,
  type Command,
  type Io,
} from '../shared';
import { FrameCounter, loadWrtc, SyntheticMedia } from '../wrtc';

const HELP = `Usage: switchboard load-test [--participants N] [--duration S] [--video-publishers V] [--audio-publishers A] [--rate R] [--room ROOM]

Joins N simulated participants (real WebRTC: @roamhq/wrtc) into one room; the first V publish
synthetic video (320x240, 15 fps) and the first A a tone; everyone receives for S seconds.
Reports join latency (connect + join + media set up) p50/p95/max and, per participant, the video
frames decoded and the RTP bytes received. Exit 1 if a participant could not join, or received nothing of what the others publish.

Options:
  --participants N      simulated participants (default 5, at most 200)
  --duration S          seconds to receive after the last join (default 10, at most 600)
  --video-publishers V  how many publish video (default 1)
  --audio-publishers A  how many publish audio (default 1)
  --rate R              joins started per second (default 10)
  --room ROOM           the room (default load-test-<random>)
${SERVER_HELP}`;

/** How long one participant may take to connect and join before it counts as failed. */
const JOIN_TIMEOUT_MS = 20_000;

interface Sim {
  index: number;
  client: SwitchboardClient | null;
  joinMs: number | null;
  error: string | null;
  counter: FrameCounter;
  firstFrameMs: number | null;
  joinedAt: number;
}

export const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new SwitchboardError('TIMEOUT', `${what} took over ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

export const loadTestCommand: Command = {
  name: 'load-test',
  summary: 'load-test --participants N --duration S     simulated participants, real WebRTC',
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      ...SERVER_OPTIONS,
      participants: { type: 'string' },
      duration: { type: 'string' },
      'video-publishers': { type: 'string' },
      'audio-publishers': { type: 'string' },
      rate: { type: 'string' },
      room: { type: 'string' },
    });
    if (values.help) {
      io.out(HELP);
      return EXIT_OK;
    }
    if (positionals.length > 0) throw usageError(`unexpected '${positionals.join(' ')}'`);
    const n = intOption('participants', values.participants, 1, 200) ?? 5;
    const duration = intOption('duration', values.duration, 1, 600) ?? 10;
    const videoPublishers = Math.min(n, intOption('video-publishers', values['video-publishers'], 0, 200) ?? 1);
    const audioPublishers = Math.min(n, intOption('audio-publishers', values['audio-publishers'], 0, 200) ?? 1);
    const rate = intOption('rate', values.rate, 1, 1000) ?? 10;
    if (videoPublishers + audioPublishers === 0) throw usageError('nobody publishes: set --video-publishers or --audio-publishers above 0');
    const room = values.room ?? `load-test-${Math.random().toString(36).slice(2, 8)}`;
    const s = server(values, io.env);
    const wrtc = loadWrtc();

    const tokens: string[] = [];
    for (let i = 0; i < n; i++) {
      const { data } = await rest<{ token: string }>(s, 'POST', '/auth/token', {
        user_id: `load-${i}`,
        display_name: `Load ${i}`,
        room,
        role: i === 0 ? 'host' : 'participant',
        ttl_seconds: Math.max(600, duration * 2 + 120),
      });
      tokens.push(data.token);
    }
    io.err(`load-test: ${n} participants into room '${room}' at ${s.url}, ${videoPublishers} video and ${audioPublishers} audio publishers, ${duration} s`);

    const media = new SyntheticMedia(wrtc);
    const sims: Sim[] = tokens.map((_, index) => ({
      index,
      client: null,
      joinMs: null,
      error: null,
      counter: new FrameCounter(wrtc),
      firstFrameMs: null,
      joinedAt: 0,
    }));
    const join = async (sim: Sim): Promise<void> => {
      const started = performance.now();
      try {
        await withTimeout(
          (async () => {
            const client = await SwitchboardClient.connect({ url: s.url, token: tokens[sim.index]!, handlerName: 'Chrome111', webrtc: wrtc });
            sim.client = client;
            client.on('track', ({ track }) => {
              if (track.kind !== 'video') return;
              sim.counter.watch(track);
            });
            await client.join(room, { displayName: `Load ${sim.index}` });
            sim.joinMs = performance.now() - started;
            sim.joinedAt = performance.now();
            if (sim.index < videoPublishers) await client.publishTrack(media.video(), 'camera');
            if (sim.index < audioPublishers) await client.publishTrack(media.audio(), 'mic');
          })(),
          JOIN_TIMEOUT_MS,
          `participant ${sim.index}'s join`,
        );
      } catch (err) {
        sim.joinMs = null;
        sim.error = err instanceof SwitchboardError ? `${err.code}: ${err.message}` : String(err);
      }
    };

    const firstFrames = setInterval(() => {
      for (const sim of sims) if (sim.firstFrameMs === null && sim.counter.frames > 0) sim.firstFrameMs = performance.now() - sim.joinedAt;
    }, 20);
    const joins: Promise<void>[] = [];
    for (const sim of sims) {
      joins.push(join(sim));
      await sleep(1000 / rate);
    }
    await Promise.all(joins);
    await sleep(duration * 1000);
    clearInterval(firstFrames);

    const rows = await Promise.all(
      sims.map(async (sim) => {
        const stats = sim.client
          ? await sim.client.receiveStats().catch(() => ({ bytesReceived: 0, packetsReceived: 0 }))
          : { bytesReceived: 0, packetsReceived: 0 };
        return { sim, bytes: stats.bytesReceived, packets: stats.packetsReceived };
      }),
    );
    for (const sim of sims) sim.client?.close();
    media.stop();
    for (const sim of sims) sim.counter.stop();

    return report(io, { n, duration, room, videoPublishers, audioPublishers, json: Boolean(values.json) }, rows);
  },
};

function report(
  io: Io,
  run: { n: number; duration: number; room: string; videoPublishers: number; audioPublishers: number; json: boolean },
  rows: Array<{ sim: Sim; bytes: number; packets: number }>,
): number {
  const joined = rows.filter((r) => r.sim.joinMs !== null);
  const lat = joined.map((r) => r.sim.joinMs!).sort((a, b) => a - b);
  const failed = rows.filter((r) => r.sim.error);
  // A participant receives what every publisher but itself sends.
  const others = (publishers: number, i: number) => publishers - (i < publishers ? 1 : 0);
  const starved = joined.filter((r) => {
    const video = others(run.videoPublishers, r.sim.index) > 0;
    const audio = others(run.audioPublishers, r.sim.index) > 0;
    return ((video || audio) && r.bytes === 0) || (video && r.sim.counter.frames === 0);
  });
  const summary = {
    room: run.room,
    participants: run.n,
    joined: joined.length,
    failed: failed.map((r) => ({ participant: r.sim.index, error: r.sim.error })),
    join_latency_ms: { p50: Math.round(percentile(lat, 50)), p95: Math.round(percentile(lat, 95)), max: Math.round(lat[lat.length - 1] ?? NaN) },
    duration_s: run.duration,
    per_participant: rows.map((r) => ({
      participant: r.sim.index,
      join_ms: r.sim.joinMs === null ? null : Math.round(r.sim.joinMs),
      video_frames: r.sim.counter.frames,
      first_frame_ms: r.sim.firstFrameMs === null ? null : Math.round(r.sim.firstFrameMs),
      bytes_received: r.bytes,
      packets_received: r.packets,
      kbps: Math.round((r.bytes * 8) / 1000 / run.duration),
    })),
  };
  if (run.json) io.out(JSON.stringify(summary, null, 2));
  else {
    io.out(
      `joined ${joined.length}/${run.n}  join latency p50 ${summary.join_latency_ms.p50} ms  p95 ${summary.join_latency_ms.p95} ms  max ${summary.join_latency_ms.max} ms`,
    );
    for (const line of table([
      ['PARTICIPANT', 'JOIN MS', 'VIDEO FRAMES', 'FIRST FRAME MS', 'BYTES', 'KBPS'],
      ...summary.per_participant.map((p) => [
        String(p.participant),
        p.join_ms === null ? 'failed' : String(p.join_ms),
        String(p.video_frames),
        p.first_frame_ms === null ? '' : String(p.first_frame_ms),
        String(p.bytes_received),
        String(p.kbps),
      ]),
    ]))
      io.out(line);
    for (const f of summary.failed) io.err(`participant ${f.participant}: ${f.error}`);
  }
  if (failed.length > 0)
    throw new CliError(EXIT_SERVER, 'JOIN_FAILED', `${failed.length} of ${run.n} participants could not join (first: ${failed[0]!.sim.error})`);
  if (starved.length > 0)
    throw new CliError(EXIT_SERVER, 'NO_MEDIA', `${starved.length} participants received no media: ${starved.map((r) => r.sim.index).join(', ')}`);
  return EXIT_OK;
}
