import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { RoomState } from '../../protocol';
import type { Backend } from './env';
import { useSignalingApp, type SignalingApp } from './signaling';
import { until } from './wait';

/**
 * Real WebRTC peers for tests: each MediaPeer is a child process running
 * media-peer.mjs (mediasoup-client on @roamhq/wrtc) that joins a room over our
 * Socket.IO signaling, publishes synthetic audio (mic) and video (camera) and
 * consumes everyone else's, counting decoded video frames and received audio.
 *
 *   const a = spawnPeer({ name: 'alice' });
 *   await a.start({ url, token, room: 'r1', publish: { audio: true, video: true } });
 *   await b.waitFor((s) => (s.remote[aId]?.videoFrames ?? 0) > 10);
 *   await a.stop();
 *   afterAll(killAllPeers);
 *
 * wrtc segfaults at exit after an RTCVideoSource existed: stop() treats any exit
 * after its reply as success. Each peer costs ~100 MB and a fraction of a core:
 * keep video small (the default is 320x240 at 15 fps).
 */

export interface PublishOptions {
  audio?: boolean;
  video?: boolean;
  width?: number;
  height?: number;
  fps?: number;
  /** Two VP8 layers (needs at least 640x360 for libwebrtc to send both). */
  simulcast?: boolean;
  /** Produce paused (local producer paused and `paused: true` sent in produce). */
  paused?: boolean;
}

export interface StartOptions {
  url: string;
  token: string;
  room: string;
  displayName?: string;
  mode?: 'sfu' | 'p2p';
  publish?: PublishOptions;
  /** Consume every existing and future producer of other participants (default true). */
  consumeAll?: boolean;
  /** On `media-reset`, rebuild transports and re-produce (default true); emits the local event 'peer:recovered'. */
  autoRecover?: boolean;
  /** Ack timeout for each signaling request inside the peer (default 10 s). */
  ackTimeoutMs?: number;
  /** The child exits by itself after this long (default 10 min). */
  maxLifetimeMs?: number;
}

export interface StartResult {
  participant_id: string;
  call_id: string | null;
  room_state: RoomState;
  /** Own producer ids by source. */
  producers: { mic?: string; camera?: string };
  startedAt: number;
}

export interface PeerCounters {
  /** Decoded video frames (RTCVideoSink). */
  videoFrames: number;
  /**
   * Audio callbacks (RTCAudioSink, one per 10 ms). libwebrtc keeps calling with
   * concealment/silence when packets stop (e.g. producer paused): use
   * audioAudible, or byProducer packets, to see audio stop.
   */
  audioData: number;
  /** Audio callbacks carrying the sender's tone (peak above ~-30 dBFS). */
  audioAudible: number;
  /** Epoch ms of the first decoded frame / audio callback (byProducer only). */
  firstFrameAt: number | null;
  /** byProducer only, refreshed by stats({ transport: true }): RTP received for this producer. */
  packets?: number;
  bytes?: number;
}

export interface PeerStats {
  now: number;
  participant_id: string | null;
  call_id: string | null;
  connected: boolean;
  /** mediasoup-client connection states ('none' before creation). */
  transports: { send: string; recv: string; sendId: string | null; recvId: string | null };
  producers: Array<{
    producer_id: string;
    kind: 'audio' | 'video';
    source: 'mic' | 'camera';
    paused: boolean;
    closed: boolean;
    producedAt: number;
  }>;
  consumers: Array<{
    consumer_id: string;
    producer_id: string;
    participant_id: string;
    kind: 'audio' | 'video';
    source: string;
    closed: boolean;
    videoFrames: number;
    audioData: number;
    audioAudible: number;
    createdAt: number;
    firstFrameAt: number | null;
  }>;
  /** Per remote participant id: decoded video frames and audio callbacks, summed over consumers. */
  remote: Record<string, PeerCounters>;
  /** Per remote producer id. */
  byProducer: Record<string, PeerCounters>;
  /** Errors the peer reported on its own (failed auto-consume, uncaught exceptions, …). */
  errors: number;
  rss: number;
  cpu: { user: number; system: number };
  /** With stats({ transport: true }): libwebrtc's RTP counters per kind. */
  sendStats?: TransportStats;
  recvStats?: TransportStats;
}

