import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * Finds ffmpeg (and ffprobe): FFMPEG_PATH, then the `ffmpeg-static` package's
 * binary when that package is installed and its file exists, then `ffmpeg` on
 * PATH. Without one, recording requests fail with FFMPEG_UNAVAILABLE and the
 * rest of the server works; /ready reports it.
 */
export interface FfmpegBinaries {
  ffmpeg: string;
  /** For durations; optional (the wall clock is used without it). */
  ffprobe: string | undefined;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string, envPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

function fromFfmpegStatic(): string | undefined {
  try {
    // Optional: present only when the package is installed (it downloads its binary at install time).
    const p = require('ffmpeg-static') as string | null;
    return p && existsSync(p) ? p : undefined;
  } catch {
    return undefined;
  }
}

export function resolveFfmpeg(configured: string | undefined, envPath?: string): FfmpegBinaries | undefined {
  let ffmpeg: string | undefined;
  if (configured) ffmpeg = executable(configured) ? configured : undefined;
  else ffmpeg = fromFfmpegStatic() ?? onPath('ffmpeg', envPath);
  if (!ffmpeg) return undefined;
  const sibling = path.join(path.dirname(ffmpeg), 'ffprobe');
  return { ffmpeg, ffprobe: executable(sibling) ? sibling : onPath('ffprobe', envPath) };
}

/**
 * Rewrites a file ffmpeg could not finalise (no cues, no duration) into a proper
 * one, through a temporary file of its own renamed over it (atomic: a reader sees
 * the old file or the new one); keeps the original if that fails. True when rewritten.
 */
export async function remux(bin: FfmpegBinaries | undefined, file: string): Promise<boolean> {
  const size = await stat(file).then(
    (s) => s.size,
    () => 0,
  );
  if (size === 0 || !bin) return false;
  const tmp = `${file}.remux-${randomBytes(4).toString('hex')}${path.extname(file)}`;
  const ok = await new Promise<boolean>((resolve) => {
    const p = spawn(bin.ffmpeg, ['-nostdin', '-loglevel', 'error', '-i', file, '-map', '0', '-c', 'copy', '-y', tmp], { stdio: 'ignore' });
    p.once('exit', (code) => resolve(code === 0));
    p.once('error', () => resolve(false));
  });
  if (ok) await rename(tmp, file);
  else await rm(tmp, { force: true });
  return ok;
}

/** ffprobe's stdout for a file, or '' (no ffprobe, or it failed). */
function ffprobe(bin: FfmpegBinaries | undefined, args: string[]): Promise<string> {
  if (!bin?.ffprobe) return Promise.resolve('');
  return new Promise((resolve) => {
    const p = spawn(bin.ffprobe!, ['-v', 'error', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.once('exit', () => resolve(out));
    p.once('error', () => resolve(''));
  });
}

/** The kinds of stream in a file (video, audio); both assumed without ffprobe. */
export async function probeStreams(bin: FfmpegBinaries | undefined, file: string): Promise<string[]> {
  if (!bin?.ffprobe) return ['video', 'audio'];
  const out = await ffprobe(bin, ['-show_entries', 'stream=codec_type', '-of', 'default=nw=1:nk=1', file]);
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** A file's duration in ms; null without ffprobe or when it cannot tell. */
export async function probeDuration(bin: FfmpegBinaries | undefined, file: string): Promise<number | null> {
  const seconds = Number.parseFloat((await ffprobe(bin, ['-show_entries', 'format=duration', '-of', 'default=nw=1:nk=1', file])).trim());
  return Number.isFinite(seconds) ? Math.round(seconds * 1000) : null;
}
