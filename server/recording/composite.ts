import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { PrismaClient } from '../generated/prisma/client';
import { probeDuration, probeStreams, type FfmpegBinaries } from './ffmpeg';

/**
 * The room composite: after the per-participant files are finalised, one ffmpeg
 * filter graph lays every file's video out in a grid (each padded with black
 * before it started and holding its last frame after it ended) and mixes every
 * file's audio (each delayed to when it started), encoded to VP8 + Opus WebM.
 *
 * Rendering from the finished files, rather than mixing live RTP, is what makes
 * it robust: a muted camera or a late joiner sends no packets, which would stall
 * a live filter graph; in a file it is just a gap that fps and tpad fill.
 */
export interface CompositeInput {
  file: string;
  /** Seconds from the start of the recording to the start of this file. */
  offset: number;
  /** Seconds of media in this file. */
  duration: number;
  hasVideo: boolean;
  hasAudio: boolean;
}

export const TILE = { width: 320, height: 240, fps: 15 };

export function compositeArgs(inputs: CompositeInput[], total: number, output: string): string[] {
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'error'];
  for (const i of inputs) args.push('-i', i.file);
  const filters: string[] = [];
  const videos: string[] = [];
  const audios: string[] = [];
  const { width: w, height: h, fps } = TILE;
  inputs.forEach((input, n) => {
    const start = Math.max(0, input.offset);
    const tail = Math.max(0, total - start - input.duration);
    const label = `v${n}`;
    if (input.hasVideo) {
      filters.push(
        `[${n}:v]fps=${fps},scale=${w}:${h}:force_original_aspect_ratio=decrease,pad=${w}:${h}:(ow-iw)/2:(oh-ih)/2,setsar=1,` +
          `tpad=start_duration=${start.toFixed(3)}:start_mode=add:color=black:stop_mode=clone:stop_duration=${tail.toFixed(3)}[${label}]`,
      );
    } else {
      filters.push(`color=c=black:s=${w}x${h}:r=${fps}:d=${total.toFixed(3)}[${label}]`);
    }
    videos.push(`[${label}]`);
    if (input.hasAudio) {
      const ms = Math.round(start * 1000);
      filters.push(`[${n}:a]aresample=48000,adelay=delays=${ms}:all=1[a${n}]`);
      audios.push(`[a${n}]`);
    }
  });
  const cols = Math.ceil(Math.sqrt(inputs.length));
  if (videos.length === 1) filters.push(`${videos[0]}null[v]`);
  else {
    const layout = inputs.map((_, n) => `${(n % cols) * w}_${Math.floor(n / cols) * h}`).join('|');
    filters.push(`${videos.join('')}xstack=inputs=${videos.length}:layout=${layout}:fill=black[v]`);
  }
  if (audios.length === 1) filters.push(`${audios[0]}anull[a]`);
  else if (audios.length > 1) filters.push(`${audios.join('')}amix=inputs=${audios.length}:duration=longest:normalize=0[a]`);
  args.push('-filter_complex', filters.join(';'), '-map', '[v]');
  if (audios.length > 0) args.push('-map', '[a]', '-c:a', 'libopus', '-b:a', '64k');
  args.push('-t', total.toFixed(3), '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1M', '-f', 'webm', '-y', output);
  return args;
}

export interface CompositeDeps {
  prisma: PrismaClient;
  recordingsDir: string;
  ffmpeg: FfmpegBinaries | undefined;
  /** Stamped on the composite's row (crash recovery: a render cut short by a crash). */
  nodeId?: string;
}

/** Composite mode: renders one mixed file from a session's finished participant files and records it as a row. */
export async function renderComposite(deps: CompositeDeps, session: { id: string; callId: string; startedAt: number }, total: number): Promise<void> {
  const parts = await deps.prisma.recording.findMany({
    where: { sessionId: session.id, kind: 'participant', status: { in: ['completed', 'interrupted'] } },
    orderBy: [{ startedAt: 'asc' }, { segment: 'asc' }],
  });
  if (parts.length === 0 || !deps.ffmpeg) return;
  const inputs: CompositeInput[] = [];
  for (const p of parts) {
    const file = path.join(deps.recordingsDir, p.filePath);
    const streams = await probeStreams(deps.ffmpeg, file);
    inputs.push({
      file,
      offset: (p.startedAt.getTime() - session.startedAt) / 1000,
      duration: (p.durationMs ?? 0) / 1000,
      hasVideo: streams.includes('video'),
      hasAudio: streams.includes('audio'),
    });
  }
  const fileRel = path.posix.join(session.callId, `${session.id.slice(0, 8)}-composite.webm`);
  const fileAbs = path.join(deps.recordingsDir, fileRel);
  const row = await deps.prisma.recording.create({
    data: {
      callId: session.callId,
      sessionId: session.id,
      kind: 'composite',
      segment: 0,
      mimeType: 'video/webm',
      filePath: fileRel,
      codec: 'VP8+opus',
      status: 'recording',
      startedAt: new Date(session.startedAt),
      nodeId: deps.nodeId ?? null,
    },
  });
  const stderr: string[] = [];
  const code = await new Promise<number | null>((resolve) => {
    const p = spawn(deps.ffmpeg!.ffmpeg, compositeArgs(inputs, total, fileAbs), { stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
    p.once('exit', (c) => resolve(c));
    p.once('error', () => resolve(-1));
  });
  const size = await stat(fileAbs).then(
    (s) => s.size,
    () => 0,
  );
  const durationMs = code === 0 && size > 0 ? await probeDuration(deps.ffmpeg, fileAbs) : null;
  await deps.prisma.recording.update({
    where: { id: row.id },
    data: {
      status: code === 0 && size > 0 ? 'completed' : 'failed',
      sizeBytes: size > 0 ? BigInt(size) : null,
      durationMs,
      endedAt: new Date(),
      error: code === 0 ? null : `composite render failed (${code}): ${stderr.join('').trim().slice(-500)}`,
    },
  });
}
