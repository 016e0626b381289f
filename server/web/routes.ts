import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RoleSchema, withDefault } from '../protocol';
import { AppError } from '../errors';
import { errorResponses, RoomId } from '../http/schemas';
import { SECURITY } from '../http/openapi';

/**
 * The web client: the call page (/), the recordings admin page (/admin) and their
 * assets (/web/<file>), all from dist/web (built by `npm run build`), plus the
 * development token endpoint POST /dev/token.
 *
 * Only the files present in dist/web at start-up are served, looked up by exact
 * name in that list: nothing from the request ever becomes a path. The pages
 * carry a Content-Security-Policy that allows nothing outside this server.
 */

/** dist/web, found from this file in server/web/ (tests) or dist/server/web/ (the build). */
export const WEB_DIR = ((): string => {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'dist', 'web');
    if (existsSync(path.join(candidate, 'index.html'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve('dist', 'web');
    dir = parent;
  }
})();

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "connect-src 'self' ws: wss:",
  "media-src 'self' blob: mediastream:",
  "img-src 'self' data: blob:",
  "style-src 'self'",
  "script-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Assets are rebuilt in place under the same names: cache briefly, then revalidate. */
const ASSET_MAX_AGE_SECONDS = 300;
const DEV_TOKEN_TTL_SECONDS = 2 * 3600;

interface WebFile {
  file: string;
  type: string;
  html: boolean;
}

/** The servable files of `dir` (top level only, known extensions, plain names); empty when it does not exist. */
export function listWebFiles(dir: string): Map<string, WebFile> {
  const files = new Map<string, WebFile>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return files;
  }
  for (const name of names) {
    const ext = path.extname(name).toLowerCase();
    const type = TYPES[ext];
    if (!type || !SAFE_NAME.test(name) || name.includes('..')) continue;
    const file = path.join(dir, name);
    try {
      if (!statSync(file).isFile()) continue;
    } catch {
      continue;
    }
    files.set(name, { file, type, html: ext === '.html' });
  }
  return files;
}

/** "Ada Lovelace" → "ada-lovelace"; nothing usable → "user". */
export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return slug || 'user';
}

const DevTokenRequest = Type.Object(
  {
    display_name: Type.String({ minLength: 1, maxLength: 64, pattern: '\\S', description: 'Shown to the others' }),
    room: RoomId,
    role: Type.Optional(withDefault(RoleSchema, 'participant')),
  },
  { additionalProperties: false },
);

const DevTokenResponse = Type.Object({
  token: Type.String(),
  user_id: Type.String({ description: 'A slug of the name plus a random suffix' }),
  expires_at: Type.String({ format: 'date-time' }),
});

export interface WebRoutesOptions {
  /** Serve the pages and their assets (WEB_CLIENT). */
  pages: boolean;
  /** Register POST /dev/token (DEV_TOKENS); when false the route does not exist at all. */
  devTokens: boolean;
  /** TOKEN_MAX_TTL_SECONDS: dev tokens live 2 h, or less when that is lower. */
  maxTtlSeconds: number;
  /** Where the built client is; default dist/web. */
  dir?: string;
}

