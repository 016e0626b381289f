import path from 'node:path';
import { Readable } from 'node:stream';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger } from 'fastify';
import type { Principal } from '../auth/roles';
import type { CallAccess } from '../calls/access';
import { AppError } from '../errors';
import { RECORDING_FILE_STATUSES } from '../protocol';
import { Prisma, type PrismaClient, type Recording } from '../generated/prisma/client';
import { errorResponses, PAGE_LIMIT_DEFAULT, PageLimit, RoomId, Uuid } from '../http/schemas';
import { SECURITY } from '../http/openapi';
import { fileEtag, ifRangeAllows, openRecordingFile, parseRange, removeRecordingFile, UnsafePathError } from './files';

/**
 * The admin REST API over recorded files: list, read, download (with HTTP
 * Range) and delete. The file served or deleted is always the row's file_path
 * under RECORDINGS_DIR, never anything from the request, and files.ts refuses
 * any path that would leave that directory.
 *
 * Who may: the API key, everything; a host token, the recordings of calls in
 * its own room; nobody else (403).
 */
export const RECORDING_STATUSES = RECORDING_FILE_STATUSES;
export const RECORDING_KINDS = ['participant', 'composite', 'client'] as const;

const Status = Type.Union(
  RECORDING_STATUSES.map((s) => Type.Literal(s)),
  {
    description:
      'recording: being written; completed; failed; empty: nothing was recorded; interrupted: cut short (its ffmpeg died, or the server crashed) and repaired, playable up to then',
  },
);
const Kind = Type.Union(
  RECORDING_KINDS.map((k) => Type.Literal(k)),
  {
    description:
      "participant: one participant's audio and video; composite: everyone mixed; client: recorded in a participant's browser and uploaded (session_id is the upload id)",
  },
);
const Timestamp = Type.String({ format: 'date-time' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

const RecordingOut = Type.Object(
  {
    id: Uuid,
    call_id: Uuid,
    session_id: Type.String({ format: 'uuid', description: 'The recording session (recording_id of the signaling events)' }),
    participant_id: Nullable(Uuid),
    kind: Kind,
    segment: Type.Integer({ minimum: 0, description: '0, then 1, 2, … when the recorder had to restart' }),
    status: Status,
    mime_type: Type.String(),
    codec: Nullable(Type.String()),
    size_bytes: Nullable(Type.Integer()),
    duration_ms: Nullable(Type.Integer()),
    started_at: Timestamp,
    ended_at: Nullable(Timestamp),
    error: Nullable(Type.String()),
    file_path: Type.String({ description: 'Relative to RECORDINGS_DIR' }),
    download_url: Type.String({ description: 'Path of the download endpoint, relative to this server' }),
  },
  { $id: 'Recording', title: 'Recording' },
);

const RecordingParams = Type.Object({ id: Uuid }, { additionalProperties: false });
const ListQuery = Type.Object(
  {
    call_id: Type.Optional(Uuid),
    session_id: Type.Optional(Uuid),
    room_id: Type.Optional(RoomId),
    status: Type.Optional(Status),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'started_at at or after this instant' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'started_at before this instant' })),
    limit: PageLimit,
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

const FileSchema = Type.Unsafe<Readable>({ type: 'string', format: 'binary' });
const fileResponse = (description: string) => ({
  description,
  content: Object.fromEntries(['video/webm', 'audio/webm', 'video/mp4', 'audio/mp4', 'audio/ogg'].map((t) => [t, { schema: FileSchema }])),
});

const security = SECURITY.apiKeyOrToken;

/** Throws a 403 unless `principal` may manage the recordings of a call in `roomId` (undefined: any room it may see). */
export function authorizeRecording(principal: Principal, roomId: string | undefined): void {
  if (principal.kind === 'admin') return;
  if (principal.room === undefined) throw new AppError('FORBIDDEN', 'this token is not scoped to a room');
  if (principal.role !== 'host') throw new AppError('FORBIDDEN', `a ${principal.role} may not access recordings`);
  if (roomId !== undefined && roomId !== principal.room) throw new AppError('ROOM_SCOPE_MISMATCH');
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

function recordingJson(r: Recording): Static<typeof RecordingOut> {
  return {
    id: r.id,
    call_id: r.callId,
    session_id: r.sessionId,
    participant_id: r.participantId,
    kind: r.kind as Static<typeof Kind>,
    segment: r.segment,
    status: r.status as Static<typeof Status>,
    mime_type: r.mimeType,
    codec: r.codec,
    size_bytes: r.sizeBytes === null ? null : Number(r.sizeBytes),
    duration_ms: r.durationMs,
    started_at: r.startedAt.toISOString(),
    ended_at: iso(r.endedAt),
    error: r.error,
    file_path: r.filePath,
    download_url: `/recordings/${r.id}/download`,
  };
}

/** `<call>-<participant|composite>-<segment>.<ext>`: only UUIDs, digits and a short extension, so it needs no quoting. */
export function downloadFilename(r: Pick<Recording, 'callId' | 'participantId' | 'kind' | 'segment' | 'filePath'>): string {
  const who = r.kind === 'composite' ? 'composite' : (r.participantId ?? 'participant');
  const ext = path.extname(r.filePath).slice(1).toLowerCase();
  return `${r.callId}-${who}-${r.segment}.${/^[a-z0-9]{1,8}$/.test(ext) ? ext : 'webm'}`;
}

// ---- keyset pagination on (started_at desc, id desc) ----
// started_at has microsecond precision in the database (its default is the
// database clock), more than a JS Date holds, so the cursor carries the
// database's own text of it and the page query compares in SQL.
const CURSOR_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Cursor {
  at: string;
  id: string;
}

const encodeCursor = (c: Cursor): string => Buffer.from(JSON.stringify([c.at, c.id])).toString('base64url');

function decodeCursor(s: string): Cursor {
  try {
    const [at, id] = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof at !== 'string' || !CURSOR_TS.test(at) || typeof id !== 'string' || !UUID_RE.test(id)) throw new Error('bad');
    return { at, id };
  } catch {
    throw new AppError('INVALID_CURSOR');
  }
}

/** An instant as text for a `timestamp` (without time zone) column, which stores UTC. */
const utcTimestamp = (isoDateTime: string): string => new Date(isoDateTime).toISOString().slice(0, -1);

interface ListFilter {
  callId?: string;
  sessionId?: string;
  roomId?: string;
  status?: string;
  from?: string;
  to?: string;
  limit: number;
  cursor?: string;
}

async function listRecordings(prisma: PrismaClient, q: ListFilter): Promise<{ items: Recording[]; nextCursor: string | null }> {
  const conds: Prisma.Sql[] = [];
  if (q.callId) conds.push(Prisma.sql`r.call_id = ${q.callId}::uuid`);
  if (q.sessionId) conds.push(Prisma.sql`r.session_id = ${q.sessionId}::uuid`);
  if (q.roomId) conds.push(Prisma.sql`c.room_id = ${q.roomId}`);
  if (q.status) conds.push(Prisma.sql`r.status = ${q.status}`);
  if (q.from) conds.push(Prisma.sql`r.started_at >= ${utcTimestamp(q.from)}::timestamp`);
  if (q.to) conds.push(Prisma.sql`r.started_at < ${utcTimestamp(q.to)}::timestamp`);
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    conds.push(Prisma.sql`(r.started_at, r.id) < (${c.at}::timestamp, ${c.id}::uuid)`);
  }
  const where = conds.length > 0 ? Prisma.sql`WHERE ${Prisma.join(conds, ' AND ')}` : Prisma.empty;
  const keys = await prisma.$queryRaw<Array<{ id: string; at: string }>>`
    SELECT r.id::text AS id, to_char(r.started_at, 'YYYY-MM-DD"T"HH24:MI:SS.US') AS at
    FROM recordings r JOIN calls c ON c.id = r.call_id
    ${where}
    ORDER BY r.started_at DESC, r.id DESC
    LIMIT ${q.limit + 1}::int`;
  const page = keys.slice(0, q.limit);
  const rows = page.length > 0 ? await prisma.recording.findMany({ where: { id: { in: page.map((k) => k.id) } } }) : [];
  const byId = new Map(rows.map((r) => [r.id, r]));
  // A row deleted between the two queries is simply left out.
  const items = page.map((k) => byId.get(k.id)).filter((r): r is Recording => r !== undefined);
  const last = page[page.length - 1];
  return { items, nextCursor: keys.length > q.limit && last ? encodeCursor(last) : null };
}

