import { accessSync, constants, existsSync } from 'node:fs';
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
