import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { Consumer, PlainTransport, RtpCapabilities } from 'mediasoup/types';
import type { CallService } from '../calls/service';
import { AppError } from '../errors';
import type { RecordingFile, RecordingFileStatus, RecordingFinished, RecordingMode, ServerPayload } from '../protocol';
import type { PrismaClient } from '../generated/prisma/client';
import type { Producer, Sfu } from '../media/sfu';
import { KeyedMutex } from '../lib/keyedMutex';
import { TypedEmitter } from '../lib/typedEmitter';
import { probeDuration, remux, type FfmpegBinaries } from './ffmpeg';
import { type PortPairs, udpBound } from './ports';
import { renderComposite } from './composite';
import { finishedRecording } from './outcome';
import {
  ANALYZE_DURATION_US,
  CLUSTER_MS,
  FFMPEG_LISTEN_TIMEOUT_MS,
  FFMPEG_STOP_TIMEOUT_MS,
  KEY_FRAME_WAIT_MS,
  MAX_RESTARTS_PER_MINUTE,
  MIN_RUN_MS,
  PRODUCER_SETTLE_MS,
  type Run,
  type Session,
} from './session';
import { containerFor, recordingSdp, type SdpStream } from './sdp';

/**
 * Server-side recording: each participant's audio and video producers are
 * consumed by PlainTransports and piped into one ffmpeg per participant through
 * an SDP, copied (-c copy) into WebM (Matroska for H264) under
 * RECORDINGS_DIR/<call id>/. Lifecycle rules:
 *
 * - consumers start paused and resume once ffmpeg listens: video first, a key
 *   frame requested and seen leaving, then audio (no black start, no
 *   misaligned audio); a key frame is requested again whenever the producer
 *   resumes (mute/unmute does not break the file);
 * - ffmpeg is stopped with ONE SIGINT while RTP still flows (a second one would
 *   skip the WebM trailer); a participant leaving is stopped before its media closes;
 * - an ffmpeg that dies is marked interrupted, its partial file remuxed so it is
 *   playable, and a new segment started;
 * - a participant who starts publishing during a recording is recorded from then
 *   on (a new segment when it adds a track).
 */
export type RecordingStatus = RecordingFileStatus;
export type RecordedFile = RecordingFile;
/** The recording-finished payload (server/protocol/shapes.ts). */
export type FinishedRecording = RecordingFinished;

export interface RecorderDeps {
  prisma: PrismaClient;
  sfu: Sfu;
  calls: CallService;
  recordingsDir: string;
  ffmpeg: FfmpegBinaries | undefined;
  ports: PortPairs;
  log: FastifyBaseLogger;
  /** This node (NODE_ID), stamped on every file's row: crash recovery finds what a dead node left open. */
  nodeId: string;
}

/** What the recorder tells (the room services announce it to the room and to webhooks). */
export interface RecorderEvents {
  started: [room: string, recording: ServerPayload<'recording-started'>];
  finished: [room: string, recording: FinishedRecording];
  'ffmpeg-crashed': [room: string, restarting: boolean]; // an ffmpeg died on its own; restarting: a new segment follows
}

export class Recorder extends TypedEmitter<RecorderEvents> {
  private readonly sessions = new Map<string, Session>();
  private readonly locks = new KeyedMutex();
  private readonly settling = new Map<string, Promise<void>>();

  constructor(private readonly deps: RecorderDeps) {
    super((event, err) => deps.log.error({ err, event }, 'a recorder event listener failed'));
  }

  get available(): boolean {
    return this.deps.ffmpeg !== undefined;
  }

  active(room: string): { recording_id: string; started_at: string } | undefined {
    const s = this.sessions.get(room);
    return s && !s.stopping ? { recording_id: s.id, started_at: new Date(s.startedAt).toISOString() } : undefined;
  }

  /** ffmpeg processes of a room's recording (tests and diagnostics). */
  processes(room: string): Array<{ participantId: string; pid: number; segment: number }> {
    const s = this.sessions.get(room);
    return s ? [...s.runs.values()].map((r) => ({ participantId: r.participantId, pid: r.proc.pid ?? -1, segment: r.segment })) : [];
  }