export const webRoutes: FastifyPluginAsyncTypebox<WebRoutesOptions> = async (app, opts) => {
  if (opts.pages) {
    const dir = opts.dir ?? WEB_DIR;
    const files = listWebFiles(dir);
    if (!files.has('index.html')) {
      app.log.warn({ dir }, 'the web client is not built (no index.html): / answers 503 until `npm run build` has run and the server restarts');
    }

    const send = async (reply: FastifyReply, name: string, ifNoneMatch: string | undefined): Promise<FastifyReply> => {
      const f = files.get(name);
      if (!f) throw new AppError('ROUTE_NOT_FOUND', `no file ${name}`);
      let body: Buffer;
      let etag: string;
      try {
        const s = await stat(f.file);
        etag = `W/"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}"`;
        body = await readFile(f.file);
      } catch {
        // Deleted since start-up (a rebuild in progress).
        throw new AppError('WEB_CLIENT_NOT_BUILT', `the web client file ${name} is missing; run \`npm run build\``);
      }
      void reply
        .header('content-type', f.type)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('etag', etag)
        .header('cache-control', f.html ? 'no-cache' : `public, max-age=${ASSET_MAX_AGE_SECONDS}`);
      if (f.html) {
        void reply
          .header('content-security-policy', CONTENT_SECURITY_POLICY)
          .header('x-frame-options', 'DENY')
          .header('permissions-policy', 'camera=(self), microphone=(self), display-capture=(self)');
      }
      if (ifNoneMatch !== undefined && ifNoneMatch.split(',').some((t) => t.trim() === etag)) return reply.code(304).send();
      return reply.send(body);
    };

    const page = (name: string) => async (request: FastifyRequest, reply: FastifyReply) => {
      if (!files.has(name)) {
        throw new AppError('WEB_CLIENT_NOT_BUILT');
      }
      const inm = request.headers['if-none-match'];
      return send(reply, name, typeof inm === 'string' ? inm : undefined);
    };

    const pageSchema = (summary: string, operationId: string) => ({
      tags: ['web'],
      summary,
      operationId,
      security: SECURITY.none,
      response: { 200: { description: 'The page', content: { 'text/html': { schema: { type: 'string' } } } }, ...errorResponses(503) },
    });
    app.get('/', { schema: pageSchema('The call page', 'getCallPage') }, page('index.html'));
    app.get('/admin', { schema: pageSchema('The recordings admin page', 'getAdminPage') }, page('admin.html'));

    app.get(
      '/web/config.json',
      {
        schema: {
          tags: ['web'],
          summary: "The web client's settings",
          operationId: 'getWebConfig',
          security: SECURITY.none,
          response: { 200: Type.Object({ devTokens: Type.Boolean({ description: 'POST /dev/token exists' }) }) },
        },
      },
      async (_request, reply) => {
        void reply.header('cache-control', 'no-cache');
        return { devTokens: opts.devTokens };
      },
    );

    app.get(
      '/web/:file',
      {
        schema: {
          tags: ['web'],
          summary: 'A script, style sheet or other file of the web client',
          operationId: 'getWebFile',
          security: SECURITY.none,
          params: Type.Object({ file: Type.String({ maxLength: 128 }) }),
          response: { 200: { description: 'The file', content: { '*/*': { schema: { type: 'string' } } } }, ...errorResponses(404) },
        },
      },
      async (request, reply) => {
        const name = request.params.file;
        // The pages themselves are served at / and /admin only (with their CSP).
        if (!files.get(name) || files.get(name)?.html) throw new AppError('ROUTE_NOT_FOUND', `no route GET /web/${name}`);
        const inm = request.headers['if-none-match'];
        return send(reply, name, typeof inm === 'string' ? inm : undefined);
      },
    );
  }

  if (opts.devTokens) {
    const ttlSeconds = Math.min(DEV_TOKEN_TTL_SECONDS, opts.maxTtlSeconds);
    app.post(
      '/dev/token',
      {
        schema: {
          tags: ['web'],
          summary: 'Development only: a token for anyone (DEV_TOKENS)',
          operationId: 'issueDevToken',
          security: SECURITY.none,
          description:
            'Mints a token for a made-up user, so that the web client works without a backend of your own. Exists only when DEV_TOKENS is on (never in production); otherwise 404.',
          body: DevTokenRequest,
          response: { 201: DevTokenResponse, ...errorResponses(400, 413, 415, 429) },
        },
      },
      async (request, reply) => {
        const b = request.body;
        const displayName = b.display_name.trim();
        const userId = `${slugify(displayName)}-${randomBytes(4).toString('hex')}`;
        const { token, claims } = app.tokens.issue({
          userId,
          displayName,
          room: b.room,
          role: b.role ?? 'participant',
          ttlSeconds,
        });
        return reply.status(201).send({ token, user_id: userId, expires_at: new Date(claims.exp * 1000).toISOString() });
      },
    );
  }
};
