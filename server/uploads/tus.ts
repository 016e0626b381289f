import { AsyncLocalStorage } from 'node:async_hooks';
import { constants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { createHash, randomUUID, type Hash } from 'node:crypto';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { Server as TusServer, Upload } from '@tus/server' with { 'resolution-mode': 'import' };
import type { Principal } from '../auth/roles';
import { AppError } from '../errors';
import { IdleTimer } from './files';
import type { NewUpload, UploadService } from './service';

/**
 * tus 1.0 (core, creation, creation-with-upload, creation-defer-length,
 * expiration, checksum, termination) by @tus/server over @tus/file-store in
 * RECORDINGS_DIR/.uploads. routes.ts authenticates each request and runs the
 * tus server inside a TusContext (who asks, for which call or upload, with
 * which Upload-Checksum); the hooks and the store below read it from there.
 *
 * What @tus/server does not do, the store adds: the checksum extension (a
 * chunk whose Upload-Checksum does not match is not kept: 460), fsync before
 * an offset is promised, UPLOAD_CHUNK_MAX_BYTES per request, an idle timeout,
 * and the `client_uploads` row kept in step (offset, deferred length, termination).
 */
export interface TusContext {
  principal: Principal;
  /** POST (creation): the call. */
  callId?: string;
  /** HEAD, PATCH, DELETE: the upload (the route's validated :id). */
  uploadId?: string;
  checksum?: { algorithm: string; digest: Buffer };
}

export const tusContext = new AsyncLocalStorage<TusContext>();

/** Algorithms of the checksum extension (Tus-Checksum-Algorithm); the spec requires sha1. */
export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'sha512', 'md5'];

/** A tus error answer (@tus/server sends `status_code` and `body`): our `{ error: { code, message } }` body with the code's status. */
export class TusError extends Error {
  readonly status_code: number;
  readonly body: string;
  constructor(err: AppError) {
    super(err.message);
    this.status_code = err.status;
    this.body = JSON.stringify(err.toJSON());
  }
}

export const tusError = (err: AppError): TusError => new TusError(err);

/** AppErrors become tus error answers; tus's own errors ({status_code, body}) pass; anything else is a bug (500, logged). */
function asTus(err: unknown, log: FastifyBaseLogger): unknown {
  if (err instanceof AppError) return tusError(err);
  if (typeof err === 'object' && err !== null && 'status_code' in err) return err;
  log.error({ err }, 'upload request failed');
  return tusError(new AppError('INTERNAL_ERROR'));
}

export interface Tus {
  server: TusServer;
  /** The JSON declaration (POST /calls/:id/uploads without Tus-Resumable): the row and tus's record, as a tus creation makes them. */
  declare(principal: Principal, callId: string, input: Omit<NewUpload, 'id'>): Promise<string>;
}

