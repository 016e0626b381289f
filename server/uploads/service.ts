import { constants, createReadStream, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { createHash, randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { Principal } from '../auth/roles';
import { AppError } from '../errors';
import type { ClientUpload, PrismaClient } from '../generated/prisma/client';
import { removeRecordingFile, resolveRecordingPath } from '../recording/files';
import { ChunkInterrupted, ChunkSink, extensionFor, IdleTimer, isCode, parseMimeType, sanitizeFileName } from './files';

export { ChunkInterrupted, extensionFor, parseMimeType, sanitizeFileName, type ParsedMime } from './files';

/**
 * Uploads of recordings made in the browser (MediaRecorder), tus-like:
 * POST declares the file (size, type, SHA-256), PATCH appends chunks at the
 * stored offset, HEAD/GET tell the offset to resume from. The bytes go to
 * RECORDINGS_DIR/<call>/client-<upload>.<ext>.part, streamed (never held whole in
 * memory); when the last byte arrives the file is hashed, renamed without .part
 * and becomes a `recordings` row of kind 'client'.
 *
 * The database's received_bytes is the truth about the offset: a PATCH starts by
 * truncating the file to it, and when a chunk ends early (the client went away)
 * what reached the disk is kept (fsync) and becomes the new offset.
 *
 * One PATCH at a time per upload, enforced in this process (UPLOAD_BUSY). With
 * several nodes, a client must keep talking to the same node while a chunk is
 * in flight (a load balancer with sticky sessions); the offset check still
 * refuses most misuse.
 */
export interface UploadLimits {
  maxBytes: number;
  chunkMaxBytes: number;
  /** Mime types without parameters, lower case. */
  types: string[];
}

export interface UploadServiceOptions {
  prisma: PrismaClient;
  /** Absolute. */
  recordingsDir: string;
  limits: UploadLimits;
  log: FastifyBaseLogger;
  /** Uploads to an ended call are accepted this long after its end (default 1 h). */
  afterEndMs?: number;
  /** Uploads still `uploading` this long after creation are failed and deleted (default 24 h). */
  staleAfterMs?: number;
  /** How often the sweep runs (default 10 min). */
  sweepIntervalMs?: number;
  /** A PATCH whose body sends nothing for this long is cut off (default 60 s). */
  idleTimeoutMs?: number;
  /** Called once an upload became a recording (for the recording.finished event). */
  onCompleted?: (done: CompletedUpload) => void;
}

/** An upload that was verified and stored as a recording of kind `client`. */
export interface CompletedUpload {
  uploadId: string;
  recordingId: string;
  callId: string;
  participantId: string | null;
  userId: string;
  fileName: string;
  mimeType: string;
  filePath: string;
  sizeBytes: number;
  sha256: string;
  startedAt: Date;
  endedAt: Date;
}

export interface CreateUploadInput {
  fileName: string;
  mimeType: string;
  sizeBytes: number;
  sha256: string;
}

export type ChunkResult = { done: false; offset: number } | { done: true; offset: number; recordingId: string };

/** user_id of uploads made with the API key: never a token's sub (tokens need a non-empty sub). */
export const API_KEY_UPLOADER = '';

const HOUR = 3600_000;

export class UploadService {
  private readonly busy = new Set<string>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly afterEndMs: number;
  private readonly staleAfterMs: number;
  private readonly sweepIntervalMs: number;
  private readonly idleTimeoutMs: number;

  constructor(private readonly opts: UploadServiceOptions) {
    this.afterEndMs = opts.afterEndMs ?? HOUR;
    this.staleAfterMs = opts.staleAfterMs ?? 24 * HOUR;
    this.sweepIntervalMs = opts.sweepIntervalMs ?? 10 * 60_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
  }

  get limits(): UploadLimits {
    return this.opts.limits;
  }

  // ---- creating ----

  /**
   * Declares an upload for `callId`. A user token must be scoped to the call's
   * room and its user must be (or have been) a participant of the call; the API
   * key may always. Ended calls take uploads for afterEndMs after their end.
   */
  async create(principal: Principal, callId: string, input: CreateUploadInput): Promise<ClientUpload> {
    const { prisma, limits } = this.opts;
    const call = await prisma.call.findUnique({ where: { id: callId }, select: { id: true, roomId: true, status: true, endedAt: true, createdAt: true } });
    if (!call) throw new AppError('CALL_NOT_FOUND', `no call ${callId}`);

    let participantId: string | null = null;
    let userId = API_KEY_UPLOADER;
    if (principal.kind === 'user') {
      if (principal.room === undefined) throw new AppError('FORBIDDEN', "uploading needs a token scoped to the call's room");
      if (principal.room !== call.roomId) throw new AppError('ROOM_SCOPE_MISMATCH');
      const participant = await prisma.participant.findFirst({
        where: { callId, userId: principal.userId },
        orderBy: [{ joinedAt: 'desc' }, { id: 'desc' }],
        select: { id: true },
      });
      if (!participant) throw new AppError('UPLOAD_NOT_ALLOWED', `user ${principal.userId} has not taken part in call ${callId}`);
      participantId = participant.id;
      userId = principal.userId;
    }
    if (call.status === 'ended') {
      const endedAt = call.endedAt ?? call.createdAt;
      if (Date.now() - endedAt.getTime() > this.afterEndMs) {
        throw new AppError(
          'CALL_ALREADY_ENDED',
          `call ${callId} ended more than ${Math.round(this.afterEndMs / 60_000)} min ago; uploads are no longer accepted`,
        );
      }
    }

    if (input.sizeBytes > limits.maxBytes) {
      throw new AppError('UPLOAD_TOO_LARGE', `size_bytes ${input.sizeBytes} exceeds the limit of ${limits.maxBytes} bytes`);
    }
    const mime = parseMimeType(input.mimeType);
    if (!mime || !limits.types.includes(mime.essence)) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', `mime_type ${JSON.stringify(input.mimeType)} is not accepted; accepted: ${limits.types.join(', ')}`);
    }

    const id = randomUUID();
    const filePath = `${callId}/client-${id}.${extensionFor(mime.essence)}.part`;
    const abs = this.abs(filePath);
    await fsp.mkdir(path.dirname(abs), { recursive: true });
    // O_EXCL | O_NOFOLLOW: a fresh empty file, never one (or a link) already there.
    const fh = await fsp.open(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o640);
    await fh.close();
    try {
      return await prisma.clientUpload.create({
        data: {
          id,
          callId,
          participantId,
          userId,
          fileName: sanitizeFileName(input.fileName),
          mimeType: input.mimeType.trim(),
          sizeBytes: BigInt(input.sizeBytes),
          sha256: input.sha256.toLowerCase(),
          status: 'uploading',
          filePath,
          // Set here (not by the database clock) so the sweep compares like with like.
          createdAt: new Date(),
        },
      });
    } catch (err) {
      await fsp.rm(abs, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  // ---- reading ----

  /** The upload, if `principal` uploaded it (or is the API key); otherwise 404, as if there were none. */
  async get(principal: Principal, id: string): Promise<ClientUpload> {
    const upload = await this.opts.prisma.clientUpload.findUnique({ where: { id } });
    if (!upload || !this.owns(principal, upload)) throw new AppError('UPLOAD_NOT_FOUND', `no upload ${id}`);
    return upload;
  }

  private owns(principal: Principal, upload: ClientUpload): boolean {
    if (principal.kind === 'admin') return true;
    return upload.userId !== API_KEY_UPLOADER && upload.userId === principal.userId;
  }

  // ---- writing ----

  /**
   * Appends `body` at `offset`. Throws UPLOAD_OFFSET_MISMATCH (with the stored
   * offset on `err.details.offset`) unless offset is the stored one; 413 for
   * bytes beyond size_bytes or a body above chunkMaxBytes. When the file is
   * complete it is verified and becomes a recording (or CHECKSUM_MISMATCH).
   */
  async writeChunk(principal: Principal, id: string, offset: number, body: Readable, contentLength: number | undefined): Promise<ChunkResult> {
    await this.get(principal, id); // 404 before anything else
    if (this.busy.has(id)) throw new AppError('UPLOAD_BUSY', `another request is writing to upload ${id}; retry when it has ended (HEAD for the offset)`);
    this.busy.add(id);
    try {
      // Re-read under the lock: the offset may have moved while we waited for the first read.
      const upload = await this.opts.prisma.clientUpload.findUniqueOrThrow({ where: { id } });
      if (upload.status !== 'uploading') {
        throw new AppError('UPLOAD_CLOSED', `upload ${id} is ${upload.status}; it takes no more bytes`);
      }
      const received = Number(upload.receivedBytes);
      const size = Number(upload.sizeBytes);
      if (offset !== received) {
        throw new AppError('UPLOAD_OFFSET_MISMATCH', `upload-offset ${offset} is not the current offset ${received}; resume from ${received}`, {
          offset: received,
        });
      }
      const room = size - received;
      if (contentLength !== undefined && contentLength > room) {
        throw new AppError(
          'UPLOAD_TOO_LARGE',
          `the chunk (${contentLength} bytes) goes beyond size_bytes ${size}; ${room} bytes remain from offset ${received}`,
          { offset: received },
        );
      }
      if (contentLength !== undefined && contentLength > this.opts.limits.chunkMaxBytes) {
        throw new AppError('BODY_TOO_LARGE', `a chunk may be at most ${this.opts.limits.chunkMaxBytes} bytes (UPLOAD_CHUNK_MAX_BYTES)`, { offset: received });
      }

      const newOffset = await this.append(upload, received, body);
      if (newOffset < size) return { done: false, offset: newOffset };
      const recordingId = await this.finish(upload);
      return { done: true, offset: newOffset, recordingId };
    } finally {
      this.busy.delete(id);
    }
  }

  /** Streams `body` into the file at `offset` and returns the new offset. When the stream fails, what reached the disk is kept and becomes the offset, then it throws. */
  private async append(upload: ClientUpload, offset: number, body: Readable): Promise<number> {
    const size = Number(upload.sizeBytes);
    const limit = Math.min(size - offset, this.opts.limits.chunkMaxBytes);
    let fh: FileHandle;
    try {
      fh = await fsp.open(this.abs(upload.filePath), constants.O_RDWR | constants.O_NOFOLLOW);
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
      await this.fail(upload, 'the partial file is missing');
      throw new AppError('FILE_MISSING', `the partial file of upload ${upload.id} is gone; start a new upload`);
    }

    let failure: unknown;
    let written: number;
    try {
      // The database's offset is the truth: drop anything written past it (a crash after a write, before its update).
      if ((await fh.stat()).size !== offset) await fh.truncate(offset);
      const sink = new ChunkSink(fh, offset, limit, () => this.tooMuch(upload, offset, limit));
      const idle = new IdleTimer(this.idleTimeoutMs, () => body.destroy(new Error('upload chunk idle timeout')));
      sink.on('progress', () => idle.touch());
      try {
        await pipeline(body, sink);
      } catch (err) {
        failure = err;
      } finally {
        idle.stop();
        // A write may still be in flight when the pipeline fails: let it land before measuring.
        await sink.settled();
      }
      // Durable before it is promised: only then does the offset move.
      await fh.sync();
      written = (await fh.stat()).size;
    } finally {
      await fh.close().catch(() => undefined);
    }
    await this.opts.prisma.clientUpload.updateMany({ where: { id: upload.id, status: 'uploading' }, data: { receivedBytes: BigInt(written) } });
    if (failure !== undefined) {
      if (failure instanceof AppError) throw new AppError(failure.code, failure.message, { offset: written });
      this.opts.log.info({ uploadId: upload.id, offset: written, err: (failure as Error).message }, 'upload chunk interrupted; kept what arrived');
      throw new ChunkInterrupted(written, failure);
    }
    return written;
  }

  /** A chunk's body went past `limit` bytes: past size_bytes, or past UPLOAD_CHUNK_MAX_BYTES (whichever `limit` is). */
  private tooMuch(upload: ClientUpload, offset: number, limit: number): AppError {
    return Number(upload.sizeBytes) - offset <= limit
      ? new AppError('UPLOAD_TOO_LARGE', `the chunk goes beyond size_bytes ${upload.sizeBytes}`, { offset })
      : new AppError('BODY_TOO_LARGE', `a chunk may be at most ${limit} bytes (UPLOAD_CHUNK_MAX_BYTES)`, { offset });
  }

  /** All bytes are there: verify the SHA-256, then make it a recording (or fail it and delete the file). */
  private async finish(upload: ClientUpload): Promise<string> {
    const { prisma } = this.opts;
    const partAbs = this.abs(upload.filePath);
    const hash = createHash('sha256');
    await pipeline(createReadStream(partAbs), hash);
    const digest = hash.digest('hex');
    if (digest !== upload.sha256) {
      await this.fail(upload, 'checksum mismatch');
      throw new AppError(
        'CHECKSUM_MISMATCH',
        `the file's SHA-256 is ${digest}, not the declared ${upload.sha256}; the upload failed and its bytes were deleted`,
      );
    }

    const finalPath = upload.filePath.replace(/\.part$/, '');
    const finalAbs = this.abs(finalPath);
    await fsp.rename(partAbs, finalAbs);
    const mime = parseMimeType(upload.mimeType);
    const essence = mime?.essence ?? 'application/octet-stream';
    const recordingId = randomUUID();
    const now = new Date();
    try {
      await prisma.$transaction(async (tx) => {
        const { count } = await tx.clientUpload.updateMany({
          where: { id: upload.id, status: 'uploading' },
          data: { status: 'completed', completedAt: now, recordingId, filePath: finalPath, receivedBytes: upload.sizeBytes },
        });
        if (count === 0) throw new AppError('UPLOAD_CLOSED', `upload ${upload.id} was closed meanwhile`);
        await tx.recording.create({
          data: {
            id: recordingId,
            callId: upload.callId,
            sessionId: upload.id,
            participantId: upload.participantId,
            kind: 'client',
            segment: 0,
            mimeType: essence.slice(0, 50),
            codec: mime?.codecs?.slice(0, 50) ?? null,
            filePath: finalPath,
            sizeBytes: upload.sizeBytes,
            status: 'completed',
            startedAt: upload.createdAt,
            endedAt: now,
            metadata: { source: 'client-upload', upload_id: upload.id, file_name: upload.fileName, user_id: upload.userId || null, sha256: upload.sha256 },
          },
        });
      });
    } catch (err) {
      await fsp.rename(finalAbs, partAbs).catch(() => undefined);
      throw err;
    }
    try {
      this.opts.onCompleted?.({
        uploadId: upload.id,
        recordingId,
        callId: upload.callId,
        participantId: upload.participantId,
        userId: upload.userId,
        fileName: upload.fileName,
        mimeType: essence,
        filePath: finalPath,
        sizeBytes: Number(upload.sizeBytes),
        sha256: upload.sha256,
        startedAt: upload.createdAt,
        endedAt: now,
      });
    } catch (err) {
      this.opts.log.warn({ err, upload: upload.id }, 'onCompleted hook failed');
    }
    return recordingId;
  }

  /** Marks an upload failed (if still uploading) and deletes its file. */
  private async fail(upload: Pick<ClientUpload, 'id' | 'filePath'>, why: string): Promise<boolean> {
    const { count } = await this.opts.prisma.clientUpload.updateMany({
      where: { id: upload.id, status: 'uploading' },
      data: { status: 'failed', completedAt: new Date() },
    });
    try {
      await removeRecordingFile(this.opts.recordingsDir, upload.filePath);
    } catch (err) {
      this.opts.log.warn({ uploadId: upload.id, err: (err as Error).message }, 'could not delete the file of a failed upload');
    }
    if (count > 0) this.opts.log.info({ uploadId: upload.id, why }, 'upload failed');
    return count > 0;
  }

  private abs(rel: string): string {
    return resolveRecordingPath(this.opts.recordingsDir, rel);
  }

  // ---- the sweep ----

  /** Fails and deletes uploads still `uploading` staleAfterMs after creation (not those being written right now). Returns how many. */
  async sweep(now: Date = new Date()): Promise<number> {
    const cutoff = new Date(now.getTime() - this.staleAfterMs);
    let swept = 0;
    for (;;) {
      const stale = await this.opts.prisma.clientUpload.findMany({
        where: { status: 'uploading', createdAt: { lt: cutoff }, ...(this.busy.size > 0 ? { id: { notIn: [...this.busy] } } : {}) },
        select: { id: true, filePath: true },
        orderBy: { createdAt: 'asc' },
        take: 100,
      });
      for (const u of stale) {
        // Taken like a PATCH takes it, so no chunk starts on a file being deleted.
        if (this.busy.has(u.id)) continue;
        this.busy.add(u.id);
        try {
          if (await this.fail(u, 'abandoned')) swept++;
        } finally {
          this.busy.delete(u.id);
        }
      }
      if (stale.length < 100) return swept;
    }
  }

  startSweeping(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message }, 'upload sweep failed'));
    }, this.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  stopSweeping(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }
}
