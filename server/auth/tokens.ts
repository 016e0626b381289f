import { randomUUID } from 'node:crypto';
import { createSigner, createVerifier } from 'fast-jwt';
import { AppError, type ErrorCode } from '../errors';
import { verificationKeys, type SigningKeys } from './keys';
import { isRole, type Principal, type Role } from './roles';

/**
 * Issues and verifies the RS256 tokens end users hold, with fast-jwt (what
 * @fastify/jwt is built on), so REST and signaling verify tokens the same way.
 * Tokens are signed with the current key and carry its `kid`; verification picks
 * the key by the header's `kid`: the current key or one of JWT_PREVIOUS_PUBLIC_KEYS
 * (key rotation), each with RS256 as the only algorithm, the issuer and the
 * audience. An unknown `kid` is refused (TOKEN_KEY_UNKNOWN); a token without one
 * is checked against the current key.
 */
export interface TokenClaims {
  sub: string;
  name?: string;
  room?: string;
  role: Role;
  /** Publish grant (SFU media); absent means true. */
  can_publish?: boolean;
  iat: number;
  exp: number;
  jti: string;
  iss: string;
  aud: string;
}

export interface IssueRequest {
  userId: string;
  displayName?: string;
  room?: string;
  role: Role;
  ttlSeconds?: number;
  canPublish?: boolean;
}

export interface IssuedToken {
  token: string;
  claims: TokenClaims;
}

/** fast-jwt's error codes mapped to ours; all are 401. */
const VERIFY_ERRORS: Record<string, [ErrorCode, string]> = {
  FAST_JWT_EXPIRED: ['TOKEN_EXPIRED', 'token has expired'],
  FAST_JWT_INACTIVE: ['TOKEN_NOT_YET_VALID', 'token is not valid yet'],
  FAST_JWT_INVALID_SIGNATURE: ['TOKEN_INVALID_SIGNATURE', 'token signature is invalid'],
  FAST_JWT_INVALID_ALGORITHM: ['TOKEN_ALGORITHM_NOT_ALLOWED', 'token algorithm is not allowed; only RS256 is accepted'],
  FAST_JWT_MISSING_SIGNATURE: ['TOKEN_ALGORITHM_NOT_ALLOWED', 'unsigned tokens are not accepted; only RS256 is'],
  FAST_JWT_INVALID_CLAIM_VALUE: ['TOKEN_CLAIM_INVALID', 'token issuer or audience is not accepted'],
  FAST_JWT_INVALID_CLAIM_TYPE: ['TOKEN_CLAIM_INVALID', 'token claim has the wrong type'],
  FAST_JWT_MISSING_REQUIRED_CLAIM: ['TOKEN_CLAIM_INVALID', 'token lacks a required claim'],
};

export interface TokenOptions {
  keys: SigningKeys;
  issuer: string;
  audience: string;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
}

type Verify = (token: string) => unknown;

/** The `kid` of a compact JWT's header; undefined when there is none (or no readable header: the verifier says why). */
function headerKid(token: string): { kid?: unknown } {
  const dot = token.indexOf('.');
  if (dot <= 0) return {};
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8'));
    return typeof header === 'object' && header !== null && 'kid' in header ? { kid: header.kid } : {};
  } catch {
    return {};
  }
}

export class TokenService {
  private readonly sign: (claims: TokenClaims) => string;
  /** One verifier per key, built once: kid → verifier. */
  private readonly verifiers = new Map<string, Verify>();
  private readonly current: Verify;

  constructor(private readonly opts: TokenOptions) {
    this.sign = createSigner({ key: opts.keys.privateKeyPem, algorithm: 'RS256', kid: opts.keys.kid });
    for (const key of verificationKeys(opts.keys)) {
      this.verifiers.set(
        key.kid,
        createVerifier({
          key: key.publicKeyPem,
          algorithms: ['RS256'],
          allowedIss: opts.issuer,
          allowedAud: opts.audience,
          requiredClaims: ['sub', 'role', 'iat', 'exp', 'jti', 'iss', 'aud'],
        }),
      );
    }
    this.current = this.verifiers.get(opts.keys.kid)!;
  }

  issue(req: IssueRequest): IssuedToken {
    const ttl = req.ttlSeconds ?? this.opts.defaultTtlSeconds;
    if (ttl > this.opts.maxTtlSeconds) {
      throw new AppError('TTL_TOO_LONG', `ttl_seconds must not exceed ${this.opts.maxTtlSeconds}`);
    }
    if (req.role !== 'participant' && !req.room) {
      // Least privilege: a host or moderator token is only ever valid in one room.
      throw new AppError('ROOM_REQUIRED_FOR_ROLE', `a ${req.role} token must be scoped to a room`);
    }
    const iat = Math.floor(Date.now() / 1000);
    const claims: TokenClaims = {
      sub: req.userId,
      ...(req.displayName ? { name: req.displayName } : {}),
      ...(req.room ? { room: req.room } : {}),
      role: req.role,
      ...(req.canPublish === false ? { can_publish: false } : {}),
      iat,
      exp: iat + ttl,
      jti: randomUUID(),
      iss: this.opts.issuer,
      aud: this.opts.audience,
    };
    const token = this.sign(claims);
    return { token, claims };
  }

  /** Verifies the key (by `kid`), signature (RS256 only), issuer, audience, time and claim shapes. */
  verify(token: string): TokenClaims {
    const { kid } = headerKid(token);
    const verify = kid === undefined ? this.current : typeof kid === 'string' ? this.verifiers.get(kid) : undefined;
    if (!verify) throw new AppError('TOKEN_KEY_UNKNOWN', 'the token was signed by a key this server does not know (its kid is not in the JWKS)');
    let payload: unknown;
    try {
      payload = verify(token);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const mapped = VERIFY_ERRORS[code];
      if (mapped) throw new AppError(mapped[0], mapped[1]);
      throw new AppError('TOKEN_MALFORMED');
    }
    const c = payload as Partial<TokenClaims>;
    if (
      typeof c.sub !== 'string' ||
      c.sub === '' ||
      !isRole(c.role) ||
      typeof c.jti !== 'string' ||
      (c.room !== undefined && typeof c.room !== 'string') ||
      (c.name !== undefined && typeof c.name !== 'string') ||
      (c.can_publish !== undefined && typeof c.can_publish !== 'boolean')
    ) {
      throw new AppError('TOKEN_CLAIM_INVALID', 'token claims are invalid');
    }
    return c as TokenClaims;
  }

  principal(token: string): Principal {
    const c = this.verify(token);
    return {
      kind: 'user',
      userId: c.sub,
      ...(c.name !== undefined ? { name: c.name } : {}),
      ...(c.room !== undefined ? { room: c.room } : {}),
      role: c.role,
      tokenId: c.jti,
      expiresAt: c.exp,
      canPublish: c.can_publish !== false,
    };
  }
}
