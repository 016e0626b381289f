import { createReadStream, promises as fsp } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { Principal } from '../auth/roles';
import { AppError } from '../errors';
import type { ClientUpload, PrismaClient } from '../generated/prisma/client';
import { removeRecordingFile, resolveRecordingPath } from '../recording/files';
import { extensionFor, parseMimeType, sanitizeFileName } from './files';

export { extensionFor, parseMimeType, sanitizeFileName, type ParsedMime } from './files';

/**
 * Uploads of recordings made in the browser (MediaRecorder), over tus 1.0
 * (tus.ts speaks the protocol with @tus/server; this is the domain behind it):
 * who may upload to which call, what is accepted, the quota and the free
 * space, and what a finished upload becomes.
 *
 * While it is uploading, an upload's bytes are tus's file store:
 * RECORDINGS_DIR/.uploads/<id> (and tus's record of it, <id>.json). The
 * `client_uploads` row says whose it is, of which call, and its status. When
 * the last byte arrives the file is checked against the declared SHA-256 (if
 * one was declared), moved to RECORDINGS_DIR/<call>/client-<id>.<ext> and
 * becomes a `recordings` row of kind 'client'.
 *
 * One request at a time per upload is tus's lock (in this process): a new PATCH
 * takes the upload over from one still hanging. With several nodes, keep a
 * client's requests on one node (sticky sessions), as before.
 */
export interface UploadLimits {
  maxBytes: number;
  chunkMaxBytes: number;
  /** Mime types without parameters, lower case. */
  types: string[];
  /** Total bytes of the uploads of one call (uploading or completed). */
  quotaBytes: number;
  /** Free space to keep on RECORDINGS_DIR's file system: a creation that would eat into it is refused. */
  diskReserveBytes: number;
}

export interface UploadServiceOptions {
  prisma: PrismaClient;
  /** Absolute. */
  recordingsDir: string;
  limits: UploadLimits;
  log: FastifyBaseLogger;
  /** Uploads to an ended call are accepted this long after its end (default 1 h). */
  afterEndMs?: number;
  /** Uploads still `uploading` this long after creation are failed and deleted (default 24 h; tus's Upload-Expires). */
  staleAfterMs?: number;
  /** How often the sweep runs (default 10 min). */
  sweepIntervalMs?: number;
  /** Free bytes of RECORDINGS_DIR's file system (tests replace it). */
  freeBytes?: (dir: string) => Promise<number>;
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
  sha256: string | null;
  startedAt: Date;
  endedAt: Date;
}

export interface NewUpload {
  id: string;
  fileName: string;
  mimeType: string;
  /** null: deferred (tus Upload-Defer-Length), declared by a later PATCH. */
  sizeBytes: number | null;
  /** Hex SHA-256 of the whole file, checked when the last byte arrives; null: none declared. */
  sha256: string | null;
}

/** user_id of uploads made with the API key: never a token's sub (tokens need a non-empty sub). */
export const API_KEY_UPLOADER = '';
/** tus's file store, under RECORDINGS_DIR (a dot directory: never a call id). */
export const TUS_DIR = '.uploads';

const HOUR = 3600_000;

async function statfsFree(dir: string): Promise<number> {
  const s = await fsp.statfs(dir);
  return Number(s.bavail) * Number(s.bsize);
}

export class UploadService {
  private sweepTimer: NodeJS.Timeout | undefined;
  readonly afterEndMs: number;
  readonly staleAfterMs: number;
  private readonly sweepIntervalMs: number;
  /** Creations and length declarations, one at a time per call, so two cannot both fit in the last of a quota. */
  private readonly reserving = new Map<string, Promise<unknown>>();
  private readonly finishing = new Map<string, Promise<string>>();
  /** Uploads being written right now (the sweep leaves them alone). */
  readonly active = new Set<string>();

  constructor(private readonly opts: UploadServiceOptions) {
    this.afterEndMs = opts.afterEndMs ?? HOUR;
    this.staleAfterMs = opts.staleAfterMs ?? 24 * HOUR;
    this.sweepIntervalMs = opts.sweepIntervalMs ?? 10 * 60_000;
  }

  get limits(): UploadLimits {
    return this.opts.limits;
  }

  /** Where tus keeps the bytes of uploads in progress. */
  get storeDir(): string {
    return path.join(this.opts.recordingsDir, TUS_DIR);
  }

  // ---- creating ----

