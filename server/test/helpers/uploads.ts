import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import * as tus from 'tus-js-client';
import { admin, bearer, issueToken, startTestApp, type TestApp } from './app';
import { listen } from './signaling';

/**
 * Uploads of client-side recordings over a real socket (streaming needs one,
 * not inject), on PostgreSQL: the app, a call of room up-a with its
 * participants' tokens, and the requests of the upload protocol.
 */
type Headers = Record<string, string>;
export interface Res {
  status: number;
  headers: globalThis.Headers;
  body: any;
}

export const OCTET = 'application/offset+octet-stream';
/** The tus version header every tus request carries. */
export const TUS = { 'tus-resumable': '1.0.0' };
export const KB = 1024;
export const MB = 1024 * 1024;
export const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Uploads `input` with tus-js-client to `endpoint` (or resumes options.uploadUrl);
 * resolves when it succeeded, with the upload URL, how many requests carried
 * bytes, and the offset the first of them started at.
 */
export function tusUpload(
  endpoint: string,
  input: Buffer | Readable,
  options: tus.UploadOptions = {},
): Promise<{ url: string; chunks: number; firstOffset: number | undefined }> {
  let chunks = 0;
  let firstOffset: number | undefined;
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(input, {
      endpoint,
      retryDelays: [],
      ...options,
      onBeforeRequest: async (req) => {
        const carries = req.getMethod() === 'PATCH' || (req.getMethod() === 'POST' && req.getHeader('Content-Type') === OCTET);
        if (carries) {
          chunks++;
          firstOffset ??= Number(req.getHeader('Upload-Offset') ?? 0);
        }
        await options.onBeforeRequest?.(req);
      },
      onError: reject,
      onSuccess: () => resolve({ url: upload.url!, chunks, firstOffset }),
    });
    upload.start();
  });
}

export interface UploadsApp {
  t: TestApp;
  base: string;
  /** Room up-a: alice and bob took part. */
  callA: string;
  /** Alice's participant row in callA. */
  aliceP: string;
  alice: string;
  bob: string;
  /** A token of room up-a whose user was never in the call. */
  carol: string;
  /** Alice, with a token of room up-b. */
  aliceOtherRoom: string;
  api(method: string, url: string, o?: { headers?: Headers; json?: unknown; body?: Buffer }): Promise<Res>;
  /** POST /calls/:id/uploads for `file` (token null: the API key). */
  declare(callId: string, token: string | null, file: Buffer, extra?: Record<string, unknown>): Promise<Res>;
  /** declare, expecting 201; the upload id. */
  create(callId: string, token: string | null, file: Buffer, extra?: Record<string, unknown>): Promise<string>;
  patch(id: string, token: string | null, offset: number, chunk: Buffer, extra?: Headers): Promise<Res>;
  head(id: string, token: string | null): Promise<{ status: number; offset: number }>;
  /** PATCHes `file` from `from` in chunks of `chunk` bytes; returns the last response (or the first that is not 204). */
  sendAll(id: string, token: string | null, file: Buffer, from: number, chunk?: number): Promise<Res>;
  /** The absolute path of a file under RECORDINGS_DIR. */
  absOf(rel: string): string;
  row(id: string): ReturnType<TestApp['db']['prisma']['clientUpload']['findUniqueOrThrow']>;
}

/** The app and call of an uploads test file, started before its tests and closed after them. */
export function useUploadsApp(): UploadsApp {
  const auth = (token: string | null): Headers => (token === null ? admin : bearer(token));
  const u: UploadsApp = {
    t: undefined as unknown as TestApp,
    base: '',
    callA: '',
    aliceP: '',
    alice: '',
    bob: '',
    carol: '',
    aliceOtherRoom: '',
    async api(method, url, o = {}) {
      const headers: Headers = { ...(o.headers ?? {}) };
      let body: BodyInit | undefined;
      if (o.json !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(o.json);
      } else if (o.body !== undefined) body = new Uint8Array(o.body);
      const res = await fetch(u.base + url, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text === '' ? null : JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: res.status, headers: res.headers, body: parsed };
    },
    declare(callId, token, file, extra = {}) {
      return u.api('POST', `/calls/${callId}/uploads`, {
        headers: auth(token),
        json: { file_name: 'my-recording.webm', mime_type: 'video/webm;codecs=vp8,opus', size_bytes: file.length, sha256: sha(file), ...extra },
      });
    },
    async create(callId, token, file, extra = {}) {
      const res = await u.declare(callId, token, file, extra);
      expect(res.status).toBe(201);
      return res.body.upload_id as string;
    },
    patch: (id, token, offset, chunk, extra = {}) =>
      u.api('PATCH', `/uploads/${id}`, { headers: { ...auth(token), ...TUS, 'content-type': OCTET, 'upload-offset': String(offset), ...extra }, body: chunk }),
    async head(id, token) {
      const res = await fetch(`${u.base}/uploads/${id}`, { method: 'HEAD', headers: { ...auth(token), ...TUS } });
      return { status: res.status, offset: Number(res.headers.get('upload-offset')) };
    },
    async sendAll(id, token, file, from, chunk = MB) {
      let offset = from;
      let last: Res | undefined;
      while (offset < file.length) {
        const piece = file.subarray(offset, Math.min(file.length, offset + chunk));
        last = await u.patch(id, token, offset, piece);
        if (last.status !== 204) return last;
        expect(Number(last.headers.get('upload-offset'))).toBe(offset + piece.length);
        offset += piece.length;
      }
      return last!;
    },
    absOf: (rel) => path.join(u.t.config.recordingsDir, rel),
    row: (id) => u.t.db.prisma.clientUpload.findUniqueOrThrow({ where: { id } }),
  };
  beforeAll(async () => {
    const t = (u.t = await startTestApp('postgres'));
    u.base = await listen(t);
    u.callA = (await u.api('POST', '/calls', { headers: admin, json: { room_id: 'up-a' } })).body.id;
    u.aliceP = (await t.db.prisma.participant.create({ data: { callId: u.callA, userId: 'alice', role: 'participant' } })).id;
    await t.db.prisma.participant.create({ data: { callId: u.callA, userId: 'bob', role: 'participant' } });
    u.alice = await issueToken(t, { user_id: 'alice', room: 'up-a' });
    u.bob = await issueToken(t, { user_id: 'bob', room: 'up-a' });
    u.carol = await issueToken(t, { user_id: 'carol', room: 'up-a' });
    u.aliceOtherRoom = await issueToken(t, { user_id: 'alice', room: 'up-b' });
  });
  afterAll(async () => {
    await u.t?.close();
  });
  return u;
}