  start(
    room: string,
    callId: string,
    by: string | null,
    mode: RecordingMode = 'participant',
  ): Promise<{ recording_id: string; started_at: string; mode: RecordingMode }> {
    return this.locks.run(room, async () => {
      if (!this.deps.ffmpeg) throw new AppError('FFMPEG_UNAVAILABLE', 'recording is unavailable: ffmpeg was not found (set FFMPEG_PATH)');
      if (this.sessions.has(room)) throw new AppError('RECORDING_ALREADY_ACTIVE');
      const media = this.deps.sfu.get(room);
      if (!media) throw new AppError('CALL_NOT_IN_PROGRESS', 'nobody is in this call through the SFU: only calls in progress in mode sfu can be recorded');
      const session: Session = {
        id: randomUUID(),
        mode,
        room,
        callId,
        startedAt: Date.now(),
        by,
        runs: new Map(),
        segments: new Map(),
        restarts: new Map(),
        stopping: false,
      };
      this.sessions.set(room, session);
      await mkdir(path.join(this.deps.recordingsDir, callId), { recursive: true });
      // In parallel: each waits for its ffmpeg to listen and for a key frame.
      await Promise.all([...media.peers.keys()].map((participantId) => this.startRun(session, participantId)));
      await this.deps.calls.setRecording(callId, true);
      const started = { recording_id: session.id, call_id: callId, mode, started_at: new Date(session.startedAt).toISOString(), by };
      this.safeEmit('started', room, started);
      return { recording_id: session.id, started_at: started.started_at, mode };
    });
  }

  /** Stops the room's recording; null when there is none (stopping twice is harmless). */
  stop(room: string, reason = 'stopped'): Promise<FinishedRecording | null> {
    return this.locks.run(room, async () => {
      const session = this.sessions.get(room);
      if (!session || session.stopping) return null;
      session.stopping = true;
      const stoppedAt = Date.now();
      await Promise.all([...session.runs.values()].map((r) => this.stopRun(session, r)));
      this.sessions.delete(room);
      if (session.mode === 'composite') await renderComposite(this.deps, session, (stoppedAt - session.startedAt) / 1000);
      const rows = await this.deps.prisma.recording.findMany({
        where: { sessionId: session.id },
        orderBy: [{ kind: 'desc' }, { startedAt: 'asc' }, { segment: 'asc' }],
      });
      const finished = finishedRecording(session, rows, (stoppedAt - session.startedAt) / 1000, reason);
      await this.deps.calls.setRecording(session.callId, false).catch((err: unknown) => this.deps.log.warn({ err }, 'could not clear the recording flag'));
      this.safeEmit('finished', room, finished);
      return finished;
    });
  }

  /**
   * A participant published a track: record it from now on (a new segment if it
   * was recorded already). Calls within PRODUCER_SETTLE_MS are coalesced: a client
   * publishes its microphone and camera one after the other, and one segment with
   * both beats a short audio-only one.
   */
  producerAdded(room: string, participantId: string): Promise<void> {
    const key = `${room}\u0000${participantId}`;
    let pending = this.settling.get(key);
    if (!pending) {
      pending = sleep(PRODUCER_SETTLE_MS).then(() => {
        this.settling.delete(key);
        return this.locks.run(room, async () => {
          const session = this.sessions.get(room);
          if (!session || session.stopping) return;
          const run = session.runs.get(participantId);
          const wanted = this.tracksOf(room, participantId).map((p) => p.id);
          // Already recording exactly these tracks (e.g. published just before the recording started).
          if (run && wanted.length === run.producerIds.length && wanted.every((id) => run.producerIds.includes(id))) return;
          if (run) await this.stopRun(session, run);
          await this.startRun(session, participantId);
        });
      });
      this.settling.set(key, pending);
    }
    return pending;
  }

  /** A participant leaves: close its file while its media still flows. */
  participantLeaving(room: string, participantId: string): Promise<void> {
    return this.locks.run(room, async () => {
      const session = this.sessions.get(room);
      const run = session?.runs.get(participantId);
      if (session && run) await this.stopRun(session, run);
    });
  }

  /** Shutdown: finalise every file. */
  async stopAll(reason = 'server-shutdown'): Promise<void> {
    await Promise.all([...this.sessions.keys()].map((room) => this.stop(room, reason)));
  }

  // ---- one ffmpeg per participant ------------------------------------------------------------
  /** What is recorded of a participant: its camera (else its screen) and its microphone. */
  private tracksOf(room: string, participantId: string): Producer[] {
    const peer = this.deps.sfu.get(room)?.peers.get(participantId);
    if (!peer) return [];
    const producers = [...peer.producers.values()].filter((p) => !p.closed);
    const source = (p: Producer) => p.appData.source;
    const audio = producers.find((p) => source(p) === 'mic');
    const video = producers.find((p) => source(p) === 'camera') ?? producers.find((p) => source(p) === 'screen');
    return [video, audio].filter((p): p is Producer => p !== undefined);
  }

