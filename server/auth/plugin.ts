import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

import type { ApiKeys } from './apiKeys';
import type { SigningKeys } from './keys';
import type { Principal } from './roles';
import { TokenService } from './tokens';
import { AppError } from '../errors';

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenService;
    /** Resolves the caller from `x-api-key` (admin) or `Authorization: Bearer <token>` (user). */
    authenticate(request: FastifyRequest): Principal;
    /** Like authenticate, but only the API key is accepted. */
    requireAdmin(request: FastifyRequest): void;
  }
}

export interface AuthOptions {
  keys: SigningKeys;
  apiKeys: ApiKeys;
  issuer: string;
  audience: string;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

export const authPlugin = fp<AuthOptions>(
  async (app: FastifyInstance, opts) => {
    const tokens = new TokenService(opts);
    app.decorate('tokens', tokens);

    const authenticate = (request: FastifyRequest): Principal => {
      const apiKey = request.headers['x-api-key'];
      if (typeof apiKey === 'string' && apiKey !== '') {
        if (!opts.apiKeys.matches(apiKey)) throw new AppError('API_KEY_INVALID', 'API key is not valid');
        return { kind: 'admin' };
      }
      const header = request.headers.authorization;
      if (!header) throw new AppError('AUTH_REQUIRED', 'send an API key (x-api-key) or a token (Authorization: Bearer …)');
      const m = BEARER.exec(header);
      if (!m?.[1]) throw new AppError('TOKEN_MALFORMED', 'Authorization header must be "Bearer <token>"');
      return tokens.principal(m[1]);
    };
    app.decorate('authenticate', authenticate);
    app.decorate('requireAdmin', (request: FastifyRequest) => {
      if (authenticate(request).kind !== 'admin') throw new AppError('FORBIDDEN', 'this endpoint needs the API key');
    });
  },
  { name: 'switchboard-auth' },
);
