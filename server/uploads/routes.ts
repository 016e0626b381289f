import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorCode } from '../errors';
import type { ClientUpload } from '../generated/prisma/client';
import { errorResponses, Uuid } from '../http/schemas';
import type { UploadService } from './service';
import { CHECKSUM_ALGORITHMS, createTus, tusContext, type TusContext } from './tus';

/**
 * Uploads of recordings made in the browser, over tus 1.0 (tus.ts):
 *
 *   OPTIONS /calls/:id/uploads, /uploads/:id   Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm
 *   POST    /calls/:id/uploads                 tus creation (Upload-Length or Upload-Defer-Length: 1, Upload-Metadata
 *                                              filename, filetype, sha256?; a body: creation-with-upload) → 201, Location /uploads/<id>
 *                                              (without Tus-Resumable: the JSON declaration, a convenience)
 *   HEAD    /uploads/:id                       Upload-Offset, Upload-Length (or Upload-Defer-Length), Upload-Expires
 *   PATCH   /uploads/:id                       Upload-Offset, the bytes, Upload-Checksum?, Upload-Length? → 204 Upload-Offset
 *   DELETE  /uploads/:id                       termination → 204
 *   GET     /uploads/:id                       the upload as JSON (not tus)
 */
export const OFFSET_OCTET_STREAM = 'application/offset+octet-stream';
const TUS_VERSION = '1.0.0';

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
    sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$', description: 'SHA-256 of the whole file, hex; checked when the last byte arrives' })),
  },
  { additionalProperties: false },
);

const Status = Type.Union([Type.Literal('uploading'), Type.Literal('completed'), Type.Literal('failed'), Type.Literal('terminated')]);

const CreatedOut = Type.Object({
  upload_id: Uuid,
  offset: Type.Integer(),
  size_bytes: Type.Integer(),
  upload_url: Type.String({ description: 'The tus upload URL (HEAD, PATCH, DELETE), relative to this server' }),
});

const UploadOut = Type.Object(
  {
    upload_id: Uuid,
    call_id: Uuid,
    offset: Type.Integer({ description: 'Bytes received: the next PATCH starts here' }),
    size_bytes: Type.Union([Type.Integer(), Type.Null()], { description: 'null while the length is deferred' }),
    status: Status,
    recording_id: Type.Union([Uuid, Type.Null()], { description: 'The recording it became, once completed' }),
  },
  { title: 'ClientUpload' },
);

const security: Array<Record<string, string[]>> = [{ apiKey: [] }, { bearerToken: [] }];
const h = (description: string) => Type.Optional(Type.String({ description }));
const TUS_RESUMABLE_IN = h('`1.0.0` (412 otherwise)');
const reqHeaders = (props: Record<string, ReturnType<typeof h>>) => Type.Object({ 'tus-resumable': TUS_RESUMABLE_IN, ...props });
const noBody = (description: string, headers: Record<string, string>) =>
  Type.Null({ description, headers: Object.fromEntries(Object.entries(headers).map(([k, d]) => [k, { type: 'string', description: d }])) });

function uploadJson(u: ClientUpload): Static<typeof UploadOut> {
  return {
    upload_id: u.id,
    call_id: u.callId,
    offset: Number(u.receivedBytes),
    size_bytes: u.sizeBytes === null ? null : Number(u.sizeBytes),
    status: u.status as Static<typeof Status>,
    recording_id: u.recordingId,
  };
}

/** tus's own (plain text) error answers get our JSON body; the status stays tus's. */
const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'VALIDATION_FAILED',
  403: 'VALIDATION_FAILED',
  404: 'UPLOAD_NOT_FOUND',
  409: 'UPLOAD_OFFSET_MISMATCH',
  410: 'UPLOAD_GONE',
  413: 'UPLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  460: 'UPLOAD_CHECKSUM_MISMATCH',
  507: 'INSUFFICIENT_STORAGE',
};