  private async startRun(session: Session, participantId: string): Promise<void> {
    const media = this.deps.sfu.get(session.room);
    const chosen = this.tracksOf(session.room, participantId);
    if (!media || chosen.length === 0) return;

    const segment = session.segments.get(participantId) ?? 0;
    session.segments.set(participantId, segment + 1);
    const ports: number[] = [];
    const transports: PlainTransport[] = [];
    const consumers: Consumer[] = [];
    const cleanup = () => {
      for (const t of transports) t.close();
      for (const p of ports) this.deps.ports.release(p);
    };
    try {
      const streams: SdpStream[] = [];
      for (const producer of chosen) {
        const port = await this.deps.ports.take();
        ports.push(port);
        const transport = await media.primary.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: false, comedia: false });
        transports.push(transport);
        await transport.connect({ ip: '127.0.0.1', port, rtcpPort: port + 1 });
        const mime = producer.rtpParameters.codecs[0]!.mimeType.toLowerCase();
        const rtpCapabilities: RtpCapabilities = {
          codecs: (media.primary.rtpCapabilities.codecs ?? []).filter((c) => c.mimeType.toLowerCase() === mime),
          headerExtensions: [],
        };
        const consumer = await transport.consume({ producerId: producer.id, rtpCapabilities, paused: true, appData: { recording: session.id } });
        consumers.push(consumer);
        streams.push({ kind: producer.kind, port, rtpParameters: consumer.rtpParameters });
      }
      const container = containerFor(consumers.map((c) => c.rtpParameters.codecs[0]!.mimeType));
      const base = `${session.id.slice(0, 8)}-${participantId}-${segment}`;
      const dir = path.join(this.deps.recordingsDir, session.callId);
      await mkdir(dir, { recursive: true });
      const fileRel = path.posix.join(session.callId, `${base}.${container.ext}`);
      const fileAbs = path.join(dir, `${base}.${container.ext}`);
      const sdpPath = path.join(dir, `${base}.sdp`);
      await writeFile(sdpPath, recordingSdp(streams));
      const row = await this.deps.prisma.recording.create({
        data: {
          callId: session.callId,
          sessionId: session.id,
          participantId,
          kind: 'participant',
          segment,
          mimeType: container.mimeType,
          filePath: fileRel,
          codec: consumers.map((c) => c.rtpParameters.codecs[0]!.mimeType.split('/')[1]).join('+'),
          status: 'recording',
          startedAt: new Date(),
          nodeId: this.deps.nodeId,
        },
      });
      const proc = spawn(
        this.deps.ffmpeg!.ffmpeg,
        [
          '-nostdin',
          '-hide_banner',
          '-loglevel',
          'warning',
          '-protocol_whitelist',
          'file,udp,rtp',
          '-fflags',
          '+genpts',
          '-analyzeduration',
          String(ANALYZE_DURATION_US),
          '-i',
          sdpPath,
          '-map',
          '0',
          '-c',
          'copy',
          // Write a cluster at least every second, so a killed ffmpeg loses at most that much.
          '-cluster_time_limit',
          String(CLUSTER_MS),
          '-flush_packets',
          '1',
          '-f',
          container.format,
          '-y',
          fileAbs,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const stderr: string[] = [];
      proc.stderr!.on('data', (d: Buffer) => {
        stderr.push(d.toString());
        if (stderr.length > 20) stderr.shift();
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        proc.once('exit', (code, signal) => resolve({ code, signal })),
      );
      const run: Run = {
        participantId,
        segment,
        rowId: row.id,
        fileAbs,
        sdpPath,
        proc,
        exited,
        stderr,
        transports,
        consumers,
        ports,
        producerIds: chosen.map((p) => p.id),
        startedAt: Date.now(),
        stopping: false,
      };
      session.runs.set(participantId, run);
      void exited.then(({ code, signal }) => {
        if (!run.stopping) void this.crashed(session, run, `ffmpeg exited unexpectedly (${signal ?? `code ${code}`}): ${stderr.join('').trim().slice(-300)}`);
      });

      // Resume once ffmpeg listens: video first with a key frame, then audio.
      const until = Date.now() + FFMPEG_LISTEN_TIMEOUT_MS;
      while (!(await udpBound(ports))) {
        if (proc.exitCode !== null || Date.now() > until) throw new Error(`ffmpeg did not start listening: ${stderr.join('').trim().slice(-300)}`);
        await sleep(20);
      }
      const videoConsumer = consumers.find((c) => c.kind === 'video');
      if (videoConsumer) {
        await videoConsumer.enableTraceEvent(['keyframe']);
        const keyFrame = new Promise<void>((resolve) => {
          const t = setTimeout(resolve, KEY_FRAME_WAIT_MS);
          videoConsumer.on('trace', (trace) => {
            if (trace.type === 'keyframe') {
              clearTimeout(t);
              resolve();
            }
          });
        });
        await videoConsumer.resume();
        await videoConsumer.requestKeyFrame();
        await keyFrame;
        videoConsumer.on('producerresume', () => void videoConsumer.requestKeyFrame().catch(() => undefined));
      }
      for (const c of consumers) if (c.kind === 'audio') await c.resume();
    } catch (err) {
      cleanup();
      const run = session.runs.get(participantId);
      if (run && run.transports === transports) {
        run.stopping = true;
        run.proc.kill('SIGKILL');
        session.runs.delete(participantId);
        await this.deps.prisma.recording
          .update({ where: { id: run.rowId }, data: { status: 'failed', error: (err as Error).message.slice(0, 1000), endedAt: new Date() } })
          .catch(() => undefined);
      }
      this.deps.log.error({ err, room: session.room, participantId }, 'could not start recording a participant');
    }
  }

  private async stopRun(session: Session, run: Run): Promise<void> {
    if (run.stopping) return;
    run.stopping = true;
    session.runs.delete(run.participantId);
    let error: string | null = null;
    if (run.proc.exitCode === null && run.proc.signalCode === null) {
      // ffmpeg writes nothing until it has probed its input: a run stopped that
      // early (a participant who leaves right after publishing) would be empty.
      // Media still flows here, so give it a moment to start writing.
      while (
        Date.now() - run.startedAt < MIN_RUN_MS &&
        (await stat(run.fileAbs).then(
          (st) => st.size,
          () => 0,
        )) < 1024
      )
        await sleep(50);
      run.proc.kill('SIGINT');
      const done = await Promise.race([run.exited.then(() => true), sleep(FFMPEG_STOP_TIMEOUT_MS).then(() => false)]);
      if (!done) {
        run.proc.kill('SIGKILL');
        await run.exited;
        error = `ffmpeg did not stop within ${FFMPEG_STOP_TIMEOUT_MS} ms`;
      }
    }
    await this.finish(run, error ? 'failed' : undefined, error);
  }

  /** Closes a run's media, measures its file and updates its row. */
  private async finish(run: Run, forced: RecordingStatus | undefined, error: string | null): Promise<void> {
    for (const t of run.transports) t.close();
    for (const p of run.ports) this.deps.ports.release(p);
    await rm(run.sdpPath, { force: true });
    const size = await stat(run.fileAbs).then(
      (s) => s.size,
      () => 0,
    );
    const durationMs = size > 0 ? await probeDuration(this.deps.ffmpeg, run.fileAbs) : null;
    const status: RecordingStatus = forced ?? (size > 0 && durationMs !== null && durationMs > 0 ? 'completed' : 'empty');
    await this.deps.prisma.recording
      .update({
        where: { id: run.rowId },
        data: {
          status,
          sizeBytes: size > 0 ? BigInt(size) : null,
          durationMs: durationMs ?? null,
          endedAt: new Date(),
          error: error ?? (status === 'empty' ? 'no media was received' : null),
        },
      })
      .catch((err: unknown) => this.deps.log.error({ err }, 'could not update a recording row'));
  }

  /** ffmpeg died on its own: keep what it wrote (remuxed so it is playable) and continue in a new segment. */
  private async crashed(session: Session, run: Run, reason: string): Promise<void> {
    this.deps.log.warn({ room: session.room, participantId: run.participantId, segment: run.segment, reason }, 'recording ffmpeg died; starting a new segment');
    await this.locks.run(session.room, async () => {
      if (session.runs.get(run.participantId) !== run) return;
      run.stopping = true;
      session.runs.delete(run.participantId);
      await remux(this.deps.ffmpeg, run.fileAbs);
      await this.finish(run, 'interrupted', reason.slice(0, 1000));
      const now = Date.now();
      const recent = (session.restarts.get(run.participantId) ?? []).filter((t) => now - t < 60_000);
      session.restarts.set(run.participantId, [...recent, now]);
      const restarting = !session.stopping && recent.length < MAX_RESTARTS_PER_MINUTE;
      this.safeEmit('ffmpeg-crashed', session.room, restarting);
      if (restarting) await this.startRun(session, run.participantId);
    });
  }
}