export interface TusOptions {
  uploads: UploadService;
  log: FastifyBaseLogger;
  /** A PATCH whose body sends nothing for this long is cut off (default 60 s). */
  idleTimeoutMs?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function ctx(): TusContext {
  const c = tusContext.getStore();
  if (!c) throw new Error('a tus request outside its context');
  return c;
}

export async function createTus({ uploads, log, idleTimeoutMs = 60_000 }: TusOptions): Promise<Tus> {
  // Both packages are ES modules only; this project compiles to CommonJS.
  const { Server, Upload: TusUpload } = await import('@tus/server');
  const { FileStore } = await import('@tus/file-store');
  const limits = uploads.limits;

  class RecordingStore extends FileStore {
    constructor() {
      super({ directory: uploads.storeDir, expirationPeriodInMilliseconds: uploads.staleAfterMs });
      this.extensions = [...this.extensions, 'checksum'];
    }

    private file(id: string): string {
      if (!UUID.test(id)) throw tusError(new AppError('UPLOAD_NOT_FOUND'));
      return path.join(this.directory, id);
    }

    override async write(readable: Readable, id: string, offset: number): Promise<number> {
      const checksum = tusContext.getStore()?.checksum;
      let fh: FileHandle;
      try {
        fh = await fsp.open(this.file(id), constants.O_RDWR | constants.O_NOFOLLOW);
      } catch {
        throw tusError(new AppError('UPLOAD_GONE', `the partial file of upload ${id} is gone; start a new upload`));
      }
      const hash = checksum ? createHash(checksum.algorithm) : undefined;
      const sink = new ChunkSink(fh, offset, limits.chunkMaxBytes, hash);
      const idle = new IdleTimer(idleTimeoutMs, () => readable.destroy(new Error('upload chunk idle timeout')));
      sink.on('progress', () => idle.touch());
      uploads.active.add(id);
      let failure: unknown;
      let end: number;
      try {
        try {
          await pipeline(readable, sink);
        } catch (err) {
          failure = err;
        } finally {
          idle.stop();
          await sink.settled();
        }
        // A chunk with a checksum is kept whole and verified, or not at all.
        if (hash && (failure !== undefined || !hash.digest().equals(checksum!.digest))) {
          await fh.truncate(offset);
          failure = failure instanceof AppError || failure instanceof TusError ? failure : tusError(new AppError('UPLOAD_CHECKSUM_MISMATCH'));
        }
        // Durable before it is promised: only then does the offset move.
        await fh.sync();
        end = (await fh.stat()).size;
      } finally {
        await fh.close().catch(() => undefined);
        uploads.active.delete(id);
      }
      await uploads.progress(id, end);
      if (failure !== undefined) {
        if (failure instanceof AppError) throw tusError(failure);
        if (failure instanceof TusError) throw failure;
        log.info({ uploadId: id, offset: end, err: (failure as Error).message }, 'upload chunk interrupted; kept what arrived');
        throw failure instanceof Error ? failure : new Error(String(failure));
      }
      return end;
    }

    /** A finished upload has left the store (it is a recording): tus still sees it, complete. */
    override async getUpload(id: string): Promise<Upload> {
      try {
        return await super.getUpload(id);
      } catch (err) {
        const size = await uploads.completedSize(id);
        if (size === null) throw err;
        return new TusUpload({ id, size, offset: size });
      }
    }

    override async declareUploadLength(id: string, size: number): Promise<void> {
      try {
        await uploads.declareLength(id, size);
      } catch (err) {
        throw asTus(err, log);
      }
      await super.declareUploadLength(id, size);
    }

    override async remove(id: string): Promise<void> {
      await super.remove(id);
      await uploads.terminated(id);
    }
  }

  const store = new RecordingStore();
  const server = new Server({
    path: '/uploads',
    datastore: store,
    maxSize: limits.maxBytes,
    // Relative: right behind any proxy (tus allows it; clients resolve it against the creation URL).
    generateUrl: (_req, { id }) => `/uploads/${id}`,
    getFileIdFromRequest: () => ctx().uploadId,
    namingFunction: () => randomUUID(),
    // A finished upload is a recording: DELETE /recordings/:id removes it, not tus.
    disableTerminationForFinishedUploads: true,
    onUploadCreate: async (_req, upload: Upload) => {
      const c = ctx();
      const md = upload.metadata ?? {};
      try {
        if (upload.size === 0) throw new AppError('VALIDATION_FAILED', 'Upload-Length must be at least 1');
        await uploads.register(c.principal, c.callId!, {
          id: upload.id,
          fileName: md.filename ?? md.name ?? 'recording',
          mimeType: md.filetype ?? md.type ?? '',
          sizeBytes: upload.size ?? null,
          sha256: md.sha256 ?? null,
        });
      } catch (err) {
        throw asTus(err, log);
      }
      return {};
    },
    onUploadFinish: async (_req, upload: Upload) => {
      try {
        const recordingId = await uploads.finish(upload.id);
        return { headers: { 'Recording-Id': recordingId } };
      } catch (err) {
        throw asTus(err, log);
      }
    },
    onResponseError: (_req, err) => {
      const mapped = asTus(err, log);
      return mapped === err ? undefined : (mapped as { status_code: number; body: string });
    },
  });
  return {
    server,
    async declare(principal, callId, input) {
      const id = randomUUID();
      await uploads.register(principal, callId, { id, ...input });
      const metadata: Record<string, string> = { filename: input.fileName, filetype: input.mimeType };
      if (input.sha256 !== null) metadata.sha256 = input.sha256;
      await store.create(new TusUpload({ id, size: input.sizeBytes ?? undefined, offset: 0, metadata }));
      return id;
    },
  };
}

/**
 * Writes what it is given at consecutive positions of an open file (hashing it
 * when asked), and fails, without writing the offending bytes, once more than
 * `limit` bytes arrive. Emits 'progress' after each write; settled() resolves
 * when no write is in flight.
 */
class ChunkSink extends Writable {
  private position: number;
  private accepted = 0;
  private inflight: Promise<void> = Promise.resolve();

  constructor(
    private readonly fh: FileHandle,
    start: number,
    private readonly limit: number,
    private readonly hash: Hash | undefined,
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
      cb(new AppError('BODY_TOO_LARGE', `a request may carry at most ${this.limit} bytes (UPLOAD_CHUNK_MAX_BYTES)`));
      return;
    }
    this.accepted += total;
    for (const b of bufs) this.hash?.update(b);
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