function pathRefused(log: FastifyBaseLogger, r: Recording, err: UnsafePathError): AppError {
  log.error({ recordingId: r.id, filePath: r.filePath, reason: err.message }, 'recording file path refused');
  return new AppError('RECORDING_PATH_INVALID', `recording ${r.id} has a stored file path outside the recordings directory; it is not served`);
}

export interface RecordingRoutesOptions {
  prisma: PrismaClient;
  /** Absolute; file_path values are relative to it. */
  recordingsDir: string;
  /** The caller's current role in the room (a demoted host loses access). */
  access: CallAccess;
}

export const recordingRoutes: FastifyPluginAsyncTypebox<RecordingRoutesOptions> = async (app, { prisma, recordingsDir, access }) => {
  app.addSchema(RecordingOut);

  /** The recording, if `principal` may manage it: 403 before any lookup for tokens that never may, then 404, then room scope. */
  async function loadAuthorized(principal: Principal, id: string): Promise<Recording> {
    authorizeRecording(principal, undefined);
    const found = await prisma.recording.findUnique({ where: { id }, include: { call: { select: { roomId: true } } } });
    if (!found) throw new AppError('RECORDING_NOT_FOUND', `no recording ${id}`);
    authorizeRecording(principal, found.call.roomId);
    authorizeRecording(await access.current(principal, found.call.roomId, found.callId), found.call.roomId);
    const { call: _call, ...recording } = found;
    return recording;
  }

  app.get(
    '/recordings',
    {
      schema: {
        tags: ['recordings'],
        summary: 'List recorded files, newest first',
        operationId: 'listRecordings',
        description:
          'API key: all recordings. A host token: the recordings of calls in its room. Filters combine; `from` is inclusive, `to` exclusive, both on started_at. Paginate with next_cursor.',
        security,
        querystring: ListQuery,
        response: {
          200: Type.Object({ items: Type.Array(Type.Ref('Recording')), next_cursor: Type.Union([Type.String(), Type.Null()]) }),
          ...errorResponses(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const principal = app.authenticate(request);
      const q = request.query;
      authorizeRecording(principal, q.room_id);
      if (principal.kind === 'user') authorizeRecording(await access.current(principal, principal.room), principal.room);
      const roomId = principal.kind === 'user' ? principal.room : q.room_id;
      const page = await listRecordings(prisma, {
        callId: q.call_id,
        sessionId: q.session_id,
        roomId,
        status: q.status,
        from: q.from,
        to: q.to,
        limit: q.limit ?? PAGE_LIMIT_DEFAULT,
        cursor: q.cursor,
      });
      return { items: page.items.map(recordingJson), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/recordings/:id',
    {
      schema: {
        tags: ['recordings'],
        summary: 'Get one recorded file',
        operationId: 'getRecording',
        security,
        params: RecordingParams,
        response: { 200: Type.Ref('Recording'), ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request) => recordingJson(await loadAuthorized(app.authenticate(request), request.params.id)),
  );

  app.get(
    '/recordings/:id/download',
    {
      schema: {
        tags: ['recordings'],
        summary: 'Download a recorded file',
        operationId: 'downloadRecording',
        description:
          'The file, with its mime_type as content-type. Supports one byte range (`Range: bytes=a-b`, `bytes=a-`, `bytes=-n`) with 206, and If-Range against the ETag or Last-Modified; several ranges get the whole file. 409 while the file is still being written; 410 when the file is gone.',
        security,
        params: RecordingParams,
        response: {
          200: fileResponse('The whole file'),
          206: fileResponse('The requested byte range'),
          ...errorResponses(400, 401, 403, 404, 409, 410, 416, 500, 503),
        },
      },
    },
    async (request, reply) => {
      const rec = await loadAuthorized(app.authenticate(request), request.params.id);
      if (rec.status === 'recording') throw new AppError('RECORDING_IN_PROGRESS', `recording ${rec.id} is still being written`);
      let opened;
      try {
        opened = await openRecordingFile(recordingsDir, rec.filePath);
      } catch (err) {
        if (err instanceof UnsafePathError) throw pathRefused(request.log, rec, err);
        throw err;
      }
      if (!opened) throw new AppError('FILE_MISSING', `the file of recording ${rec.id} is missing`);

      const { handle, size, mtime } = opened;
      let handedOver = false;
      try {
        const etag = fileEtag(size, mtime);
        const lastModified = mtime.toUTCString();
        let range = parseRange(request.headers.range, size);
        const ifRange = request.headers['if-range'];
        if (range.type !== 'full' && !ifRangeAllows(typeof ifRange === 'string' ? ifRange : undefined, etag, lastModified)) range = { type: 'full' };
        void reply.header('accept-ranges', 'bytes').header('etag', etag).header('last-modified', lastModified);
        if (range.type === 'unsatisfiable') {
          void reply.header('content-range', `bytes */${size}`);
          throw new AppError('RANGE_NOT_SATISFIABLE', `the range is outside the file (${size} bytes)`);
        }
        const [start, end] = range.type === 'partial' ? [range.start, range.end] : [0, size - 1];
        if (range.type === 'partial') void reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
        void reply
          .type(rec.mimeType)
          .header('content-length', String(end - start + 1))
          .header('content-disposition', `attachment; filename="${downloadFilename(rec)}"`)
          .header('cache-control', 'private, no-cache')
          .header('x-content-type-options', 'nosniff');
        if (request.method === 'HEAD' || end < start) {
          // An empty stream, not an empty body: Fastify would otherwise set content-length to 0.
          return await reply.send(Readable.from([]));
        }
        const stream = handle.createReadStream({ start, end, autoClose: true });
        handedOver = true;
        return await reply.send(stream);
      } finally {
        if (!handedOver) await handle.close().catch(() => undefined);
      }
    },
  );

  app.delete(
    '/recordings/:id',
    {
      schema: {
        tags: ['recordings'],
        summary: 'Delete a recorded file and its row',
        operationId: 'deleteRecording',
        description:
          '409 while the file is still being written. A file already gone is not an error. A stored path outside RECORDINGS_DIR is never touched: only the row is deleted.',
        security,
        params: RecordingParams,
        response: { 204: Type.Null({ description: 'Deleted' }), ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const rec = await loadAuthorized(app.authenticate(request), request.params.id);
      if (rec.status === 'recording') throw new AppError('RECORDING_IN_PROGRESS', `recording ${rec.id} is still being written`);
      try {
        await removeRecordingFile(recordingsDir, rec.filePath);
      } catch (err) {
        if (!(err instanceof UnsafePathError)) throw err;
        request.log.warn({ recordingId: rec.id, filePath: rec.filePath, reason: err.message }, 'recording file path refused; deleting the row only');
      }
      const { count } = await prisma.recording.deleteMany({ where: { id: rec.id, status: { not: 'recording' } } });
      if (count === 0) {
        const still = await prisma.recording.findUnique({ where: { id: rec.id }, select: { status: true } });
        if (still) throw new AppError('RECORDING_IN_PROGRESS', `recording ${rec.id} is being written again`);
        throw new AppError('RECORDING_NOT_FOUND', `no recording ${rec.id}`);
      }
      return reply.code(204).send(null);
    },
  );
};
