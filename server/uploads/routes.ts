import type { Readable } from 'node:stream';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { AppError } from '../errors';
import type { ClientUpload } from '../generated/prisma/client';
import { errorResponses, Uuid } from '../http/schemas';
import { ChunkInterrupted, type UploadService } from './service';

/**
 * Uploads of recordings made in the browser, tus-like (see service.ts):
 *
 *   POST  /calls/:id/uploads  {file_name, mime_type, size_bytes, sha256} → 201 {upload_id, offset: 0, size_bytes, upload_url}
 *   HEAD  /uploads/:id        → upload-offset header (GET: the same as JSON)
 *   PATCH /uploads/:id        content-type: application/offset+octet-stream, upload-offset: n, the bytes
 *                             → 204 with upload-offset, or 200 {…, status: 'completed', recording_id} after the last byte
 */
export const OFFSET_OCTET_STREAM = 'application/offset+octet-stream';

const UploadParams = Type.Object({ id: Uuid }, { additionalProperties: false });

const CreateBody = Type.Object(
  {
    file_name: Type.String({ minLength: 1, maxLength: 255, description: 'The name on the client; stored sanitised, as metadata only' }),
    mime_type: Type.String({
      minLength: 3,
      maxLength: 100,
      description: 'One of UPLOAD_TYPES, parameters allowed: `video/webm;codecs=vp8,opus` (MediaRecorder.mimeType)',
    }),
    size_bytes: Type.Integer({ minimum: 1, description: 'The whole file; at most UPLOAD_MAX_BYTES' }),
    sha256: Type.String({ pattern: '^[0-9a-fA-F]{64}$', description: 'SHA-256 of the whole file, hex; checked when the last byte arrives' }),
  },
  { additionalProperties: false },
);

const Status = Type.Union([Type.Literal('uploading'), Type.Literal('completed'), Type.Literal('failed')]);

const CreatedOut = Type.Object({
  upload_id: Uuid,
  offset: Type.Integer(),
  size_bytes: Type.Integer(),
  upload_url: Type.String({ description: 'Where to HEAD and PATCH, relative to this server' }),
});

const UploadOut = Type.Object(
  {
    upload_id: Uuid,
    call_id: Uuid,
    offset: Type.Integer({ description: 'Bytes received: the next PATCH starts here' }),
    size_bytes: Type.Integer(),
    status: Status,
    recording_id: Type.Union([Uuid, Type.Null()], { description: 'The recording it became, once completed' }),
  },
  { title: 'ClientUpload' },
);

const CompletedOut = Type.Object({
  upload_id: Uuid,
  offset: Type.Integer(),
  status: Type.Literal('completed'),
  recording_id: Uuid,
});

const security: Array<Record<string, string[]>> = [{ apiKey: [] }, { bearerToken: [] }];

function uploadJson(u: ClientUpload): Static<typeof UploadOut> {
  return {
    upload_id: u.id,
    call_id: u.callId,
    offset: Number(u.receivedBytes),
    size_bytes: Number(u.sizeBytes),
    status: u.status as Static<typeof Status>,
    recording_id: u.recordingId,
  };
}

const offsetHeaders = (reply: FastifyReply, offset: number, size?: number): void => {
  void reply.header('upload-offset', String(offset)).header('cache-control', 'no-store');
  if (size !== undefined) void reply.header('upload-length', String(size));
};

const OFFSET = /^\d{1,16}$/;

export interface UploadRoutesOptions {
  uploads: UploadService;
}