  /**
   * Declares upload `input.id` for `callId`. A user token must be scoped to the
   * call's room and its user must be (or have been) a participant of the call;
   * the API key may always. Ended calls take uploads for afterEndMs after their end.
   * Then the type, the size, the call's quota and the free space are checked.
   */
  async register(principal: Principal, callId: string, input: NewUpload): Promise<ClientUpload> {
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

    if (input.sizeBytes !== null && input.sizeBytes > limits.maxBytes) {
      throw new AppError('UPLOAD_TOO_LARGE', `the upload's length ${input.sizeBytes} exceeds the limit of ${limits.maxBytes} bytes (UPLOAD_MAX_BYTES)`);
    }
    const mime = parseMimeType(input.mimeType);
    if (!mime || !limits.types.includes(mime.essence)) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', `file type ${JSON.stringify(input.mimeType)} is not accepted; accepted: ${limits.types.join(', ')}`);
    }
    if (input.sha256 !== null && !/^[0-9a-f]{64}$/i.test(input.sha256)) {
      throw new AppError('VALIDATION_FAILED', 'sha256 must be the hex SHA-256 of the whole file (64 hex digits)');
    }

    await fsp.mkdir(this.storeDir, { recursive: true });
    return this.serially(callId, async () => {
      await this.checkRoom(callId, input.sizeBytes ?? 0);
      return prisma.clientUpload.create({
        data: {
          id: input.id,
          callId,
          participantId,
          userId,
          fileName: sanitizeFileName(input.fileName),
          mimeType: input.mimeType.trim(),
          sizeBytes: input.sizeBytes === null ? null : BigInt(input.sizeBytes),
          sha256: input.sha256?.toLowerCase() ?? null,
          status: 'uploading',
          filePath: `${TUS_DIR}/${input.id}`,
          // Set here (not by the database clock) so the sweep compares like with like.
          createdAt: new Date(),
        },
      });
    });
  }

  private async serially<T>(callId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.reserving.get(callId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.reserving.set(callId, tail);
    void tail.then(() => {
      if (this.reserving.get(callId) === tail) this.reserving.delete(callId);
    });
    return run;
  }

  /**
   * Refuses `bytes` more for `callId` when they would pass UPLOAD_QUOTA_BYTES
   * (413 UPLOAD_QUOTA_EXCEEDED: the client asked for too much), or would leave
   * less than UPLOAD_DISK_RESERVE_BYTES free once every upload in progress has
   * its declared bytes (507 INSUFFICIENT_STORAGE: the server's condition, which
   * may pass; tus clients retry 5xx).
   */
  async checkRoom(callId: string, bytes: number, excluding?: string): Promise<void> {
    const { prisma, limits } = this.opts;
    const others = excluding === undefined ? {} : { id: { not: excluding } };
    const [declared, deferred] = await Promise.all([
      prisma.clientUpload.aggregate({
        where: { callId, status: { in: ['uploading', 'completed'] }, sizeBytes: { not: null }, ...others },
        _sum: { sizeBytes: true },
      }),
      prisma.clientUpload.aggregate({ where: { callId, status: 'uploading', sizeBytes: null, ...others }, _sum: { receivedBytes: true } }),
    ]);
    const used = Number(declared._sum.sizeBytes ?? 0n) + Number(deferred._sum.receivedBytes ?? 0n);
    if (used + bytes > limits.quotaBytes) {
      throw new AppError(
        'UPLOAD_QUOTA_EXCEEDED',
        `call ${callId} has ${used} bytes of uploads; ${bytes} more would pass UPLOAD_QUOTA_BYTES (${limits.quotaBytes})`,
      );
    }
    const pending = await prisma.clientUpload.aggregate({
      where: { status: 'uploading', sizeBytes: { not: null }, ...others },
      _sum: { sizeBytes: true, receivedBytes: true },
    });
    const outstanding = Number(pending._sum.sizeBytes ?? 0n) - Number(pending._sum.receivedBytes ?? 0n);
    const free = await (this.opts.freeBytes ?? statfsFree)(this.opts.recordingsDir);
    if (bytes + outstanding > free - limits.diskReserveBytes) {
      throw new AppError(
        'INSUFFICIENT_STORAGE',
        `not enough free space for ${bytes} bytes: ${free} free, ${outstanding} promised to uploads in progress, ${limits.diskReserveBytes} kept in reserve`,
      );
    }
  }

  /** A deferred upload's length is declared (a PATCH with Upload-Length). */
  async declareLength(id: string, size: number): Promise<void> {
    const row = await this.opts.prisma.clientUpload.findUniqueOrThrow({ where: { id } });
    if (size > this.opts.limits.maxBytes)
      throw new AppError('UPLOAD_TOO_LARGE', `Upload-Length ${size} exceeds UPLOAD_MAX_BYTES (${this.opts.limits.maxBytes})`);
    await this.serially(row.callId, async () => {
      await this.checkRoom(row.callId, size - Number(row.receivedBytes), undefined);
      await this.opts.prisma.clientUpload.updateMany({ where: { id, status: 'uploading' }, data: { sizeBytes: BigInt(size) } });
    });
  }

  /** A deferred upload's next chunk of `bytes`: within the quota and the free space. */
  async admitChunk(upload: ClientUpload, bytes: number): Promise<void> {
    if (upload.sizeBytes === null) await this.checkRoom(upload.callId, bytes);
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

  /** The length of a completed upload; null for any other. */
  async completedSize(id: string): Promise<number | null> {
    const row = await this.opts.prisma.clientUpload.findUnique({ where: { id }, select: { status: true, sizeBytes: true } });
    return row?.status === 'completed' && row.sizeBytes !== null ? Number(row.sizeBytes) : null;
  }

  // ---- writing ----

  /** The bytes stored so far (tus's offset, which is the file's size), for GET and the quota. */
  async progress(id: string, offset: number): Promise<void> {
    await this.opts.prisma.clientUpload.updateMany({ where: { id, status: 'uploading' }, data: { receivedBytes: BigInt(offset) } });
  }

  /** All bytes are there: verify the SHA-256, then make it a recording (or fail it and delete the file). Idempotent. */
  finish(id: string): Promise<string> {
    const running = this.finishing.get(id);
    if (running) return running;
    const p = this.doFinish(id).finally(() => this.finishing.delete(id));
    this.finishing.set(id, p);
    return p;
  }

  private async doFinish(id: string): Promise<string> {
    const { prisma } = this.opts;
    const upload = await prisma.clientUpload.findUniqueOrThrow({ where: { id } });
    if (upload.status === 'completed' && upload.recordingId) return upload.recordingId;
    if (upload.status !== 'uploading') throw new AppError('UPLOAD_CLOSED', `upload ${id} is ${upload.status}`);
    const partAbs = this.abs(upload.filePath);
    const size = (await fsp.stat(partAbs)).size;
    if (upload.sha256 !== null) {
      const hash = createHash('sha256');
      await pipeline(createReadStream(partAbs), hash);
      const digest = hash.digest('hex');
      if (digest !== upload.sha256) {
        await this.fail(upload, 'failed', 'checksum mismatch');
        throw new AppError(
          'CHECKSUM_MISMATCH',
          `the file's SHA-256 is ${digest}, not the declared ${upload.sha256}; the upload failed and its bytes were deleted`,
        );
      }
    }

    const mime = parseMimeType(upload.mimeType);
    const essence = mime?.essence ?? 'application/octet-stream';
    const finalPath = `${upload.callId}/client-${upload.id}.${extensionFor(essence)}`;
    const finalAbs = this.abs(finalPath);
    await fsp.mkdir(path.dirname(finalAbs), { recursive: true });
    await fsp.rename(partAbs, finalAbs);
    const recordingId = randomUUID();
    const now = new Date();
    try {
      await prisma.$transaction(async (tx) => {
        const { count } = await tx.clientUpload.updateMany({
          where: { id: upload.id, status: 'uploading' },
          data: { status: 'completed', completedAt: now, recordingId, filePath: finalPath, receivedBytes: BigInt(size), sizeBytes: BigInt(size) },
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
            sizeBytes: BigInt(size),
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
    // tus's record of it: the upload is a recording now.
    await fsp.rm(`${partAbs}.json`, { force: true }).catch(() => undefined);
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
        sizeBytes: size,
        sha256: upload.sha256,
        startedAt: upload.createdAt,
        endedAt: now,
      });
    } catch (err) {
      this.opts.log.warn({ err, upload: upload.id }, 'onCompleted hook failed');
    }
    return recordingId;
  }

  /** tus terminated it (DELETE): its files are gone already. */
  async terminated(id: string): Promise<void> {
    await this.opts.prisma.clientUpload.updateMany({ where: { id, status: 'uploading' }, data: { status: 'terminated', completedAt: new Date() } });
  }

  /** Marks an upload failed or terminated (if still uploading) and deletes its files (the bytes and tus's record). */
  private async fail(upload: Pick<ClientUpload, 'id' | 'filePath'>, status: 'failed' | 'terminated', why: string): Promise<boolean> {
    const { count } = await this.opts.prisma.clientUpload.updateMany({
      where: { id: upload.id, status: 'uploading' },
      data: { status, completedAt: new Date() },
    });
    try {
      await removeRecordingFile(this.opts.recordingsDir, upload.filePath);
      await fsp.rm(`${this.abs(upload.filePath)}.json`, { force: true });
    } catch (err) {
      this.opts.log.warn({ uploadId: upload.id, err: (err as Error).message }, 'could not delete the file of a failed upload');
    }
    if (count > 0) this.opts.log.info({ uploadId: upload.id, why }, `upload ${status}`);
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
        where: { status: 'uploading', createdAt: { lt: cutoff }, ...(this.active.size > 0 ? { id: { notIn: [...this.active] } } : {}) },
        select: { id: true, filePath: true },
        orderBy: { createdAt: 'asc' },
        take: 100,
      });
      for (const u of stale) {
        if (this.active.has(u.id)) continue;
        if (await this.fail(u, 'failed', 'abandoned')) swept++;
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
