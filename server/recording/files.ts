import { constants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';

/**
 * Helpers for serving recorded files: where a recording's file is, safely, and
 * which bytes an HTTP Range header asks for. No HTTP framework here.
 *
 * A recording's file path is never user input: it is the `file_path` column,
 * relative to RECORDINGS_DIR. Even so, every helper refuses a path that would
 * leave RECORDINGS_DIR: absolute paths, `..` segments, NUL bytes, and (after
 * resolving symlinks with realpath) links pointing outside it. Such a path
 * raises UnsafePathError; a file that simply is not there gives null.
 */
export class UnsafePathError extends Error {
  constructor(
    readonly relPath: string,
    why: string,
  ) {
    super(`recording path ${JSON.stringify(relPath)} is refused: ${why}`);
    this.name = 'UnsafePathError';
  }
}

/** Whether `target` is strictly inside `root` (both absolute, normalised). */
export function isInside(root: string, target: string): boolean {
  const rel = path.relative(root, target);
  if (rel === '' || path.isAbsolute(rel)) return false;
  const first = rel.split(path.sep)[0];
  return first !== '..';
}

/**
 * The absolute path of `relPath` under `root`, by lexical rules only (no file
 * system access). Throws UnsafePathError for anything that is not a plain
 * relative path strictly inside `root`.
 */
export function resolveRecordingPath(root: string, relPath: string): string {
  if (typeof relPath !== 'string' || relPath === '') throw new UnsafePathError(String(relPath), 'empty');
  if (relPath.includes('\0')) throw new UnsafePathError(relPath, 'contains a NUL byte');
  if (relPath.includes('\\')) throw new UnsafePathError(relPath, 'contains a backslash');
  if (path.isAbsolute(relPath) || /^[A-Za-z]:/.test(relPath)) throw new UnsafePathError(relPath, 'is absolute');
  if (relPath.split('/').some((seg) => seg === '..')) throw new UnsafePathError(relPath, 'contains ".."');
  const base = path.resolve(root);
  const full = path.resolve(base, relPath);
  if (!isInside(base, full)) throw new UnsafePathError(relPath, 'is outside the recordings directory');
  return full;
}

const isCode = (err: unknown, ...codes: string[]): boolean => codes.includes((err as NodeJS.ErrnoException)?.code ?? '');

/** realpath, or null when the path (or the root) does not exist. */
async function realpathOrNull(p: string): Promise<string | null> {
  try {
    return await fsp.realpath(p);
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
}

/**
 * The real path (symlinks resolved) of `relPath` under `root`, or null when it
 * does not exist. Throws UnsafePathError when it is, or resolves to, a path
 * outside `root`.
 */
export async function realRecordingPath(root: string, relPath: string): Promise<string | null> {
  const lexical = resolveRecordingPath(root, relPath);
  const realRoot = await realpathOrNull(path.resolve(root));
  if (realRoot === null) return null;
  let real: string | null;
  try {
    real = await realpathOrNull(lexical);
  } catch (err) {
    if (isCode(err, 'ELOOP')) throw new UnsafePathError(relPath, 'symlink loop');
    throw err;
  }
  if (real === null) return null;
  if (!isInside(realRoot, real)) throw new UnsafePathError(relPath, 'resolves outside the recordings directory');
  return real;
}

export interface OpenedRecording {
  handle: FileHandle;
  size: number;
  mtime: Date;
}

/**
 * Opens the regular file at `relPath` under `root` for reading, or returns null
 * when there is none. The caller owns (and must close) the handle. Throws
 * UnsafePathError for paths outside `root`.
 */
export async function openRecordingFile(root: string, relPath: string): Promise<OpenedRecording | null> {
  const real = await realRecordingPath(root, relPath);
  if (real === null) return null;
  let handle: FileHandle;
  try {
    // O_NOFOLLOW: `real` has no symlinks; if one was swapped in since, refuse it.
    handle = await fsp.open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return null;
    if (isCode(err, 'ELOOP')) throw new UnsafePathError(relPath, 'became a symlink');
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      await handle.close();
      return null;
    }
    return { handle, size: st.size, mtime: st.mtime };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Removes the file at `relPath` under `root`: true if removed, false if there
 * was none. A symlink is removed itself, never its target; the directory holding
 * it must (after realpath) be inside `root`. Throws UnsafePathError otherwise.
 */
export async function removeRecordingFile(root: string, relPath: string): Promise<boolean> {
  const lexical = resolveRecordingPath(root, relPath);
  const realRoot = await realpathOrNull(path.resolve(root));
  if (realRoot === null) return false;
  const parent = await realpathOrNull(path.dirname(lexical));
  if (parent === null) return false;
  if (parent !== realRoot && !isInside(realRoot, parent)) {
    throw new UnsafePathError(relPath, 'its directory resolves outside the recordings directory');
  }
  const target = path.join(parent, path.basename(lexical));
  try {
    const st = await fsp.lstat(target);
    if (st.isDirectory()) throw new UnsafePathError(relPath, 'is a directory');
    await fsp.unlink(target);
    return true;
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}

// ---- HTTP Range (RFC 9110 §14) ----

/**
 * What to send for a Range header against a representation of `size` bytes:
 * - `full`: no Range, or one to ignore (not `bytes`, bad syntax, several ranges): 200 with everything;
 * - `partial`: 206 with bytes start..end (inclusive);
 * - `unsatisfiable`: 416 with `content-range: bytes *\/size`.
 */
export type RangeResult = { type: 'full' } | { type: 'partial'; start: number; end: number } | { type: 'unsatisfiable' };

const RANGE_SPEC = /^(\d*)-(\d*)$/;

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { type: 'full' };
  const eq = header.indexOf('=');
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { type: 'full' };
  const set = header.slice(eq + 1);
  // Several ranges would need multipart/byteranges; answering with the whole file is allowed.
  if (set.includes(',')) return { type: 'full' };
  const m = RANGE_SPEC.exec(set.trim());
  if (!m) return { type: 'full' };
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return { type: 'full' };

  if (first === '') {
    // bytes=-n: the last n bytes.
    const n = Number(last);
    if (n === 0 || size === 0) return { type: 'unsatisfiable' };
    const start = Number.isSafeInteger(n) && n < size ? size - n : 0;
    return { type: 'partial', start, end: size - 1 };
  }

  const start = Number(first);
  const end = last === '' ? Infinity : Number(last);
  if (last !== '' && Number.isSafeInteger(start) && Number.isSafeInteger(end) && end < start) return { type: 'full' }; // invalid: ignored
  if (!Number.isSafeInteger(start) || start >= size) return { type: 'unsatisfiable' };
  return { type: 'partial', start, end: Math.min(end, size - 1) };
}

/** A strong validator for a file: changes when its size or modification time does. */
export function fileEtag(size: number, mtime: Date): string {
  return `"${size.toString(16)}-${Math.floor(mtime.getTime()).toString(16)}"`;
}

/**
 * Whether a Range request may be honoured given its If-Range header (RFC 9110
 * §13.1.5): absent, or equal to the current strong ETag or Last-Modified date.
 * Otherwise the client's copy is stale and it gets the whole file.
 */
export function ifRangeAllows(ifRange: string | undefined, etag: string, lastModified: string): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.startsWith('"')) return v === etag;
  if (v.startsWith('W/')) return false;
  return v === lastModified;
}