export const uploadRoutes: FastifyPluginAsyncTypebox<UploadRoutesOptions> = async (app, { uploads }) => {
  const chunkMax = uploads.limits.chunkMaxBytes;

  // Chunks are streamed to disk by the handler: this parser hands over the raw
  // request stream, unread (no parseAs, so nothing is buffered). Registered in
  // this plugin only, so no other route accepts the type.
  app.addContentTypeParser(OFFSET_OCTET_STREAM, { bodyLimit: chunkMax }, (_request, payload, done) => {
    done(null, payload);
  });

  app.post(
    '/calls/:id/uploads',
    {
      schema: {
        tags: ['recordings'],
        summary: 'Start uploading a recording made in the browser',
        operationId: 'createUpload',
        description:
          "A token of a participant of the call (scoped to the call's room; the user must be or have been in the call), or the API key. " +
          'An ended call takes uploads for 1 h after its end. Then PATCH the bytes to upload_url (see the README, "Client-side recordings").',
        security,
        params: UploadParams,
        body: CreateBody,
        response: { 201: CreatedOut, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 503) },
      },
    },
    async (request, reply) => {
      const principal = app.authenticate(request);
      const b = request.body;
      const upload = await uploads.create(principal, request.params.id, {
        fileName: b.file_name,
        mimeType: b.mime_type,
        sizeBytes: b.size_bytes,
        sha256: b.sha256,
      });
      const url = `/uploads/${upload.id}`;
      offsetHeaders(reply, 0, Number(upload.sizeBytes));
      return reply
        .code(201)
        .header('location', url)
        .send({ upload_id: upload.id, offset: 0, size_bytes: Number(upload.sizeBytes), upload_url: url });
    },
  );

  // GET, and HEAD (Fastify derives it from GET: same headers, no body).
  app.get(
    '/uploads/:id',
    {
      schema: {
        tags: ['recordings'],
        summary: 'The offset to resume an upload from (HEAD: header upload-offset only)',
        operationId: 'getUploadOffset',
        description: 'Only the uploader (the same user) or the API key; anyone else gets 404.',
        security,
        params: UploadParams,
        response: { 200: UploadOut, ...errorResponses(400, 401, 404, 503) },
      },
    },
    async (request, reply) => {
      const upload = await uploads.get(app.authenticate(request), request.params.id);
      offsetHeaders(reply, Number(upload.receivedBytes), Number(upload.sizeBytes));
      return uploadJson(upload);
    },
  );

  app.patch(
    '/uploads/:id',
    {
      bodyLimit: chunkMax,
      schema: {
        tags: ['recordings'],
        summary: 'Append a chunk to an upload',
        operationId: 'appendUploadChunk',
        description:
          `Body: the bytes, \`content-type: ${OFFSET_OCTET_STREAM}\`, header \`upload-offset\` = the current offset (409 otherwise, with the current one). ` +
          'At most UPLOAD_CHUNK_MAX_BYTES per request. 204 with the new upload-offset; after the last byte the file is checked against sha256: ' +
          '200 with recording_id, or 422 CHECKSUM_MISMATCH (the upload failed, its bytes are deleted). A chunk cut short keeps what arrived: HEAD, then resume.',
        security,
        params: UploadParams,
        response: {
          200: CompletedOut,
          204: Type.Null({ description: 'Stored; header upload-offset is the new offset' }),
          ...errorResponses(400, 401, 404, 409, 410, 413, 415, 422, 503),
        },
      },
    },
    async (request, reply) => {
      const principal = app.authenticate(request);
      const ct = request.headers['content-type'];
      if (typeof ct !== 'string' || ct.split(';')[0]!.trim().toLowerCase() !== OFFSET_OCTET_STREAM) {
        throw new AppError('UNSUPPORTED_MEDIA_TYPE', `a chunk must be sent with content-type: ${OFFSET_OCTET_STREAM}`);
      }
      const offsetHeader = request.headers['upload-offset'];
      if (typeof offsetHeader !== 'string' || !OFFSET.test(offsetHeader.trim())) {
        throw new AppError('VALIDATION_FAILED', 'header upload-offset must be the current offset, a non-negative integer (HEAD the upload for it)');
      }
      const cl = request.headers['content-length'];
      const contentLength = cl === undefined ? undefined : Number(cl);
      // A declared body far too big is refused without reading it: close rather than drain it.
      if (contentLength !== undefined && contentLength > chunkMax) void reply.header('connection', 'close');
      const body = (request.body as Readable | undefined) ?? request.raw;
      try {
        const result = await uploads.writeChunk(principal, request.params.id, Number(offsetHeader.trim()), body, contentLength);
        offsetHeaders(reply, result.offset);
        if (!result.done) return await reply.code(204).send(null);
        return { upload_id: request.params.id, offset: result.offset, status: 'completed' as const, recording_id: result.recordingId };
      } catch (err) {
        if (err instanceof ChunkInterrupted) {
          // Usually nobody is left to read this: the client went away mid-chunk.
          offsetHeaders(reply, err.offset);
          throw new AppError('VALIDATION_FAILED', `the chunk ended early; ${err.offset} bytes are stored: resume from there`);
        }
        const offset = (err as AppError).details && ((err as AppError).details as { offset?: unknown }).offset;
        if (typeof offset === 'number') offsetHeaders(reply, offset);
        throw err;
      }
    },
  );
};