/** Connection-level headers are not the request's: they are not handed to tus. */
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect']);
const OFFSET = /^\d{1,16}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface UploadRoutesOptions {
  uploads: UploadService;
}

export const uploadRoutes: FastifyPluginAsyncTypebox<UploadRoutesOptions> = async (app, { uploads }) => {
  const tus = await createTus({ uploads, log: app.log });
  const chunkMax = uploads.limits.chunkMaxBytes;

  // tus reads the body itself: this parser hands it over unread. Registered in
  // this plugin only, so no other route accepts the type.
  app.addContentTypeParser(OFFSET_OCTET_STREAM, (_request, _payload, done) => done(null));

  /** Hands the request to @tus/server (inside its context) and sends its answer through Fastify (so CORS, logs and ids apply). */
  async function serveTus(request: FastifyRequest, reply: FastifyReply, c: TusContext): Promise<FastifyReply> {
    const headers = new Headers();
    for (const [k, v] of Object.entries(request.headers)) {
      if (v === undefined || HOP.has(k)) continue;
      for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
    }
    const hasBody = request.method === 'PATCH' || request.method === 'POST';
    const init = {
      method: request.method,
      headers,
      body: hasBody ? (Readable.toWeb(request.raw) as ReadableStream) : undefined,
      duplex: 'half',
    };
    const res = await tusContext.run(c, () => tus.server.handleWeb(new Request(`http://switchboard${request.url}`, init as RequestInit)));
    void reply.code(res.status);
    res.headers.forEach((v, k) => {
      // CORS is @fastify/cors's (CORS_ORIGINS), not tus's allow-all.
      if (k.startsWith('access-control-') || k === 'content-length' || k === 'content-type') return;
      void reply.header(k, v);
    });
    const text = res.status === 204 || request.method === 'HEAD' ? '' : await res.text();
    if (res.status < 400) return reply.send(text === '' ? undefined : text);
    if (res.status === 409 && c.uploadId !== undefined) {
      // Where to resume from (tus's own answer does not say).
      const offset = (await tus.server.datastore.getUpload(c.uploadId)).offset;
      void reply.header('upload-offset', String(offset));
      const given = String(request.headers['upload-offset']);
      return reply.send(new AppError('UPLOAD_OFFSET_MISMATCH', `Upload-Offset ${given} is not the current offset ${offset}; resume from ${offset}`).toJSON());
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      const code = CODE_BY_STATUS[res.status] ?? 'INTERNAL_ERROR';
      body = { error: { code, message: text.trim() || new AppError(code).message } };
    }
    return reply.type('application/json; charset=utf-8').send(body);
  }

  /** 412 unless Tus-Resumable: 1.0.0 (before anything else is looked at). */
  function requireTusVersion(request: FastifyRequest, reply: FastifyReply): void {
    void reply.header('tus-resumable', TUS_VERSION);
    const v = request.headers['tus-resumable'];
    if (v === TUS_VERSION) return;
    void reply.header('tus-version', TUS_VERSION);
    throw new AppError(
      'TUS_VERSION_UNSUPPORTED',
      v === undefined ? 'the header Tus-Resumable: 1.0.0 is required' : `Tus-Resumable ${String(v)} is not supported; this server speaks 1.0.0`,
    );
  }

  /** The upload of a HEAD, PATCH or DELETE: the caller's own, else 404; a finished one is answered here, not by tus. */
  async function uploadFor(request: FastifyRequest, reply: FastifyReply): Promise<(TusContext & { upload: ClientUpload }) | undefined> {
    requireTusVersion(request, reply);
    const principal = app.authenticate(request);
    const upload = await uploads.get(principal, (request.params as { id: string }).id);
    void reply.header('cache-control', 'no-store');
    if (upload.status === 'completed') {
      if (request.method !== 'HEAD') throw new AppError('UPLOAD_CLOSED', `upload ${upload.id} is completed: it is recording ${upload.recordingId}`);
      const size = String(upload.sizeBytes);
      void reply.header('upload-offset', size).header('upload-length', size).header('recording-id', upload.recordingId);
      await reply.code(200).send();
      return undefined;
    }
    if (upload.status !== 'uploading') throw new AppError('UPLOAD_GONE', `upload ${upload.id} is ${upload.status}; start a new upload`);
    return { principal, uploadId: upload.id, upload };
  }

  const tusOptions = (operationId: string, summary: string, description: string) => ({
    tags: ['recordings'],
    operationId,
    summary,
    description,
    params: UploadParams,
    response: {
      204: noBody('tus discovery', {
        'tus-version': '`1.0.0`',
        'tus-extension': 'creation,creation-with-upload,creation-defer-length,termination,expiration,checksum',
        'tus-max-size': 'UPLOAD_MAX_BYTES',
        'tus-checksum-algorithm': CHECKSUM_ALGORITHMS.join(','),
      }),
    },
  });
  const options = async (request: FastifyRequest, reply: FastifyReply) => {
    void reply.header('tus-checksum-algorithm', CHECKSUM_ALGORITHMS.join(','));
    return serveTus(request, reply, { principal: { kind: 'admin' } });
  };
  app.options(
    '/calls/:id/uploads',
    { schema: { ...tusOptions('getCallUploadOptions', 'tus: what this server supports', 'No credentials needed.'), security: [] } },
    options,
  );
  app.options(
    '/uploads/:id',
    { schema: { ...tusOptions('getUploadOptions', 'tus: what this server supports', 'No credentials needed.'), security: [] } },
    options,
  );

  app.post(
    '/calls/:id/uploads',
    {
      // A tus creation has no JSON body: it is served before the body schema applies.
      preValidation: async (request, reply) => {
        if (request.headers['tus-resumable'] === undefined) return;
        requireTusVersion(request, reply);
        const callId = (request.params as { id: string }).id;
        if (!UUID.test(callId)) throw new AppError('VALIDATION_FAILED', 'params/id must be a UUID');
        const principal = app.authenticate(request);
        const cl = Number(request.headers['content-length'] ?? 0);
        if (cl > chunkMax) {
          void reply.header('connection', 'close');
          throw new AppError('BODY_TOO_LARGE', `a request may carry at most ${chunkMax} bytes (UPLOAD_CHUNK_MAX_BYTES)`);
        }
        await serveTus(request, reply, { principal, callId });
      },
      schema: {
        tags: ['recordings'],
        summary: 'Create an upload of a recording made in the browser (tus creation, or a JSON declaration)',
        operationId: 'createUpload',
        description:
          "A token of a participant of the call (scoped to the call's room; the user must be or have been in the call), or the API key. " +
          'An ended call takes uploads for 1 h after its end. **tus** (with `Tus-Resumable: 1.0.0`): `Upload-Length` (or `Upload-Defer-Length: 1`), ' +
          '`Upload-Metadata` with `filename`, `filetype` (one of UPLOAD_TYPES) and optionally `sha256` (hex, of the whole file); a body ' +
          '(`content-type: application/offset+octet-stream`) is the first chunk (creation-with-upload). → 201 with `Location: /uploads/<id>`. ' +
          'Without `Tus-Resumable`: the JSON declaration below → 201 JSON. Over UPLOAD_QUOTA_BYTES for the call: 413 `UPLOAD_QUOTA_EXCEEDED`; ' +
          'not enough free disk: 507 `INSUFFICIENT_STORAGE`. See the README, "Client-side recordings".',
        security,
        params: UploadParams,
        headers: Type.Object({
          'tus-resumable': h('`1.0.0` for a tus creation; absent for the JSON declaration'),
          'upload-length': h('tus: the whole length, at most UPLOAD_MAX_BYTES'),
          'upload-defer-length': h('tus: `1` when the length is not known yet (declared by a later PATCH)'),
          'upload-metadata': h('tus: `filename <base64>,filetype <base64>[,sha256 <base64 of the hex digest>]`'),
        }),
        body: CreateBody,
        response: {
          201: Type.Object(CreatedOut.properties, {
            description: 'Created. tus: empty body, headers Location, Tus-Resumable, Upload-Offset (creation-with-upload), Upload-Expires',
            headers: { location: { type: 'string' }, 'upload-expires': { type: 'string' } },
          }),
          ...errorResponses(400, 401, 403, 404, 409, 412, 413, 415, 503, 507),
        },
      },
    },
    async (request, reply) => {
      const principal = app.authenticate(request);
      const b = request.body;
      const id = await tus.declare(principal, request.params.id, {
        fileName: b.file_name,
        mimeType: b.mime_type,
        sizeBytes: b.size_bytes,
        sha256: b.sha256 ?? null,
      });
      const url = `/uploads/${id}`;
      return reply
        .code(201)
        .header('location', url)
        .header('tus-resumable', TUS_VERSION)
        .header('upload-offset', '0')
        .header('upload-length', String(b.size_bytes))
        .send({ upload_id: id, offset: 0, size_bytes: b.size_bytes, upload_url: url });
    },
  );

  app.get(
    '/uploads/:id',
    {
      exposeHeadRoute: false,
      schema: {
        tags: ['recordings'],
        summary: 'An upload as JSON: offset, status, the recording it became',
        description: 'Only the uploader (the same user) or the API key; anyone else gets 404. Not part of tus (HEAD is).',
        operationId: 'getUpload',
        security,
        params: UploadParams,
        response: { 200: UploadOut, ...errorResponses(400, 401, 404, 503) },
      },
    },
    async (request, reply) => {
      const upload = await uploads.get(app.authenticate(request), request.params.id);
      void reply.header('upload-offset', String(upload.receivedBytes)).header('cache-control', 'no-store');
      return uploadJson(upload);
    },
  );

  app.head(
    '/uploads/:id',
    {
      // A tus request of its own: in the OpenAPI document (derived HEADs are not).
      config: { swagger: { exposeHeadRoute: true } },
      schema: {
        tags: ['recordings'],
        summary: 'tus: the offset to resume an upload from',
        operationId: 'getUploadOffset',
        description:
          'Only the uploader (the same user) or the API key; anyone else gets 404. A completed upload answers its length as offset and `Recording-Id`; ' +
          'a terminated, failed or expired one 410.',
        security,
        params: UploadParams,
        headers: reqHeaders({}),
        response: {
          200: noBody('Where to resume', {
            'upload-offset': 'bytes stored',
            'upload-length': 'the whole length (absent while deferred)',
            'upload-defer-length': '`1` while the length is deferred',
            'upload-expires': 'when an unfinished upload is deleted',
            'recording-id': 'the recording it became, once completed',
          }),
          ...errorResponses(401, 404, 410, 412, 503),
        },
      },
    },
    async (request, reply) => {
      const c = await uploadFor(request, reply);
      if (!c) return reply;
      await serveTus(request, reply, c);
      // All bytes there but not finished (the server stopped in between): finish now.
      const offset = reply.getHeader('upload-offset');
      if (reply.statusCode === 200 && offset !== undefined && offset === reply.getHeader('upload-length')) {
        void reply.header('recording-id', await uploads.finish(c.uploadId!));
      }
      return reply;
    },
  );

  app.patch(
    '/uploads/:id',
    {
      schema: {
        tags: ['recordings'],
        summary: 'tus: append a chunk to an upload',
        operationId: 'appendUploadChunk',
        description:
          `Body: the bytes, \`content-type: ${OFFSET_OCTET_STREAM}\`, at most UPLOAD_CHUNK_MAX_BYTES. \`Upload-Offset\` must be the current offset (409 otherwise; HEAD for it). ` +
          '`Upload-Checksum: <algorithm> <base64 digest>` (checksum extension): a mismatch answers 460 and keeps nothing of this chunk. ' +
          '`Upload-Length` declares a deferred length. After the last byte the file is checked against the declared `sha256` ' +
          '(422 `CHECKSUM_MISMATCH`: the upload failed, its bytes are deleted) and becomes a recording (`Recording-Id`). A chunk cut short keeps what arrived: HEAD, then resume.',
        security,
        params: UploadParams,
        headers: reqHeaders({
          'upload-offset': h('the current offset'),
          'upload-checksum': h('`sha256 <base64>` (also sha1, sha512, md5)'),
          'upload-length': h('declares a deferred length'),
        }),
        consumes: [OFFSET_OCTET_STREAM],
        // Not validated (tus reads the stream): described for OpenAPI only.
        body: Type.Unsafe({ description: 'the bytes (binary)' }),
        response: {
          204: noBody('Stored', {
            'upload-offset': 'the new offset',
            'upload-expires': 'when an unfinished upload is deleted',
            'recording-id': 'after the last byte',
          }),
          ...errorResponses(400, 401, 404, 409, 410, 412, 413, 415, 422, 460, 503, 507),
        },
      },
    },
    async (request, reply) => {
      const c = await uploadFor(request, reply);
      if (!c) return reply;
      const ct = request.headers['content-type'];
      if (typeof ct !== 'string' || ct.split(';')[0]!.trim().toLowerCase() !== OFFSET_OCTET_STREAM) {
        throw new AppError('UNSUPPORTED_MEDIA_TYPE', `a chunk must be sent with content-type: ${OFFSET_OCTET_STREAM}`);
      }
      const offset = request.headers['upload-offset'];
      if (typeof offset !== 'string' || !OFFSET.test(offset)) {
        throw new AppError('VALIDATION_FAILED', 'header Upload-Offset must be the current offset, a non-negative integer (HEAD the upload for it)');
      }
      const cl = request.headers['content-length'] === undefined ? undefined : Number(request.headers['content-length']);
      if (cl !== undefined && cl > chunkMax) {
        void reply.header('connection', 'close');
        throw new AppError('BODY_TOO_LARGE', `a request may carry at most ${chunkMax} bytes (UPLOAD_CHUNK_MAX_BYTES)`);
      }
      const sum = request.headers['upload-checksum'];
      if (sum !== undefined) {
        const m = /^([a-z0-9-]+) ([A-Za-z0-9+/]+={0,2})$/.exec(String(sum).trim());
        if (!m || !CHECKSUM_ALGORITHMS.includes(m[1]!)) {
          throw new AppError('VALIDATION_FAILED', `Upload-Checksum must be "<algorithm> <base64 digest>" with one of ${CHECKSUM_ALGORITHMS.join(', ')}`);
        }
        c.checksum = { algorithm: m[1]!, digest: Buffer.from(m[2]!, 'base64') };
      }
      await uploads.admitChunk(c.upload, cl ?? 0);
      return serveTus(request, reply, c);
    },
  );

  app.delete(
    '/uploads/:id',
    {
      schema: {
        tags: ['recordings'],
        summary: 'tus: terminate an upload (its bytes are deleted)',
        operationId: 'terminateUpload',
        description: 'Only the uploader or the API key. A completed upload is a recording: 409 `UPLOAD_CLOSED` (DELETE /recordings/:id removes it).',
        security,
        params: UploadParams,
        headers: reqHeaders({}),
        response: { 204: noBody('Terminated', { 'tus-resumable': '`1.0.0`' }), ...errorResponses(401, 404, 409, 410, 412, 503) },
      },
    },
    async (request, reply) => {
      const c = await uploadFor(request, reply);
      if (!c) return reply;
      return serveTus(request, reply, c);
    },
  );
};
