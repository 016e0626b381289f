import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

/** The pieces of an upload that touch names and bytes: mime types, file names, the chunk writer. */
/** `type/subtype` then `; name=value` parameters; values may hold commas (`codecs=vp8,opus`) or be quoted. */
const MIME = /^\s*([a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*)\s*((?:;\s*[a-z0-9!#$&^_.+-]+=(?:"[^"\\\r\n]*"|[^;"\s]+)\s*)*);?\s*$/i;

export interface ParsedMime {
  /** `type/subtype`, lower case. */
  essence: string;
  /** The codecs parameter, if any (unquoted). */
  codecs: string | null;
}

export function parseMimeType(value: string): ParsedMime | null {
  const m = MIME.exec(value);
  if (!m?.[1]) return null;
  const codecs = /;\s*codecs=("[^"]*"|[^;"\s]+)/i.exec(m[2] ?? '')?.[1]?.replace(/^"|"$/g, '') ?? null;
  return { essence: m[1].toLowerCase(), codecs: codecs === '' ? null : codecs };
}

const EXTENSIONS: Record<string, string> = {
  'video/webm': 'webm',
  'audio/webm': 'webm',
  'video/mp4': 'mp4',
  'audio/mp4': 'm4a',
  'audio/ogg': 'ogg',
  'video/ogg': 'ogv',
  'audio/mpeg': 'mp3',
  'audio/wav': 'wav',
  'video/x-matroska': 'mkv',
  'video/quicktime': 'mov',
};

export function extensionFor(essence: string): string {
  return EXTENSIONS[essence] ?? 'bin';
}

/**
 * A file name safe to store and show: no directories, no control or shell-special
 * characters, no leading dots, at most 255 characters. It is only ever metadata:
 * the file on disk is named after the upload id.
 */
export function sanitizeFileName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  const clean = base
    .normalize('NFC')
    .replace(/[^\p{L}\p{N}._ ()+-]/gu, '_')
    .replace(/\s+/g, ' ')
    .replace(/_+/g, '_')
    .replace(/^[.\s]+/, '')
    .trim();
  const limited = [...clean].slice(0, 255).join('');
  return limited === '' ? 'recording' : limited;
}

export const isCode = (err: unknown, ...codes: string[]): boolean => codes.includes((err as NodeJS.ErrnoException)?.code ?? '');

/** A chunk's body stopped before its end (the client went away, or it idled): `offset` is what was kept. */
export class ChunkInterrupted extends Error {
  constructor(
    readonly offset: number,
    cause: unknown,
  ) {
    super(`upload chunk interrupted at offset ${offset}`, { cause });
    this.name = 'ChunkInterrupted';
  }
}

/**
 * Writes what it is given at consecutive positions of an open file, and fails
 * (without writing the offending bytes) once more than `limit` bytes arrive.
 * Emits 'progress' after each write; settled() resolves when no write is in flight.
 */
export class ChunkSink extends Writable {
  private position: number;
  private accepted = 0;
  private inflight: Promise<void> = Promise.resolve();

  constructor(
    private readonly fh: FileHandle,
    start: number,
    private readonly limit: number,
    private readonly tooMuch: () => Error,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.position = start;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this._writev([{ chunk }], cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    const bufs = chunks.map((c) => c.chunk);
    const total = bufs.reduce((n, b) => n + b.length, 0);
    if (this.accepted + total > this.limit) {
      cb(this.tooMuch());
      return;
    }
    this.accepted += total;
    this.inflight = this.writeAll(bufs).then(
      () => {
        this.emit('progress');
        cb();
      },
      (err: Error) => cb(err),
    );
  }

  private async writeAll(bufs: Buffer[]): Promise<void> {
    for (let buf of bufs) {
      while (buf.length > 0) {
        const { bytesWritten } = await this.fh.write(buf, 0, buf.length, this.position);
        this.position += bytesWritten;
        buf = buf.subarray(bytesWritten);
      }
    }
  }

  settled(): Promise<void> {
    return this.inflight.catch(() => undefined);
  }
}

/** Calls onIdle unless touched every `ms`. */
export class IdleTimer {
  private readonly timer: NodeJS.Timeout;
  constructor(ms: number, onIdle: () => void) {
    this.timer = setTimeout(onIdle, ms);
  }

  touch(): void {
    this.timer.refresh();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
