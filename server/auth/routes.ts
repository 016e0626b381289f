import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errorResponses, RoomId } from '../http/schemas';
import { SECURITY } from '../http/openapi';
import { verificationKeys, type SigningKeys } from './keys';
import { RoleSchema, withDefault } from '../protocol';

const TokenRequest = Type.Object(
  {
    user_id: Type.String({ minLength: 1, maxLength: 255, description: "Your application's id for the user (the token's sub)" }),
    display_name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    room: Type.Optional(RoomId),
    role: Type.Optional(withDefault(RoleSchema, 'participant')),
    ttl_seconds: Type.Optional(Type.Integer({ minimum: 10, description: 'Lifetime; at most TOKEN_MAX_TTL_SECONDS' })),
    can_publish: Type.Optional(Type.Boolean({ description: 'May publish media through the SFU (default true); false makes a viewer' })),
  },
  { additionalProperties: false },
);

const TokenResponse = Type.Object({
  token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  expires_at: Type.String({ format: 'date-time' }),
  jti: Type.String(),
});

const Jwk = Type.Object({ kty: Type.String(), n: Type.String(), e: Type.String(), kid: Type.String(), use: Type.String(), alg: Type.String() });
const Jwks = Type.Object({
  keys: Type.Array(Jwk, { description: 'The current signing key first, then the previous keys still accepted (JWT_PREVIOUS_PUBLIC_KEYS)' }),
});

export const authRoutes: FastifyPluginAsyncTypebox<{ keys: SigningKeys }> = async (app, opts) => {
  // The current key first, then JWT_PREVIOUS_PUBLIC_KEYS: a verifier picks one by the token's kid.
  const jwks = verificationKeys(opts.keys).map((k) => k.jwk as Static<typeof Jwk>);
  app.post(
    '/auth/token',
    {
      schema: {
        tags: ['auth'],
        summary: 'Issue a token for one of your users',
        operationId: 'issueToken',
        description: 'Called by your backend after it has authenticated its user. Needs the API key. Host and moderator tokens must name a room.',
        security: SECURITY.apiKey,
        body: TokenRequest,
        response: { 201: TokenResponse, ...errorResponses(400, 401, 403, 413, 415) },
      },
    },
    async (request, reply) => {
      app.requireAdmin(request);
      const b = request.body;
      const { token, claims } = app.tokens.issue({
        userId: b.user_id,
        displayName: b.display_name,
        room: b.room,
        role: b.role ?? 'participant',
        ttlSeconds: b.ttl_seconds,
        canPublish: b.can_publish,
      });
      return reply.status(201).send({
        token,
        token_type: 'Bearer' as const,
        expires_in: claims.exp - claims.iat,
        expires_at: new Date(claims.exp * 1000).toISOString(),
        jti: claims.jti,
      });
    },
  );

  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags: ['auth'],
        summary: 'Public keys that verify our tokens (JWKS)',
        operationId: 'getJwks',
        security: SECURITY.none,
        response: { 200: Jwks },
      },
    },
    async (_request, reply) => {
      void reply.header('cache-control', 'public, max-age=300');
      return { keys: jwks };
    },
  );
};