export interface TransportStats {
  inbound: Record<string, { packets: number; bytes: number; frames: number }>;
  outbound: Record<string, { packets: number; bytes: number; frames: number }>;
  candidatePair: { bytesSent: number; bytesReceived: number } | null;
}

export type AnyAck = { ok?: true; error?: { code: string; message: string }; [k: string]: unknown };

export interface SpawnOptions {
  /** Label for error messages. */
  name?: string;
  env?: NodeJS.ProcessEnv;
  /** Default timeout of IPC requests other than start/stop (default 15 s). */
  requestTimeoutMs?: number;
  /** Print the peer's self-reported errors to stderr (default true). */
  logErrors?: boolean;
}

export interface PeerError {
  where: string;
  error: { message: string; name?: string; stack?: string };
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

const SCRIPT = path.join(__dirname, 'media-peer.mjs');
const live = new Set<MediaPeer>();

export class MediaPeer {
  readonly name: string;
  readonly child: ChildProcess;
  /** Every server event the peer received, in order. */
  readonly events: Array<{ event: string; payload: unknown }> = [];
  /** Errors the peer reported (it keeps running). */
  readonly errors: PeerError[] = [];
  /** Resolves when the child has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  participantId = '';
  callId = '';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly requestTimeoutMs: number;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private stopping = false;
  private readonly eventListeners = new Set<(event: string, payload: any) => void>();
  private readonly errorListeners = new Set<(e: PeerError) => void>();

  constructor(opts: SpawnOptions = {}) {
    this.name = opts.name ?? 'peer';
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 15_000;
    this.child = spawn(process.execPath, [SCRIPT], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...opts.env },
    });
    live.add(this);
    const logErrors = opts.logErrors ?? true;
    this.child.on('message', (msg: any) => {
      if (msg && msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(Object.assign(new Error(`[${this.name}] ${msg.error?.message ?? 'failed'}`), { peerStack: msg.error?.stack }));
      } else if (msg?.type === 'event') {
        this.events.push({ event: msg.event, payload: msg.payload });
        for (const l of this.eventListeners) l(msg.event, msg.payload);
      } else if (msg?.type === 'error') {
        this.errors.push({ where: msg.where, error: msg.error });
        if (logErrors) process.stderr.write(`[media-peer ${this.name}] ${msg.where}: ${msg.error?.stack ?? msg.error?.message}\n`);
        for (const l of this.errorListeners) l({ where: msg.where, error: msg.error });
      }
    });
    this.child.on('error', (err) => this.failAll(new Error(`[${this.name}] child error: ${err.message}`)));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        this.failAll(new Error(`[${this.name}] peer process exited (code ${code}, signal ${signal})`));
        resolve(this.exitInfo);
      });
    });
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  private failAll(err: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }

  /** Sends one IPC command; rejects on a failure reply, a timeout or the child's exit. */
  request<T = unknown>(cmd: string, args: unknown = {}, timeoutMs = this.requestTimeoutMs): Promise<T> {
    if (!this.alive || !this.child.connected) {
      return Promise.reject(new Error(`[${this.name}] peer process is not running (${JSON.stringify(this.exitInfo)})`));
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`[${this.name}] '${cmd}' got no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ id, cmd, args }, (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new Error(`[${this.name}] IPC send failed: ${err.message}`));
      });
    });
  }

  /** Connects, joins, loads the device, creates both transports, produces and (by default) consumes everything. */
  async start(opts: StartOptions, timeoutMs = 30_000): Promise<StartResult> {
    const res = await this.request<StartResult>('start', opts, timeoutMs);
    this.participantId = res.participant_id;
    this.callId = res.call_id ?? '';
    return res;
  }

  stats(opts: { transport?: boolean } = {}): Promise<PeerStats> {
    return this.request<PeerStats>('stats', opts);
  }

  /** Emits any client event (valid or not) and resolves with the raw ack. */
  emit(event: string, payload?: unknown, timeoutMs = 10_000): Promise<AnyAck> {
    return this.request<AnyAck>('emit', { event, payload, timeoutMs }, timeoutMs + 2_000);
  }

  /** Live feed of every server event (also recorded in `events`); returns an unsubscribe function. */
  onEvent(listener: (event: string, payload: any) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Errors the peer reports while it keeps running (also recorded in `errors`). */
  onError(listener: (e: PeerError) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** Like emit, but fails unless the ack is ok. */
  async ok(event: string, payload?: unknown): Promise<AnyAck> {
    const res = await this.emit(event, payload);
    if (!res?.ok) throw new Error(`[${this.name}] ${event} failed: ${JSON.stringify(res?.error ?? res)}`);
    return res;
  }

  /** The oldest not-yet-taken payload of a server event received since start (waits up to timeoutMs). */
  waitEvent<T = any>(event: string, timeoutMs = 5_000): Promise<T> {
    return this.request<T>('waitEvent', { event, timeoutMs }, timeoutMs + 2_000);
  }

  /** Polls stats() until predicate holds; rejects with the last stats on timeout. */
  async waitFor(predicate: (s: PeerStats) => boolean, timeoutMs = 10_000, intervalMs = 100): Promise<PeerStats> {
    let last: PeerStats | undefined;
    const brief = () => JSON.stringify({ transports: last?.transports, remote: last?.remote, byProducer: last?.byProducer, consumers: last?.consumers.length });
    return until(
      () => `[${this.name}] stats to match; last stats: ${brief()}`,
      async () => {
        last = await this.stats();
        return predicate(last) ? last : null;
      },
      { timeoutMs, intervalMs },
    );
  }

  /** Pauses/resumes/closes an own producer, locally and on the server. */
  producer(source: 'mic' | 'camera', action: 'pause' | 'resume' | 'close'): Promise<{ producer_id: string }> {
    return this.request('producer', { source, action });
  }

  restartIce(direction: 'send' | 'recv'): Promise<{ ice_parameters: unknown }> {
    return this.request('restartIce', { direction });
  }

  /**
   * Closes transports and the socket, then waits for the child to exit. An exit by
   * signal (wrtc's segfault at exit) after the reply is fine. Kills it if it hangs.
   */
  async stop(timeoutMs = 5_000): Promise<void> {
    if (!this.alive) return;
    if (this.stopping) {
      await this.exited;
      return;
    }
    this.stopping = true;
    try {
      await this.request('stop', {}, timeoutMs);
    } catch {
      // Not answered or the child died first: either way it goes now.
    }
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL, no questions asked. */
  kill(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }
}

export function spawnPeer(opts: SpawnOptions = {}): MediaPeer {
  return new MediaPeer(opts);
}

/** Kills every peer still running (call in afterAll / afterEach). */
export async function killAllPeers(): Promise<void> {
  const peers = [...live];
  for (const p of peers) p.kill();
  await Promise.all(peers.map((p) => p.exited));
}

/** Stops every peer gracefully (falls back to kill). */
export async function stopAllPeers(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

/** Video frames `s` decoded from participant `from` (0 before any). */
export const frames = (s: PeerStats, from: string): number => s.remote[from]?.videoFrames ?? 0;

/** Audio callbacks from participant `from` that carried its tone. */
export const audible = (s: PeerStats, from: string): number => s.remote[from]?.audioAudible ?? 0;

/** useSignalingApp for media tests: every peer still running is killed before the app closes. */
export const useMediaApp = (backend: Backend, env: Record<string, string> = {}): SignalingApp => useSignalingApp(backend, env, { beforeClose: killAllPeers });

/** Produce → first decoded frame at a consumer, in ms (same host clock). */
export function firstFrameLatency(producer: PeerStats, consumer: PeerStats, source: 'mic' | 'camera' = 'camera'): number | null {
  const p = producer.producers.find((x) => x.source === source);
  const c = p && consumer.byProducer[p.producer_id];
  return p && c?.firstFrameAt ? c.firstFrameAt - p.producedAt : null;
}

// Never leave children behind, even when jest bails out.
process.once('exit', () => {
  for (const p of live) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      /* ignore */
    }
  }
});
