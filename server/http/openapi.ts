import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';

/**
 * The OpenAPI document (served at /docs/json, with Swagger UI at /docs), configured
 * here once. Routes describe themselves in their schema: `operationId` (camelCase,
 * unique) and `security` (one of SECURITY below; `[]` for public routes) on every
 * route, `tags` from TAGS. server/test/openapi-lint.test.ts lints the live document
 * with @redocly/cli, and openapi-client.test.ts compiles a typed client for it.
 */

/** The security requirements routes use; `none` marks a public route explicitly. */
export const SECURITY = {
  none: [] as Array<Record<string, string[]>>,
  apiKey: [{ apiKey: [] }] as Array<Record<string, string[]>>,
  apiKeyOrToken: [{ apiKey: [] }, { bearerToken: [] }] as Array<Record<string, string[]>>,
};

const TAGS = [
  { name: 'auth', description: 'Tokens for your users (issued with the API key) and the public keys that verify them (JWKS)' },
  { name: 'calls', description: 'Call rooms: create, list, read and end them; ring users in; history; inbox messages' },
  { name: 'recordings', description: 'Server-side recording of a call, the recorded files, and uploads of recordings made in browsers' },
  { name: 'webhooks', description: 'The webhook outbox: deliveries and their retries' },
  { name: 'health', description: 'Liveness, readiness and Prometheus metrics, for probes and monitoring' },
  { name: 'web', description: 'The bundled web client (call page, recordings admin page) and its development token endpoint' },
];

export interface OpenApiOptions {
  /** PUBLIC_URL: the document's server; unset: relative ("/"). */
  publicUrl: string | undefined;
  /** The REST rate limit is on (RATE_LIMIT_MAX > 0): rate-limited routes document 429. */
  rateLimited: boolean;
}

export async function registerOpenApi(app: FastifyInstance, { publicUrl, rateLimited }: OpenApiOptions): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Switchboard API',
        version: '0.1.0',
        description: 'WebRTC call backend: tokens, calls, recordings. Errors are { "error": { "code", "message" } }; the codes are listed in docs/errors.md.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      // PUBLIC_URL when known; otherwise relative to where the document was fetched from.
      servers: [{ url: publicUrl ?? '/', description: publicUrl ? 'PUBLIC_URL' : 'this server' }],
      tags: TAGS,
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'Your backend (one of API_KEYS): admin rights' },
          bearerToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An RS256 token from POST /auth/token (Authorization: Bearer …)' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    // @fastify/swagger names a HEAD route's operation `<operationId>-head`; ours are camelCase and unique already.
    transformObject: (document) => {
      const doc = 'openapiObject' in document ? document.openapiObject : document.swaggerObject;
      for (const item of Object.values(doc.paths ?? {})) {
        const head = (item as { head?: { operationId?: string } } | undefined)?.head;
        if (head?.operationId?.endsWith('-head')) head.operationId = head.operationId.slice(0, -'-head'.length);
      }
      return doc;
    },
    // Routes under the REST rate limit (all but those with config.rateLimit = false) can answer 429.
    transform: ({ schema, url, route }) => {
      const exempt = (route.config as { rateLimit?: unknown } | undefined)?.rateLimit === false;
      if (!schema || schema.hide || !rateLimited || exempt) return { schema, url };
      const response = (schema.response ?? {}) as Record<string, unknown>;
      if (response['429']) return { schema, url };
      return { schema: { ...schema, response: { ...response, 429: Type.Ref('ErrorResponse') } }, url };
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', uiConfig: {}, staticCSP: false });
}
