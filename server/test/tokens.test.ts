import { createPublicKey, createVerify, generateKeyPairSync, randomUUID } from 'node:crypto';
import { admin, bearer, issueToken, startTestApp, type TestApp } from './helpers/app';
import { BACKENDS } from './helpers/env';
import { decode, signHs256, signRs256, unsigned } from './helpers/jwt';

describe.each(BACKENDS)('tokens (%s)', (backend) => {
  let t: TestApp;
  let callId: string;
  beforeAll(async () => {
    t = await startTestApp(backend);
    const res = await t.app.inject({ method: 'POST', url: '/calls', headers: admin, payload: { room_id: 'tok-room' } });
    callId = res.json().id;
  });
  afterAll(() => t.close());

  /** Claims as the server would issue them, for hand-made variants. */
  const claims = (over: Record<string, unknown> = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return {
      sub: 'alice',
      room: 'tok-room',
      role: 'participant',
      iat: now,
      exp: now + 600,
      jti: randomUUID(),
      iss: t.config.jwt.issuer,
      aud: t.config.jwt.audience,
      ...over,
    };
  };
  const getCall = (token: string) => t.app.inject({ method: 'GET', url: `/calls/${callId}`, headers: bearer(token) });

  describe('issuance', () => {
    it('issues an RS256 token with every claim to the API key', async () => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: admin,
        payload: { user_id: 'alice', display_name: 'Alice', room: 'tok-room', role: 'host', ttl_seconds: 120 },
      });
      expect(res.statusCode).toBe(201);
      const body = res.json();
      expect(body.token_type).toBe('Bearer');
      expect(body.expires_in).toBe(120);
      const { header, payload } = decode(body.token);
      expect(header).toMatchObject({ alg: 'RS256', kid: t.keys.kid });
      expect(payload).toMatchObject({ sub: 'alice', name: 'Alice', room: 'tok-room', role: 'host', iss: 'switchboard', aud: 'switchboard', jti: body.jti });
      expect((payload.exp as number) - (payload.iat as number)).toBe(120);
      expect(new Date(body.expires_at).getTime()).toBe((payload.exp as number) * 1000);
      // And the token works.
      expect((await getCall(body.token)).statusCode).toBe(200);
    });

    it('publishes the public key as a JWKS that verifies issued tokens', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
      expect(res.statusCode).toBe(200);
      const [jwk] = res.json().keys;
      expect(jwk).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: t.keys.kid });
      expect(jwk.d).toBeUndefined();
      const token = await issueToken(t, { user_id: 'bob' });
      const [h, p, s] = token.split('.');
      const ok = createVerify('RSA-SHA256')
        .update(`${h}.${p}`)
        .verify(createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s!, 'base64url'));
      expect(ok).toBe(true);
    });

    it('defaults to a participant with the default TTL', async () => {
      const { payload } = decode(await issueToken(t, { user_id: 'carol' }));
      expect(payload.role).toBe('participant');
      expect(payload.room).toBeUndefined();
      expect((payload.exp as number) - (payload.iat as number)).toBe(t.config.jwt.defaultTtlSeconds);
    });

    it.each([
      ['no credentials', {}, 401, 'AUTH_REQUIRED'],
      ['a wrong API key', { 'x-api-key': 'wrong-key-wrong-key-wrong' }, 401, 'API_KEY_INVALID'],
    ])('refuses %s', async (_name, headers, status, code) => {
      const res = await t.app.inject({ method: 'POST', url: '/auth/token', headers, payload: { user_id: 'x' } });
      expect(res.statusCode).toBe(status);
      expect(res.json().error.code).toBe(code);
    });

    it('refuses a user token as credentials for issuance', async () => {
      const token = await issueToken(t, { user_id: 'host', room: 'tok-room', role: 'host' });
      const res = await t.app.inject({ method: 'POST', url: '/auth/token', headers: bearer(token), payload: { user_id: 'x' } });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('FORBIDDEN');
    });

    it.each([
      ['a TTL above the maximum', { user_id: 'x', ttl_seconds: 86401 }, 'TTL_TOO_LONG'],
      ['a host token without a room', { user_id: 'x', role: 'host' }, 'ROOM_REQUIRED_FOR_ROLE'],
      ['a moderator token without a room', { user_id: 'x', role: 'moderator' }, 'ROOM_REQUIRED_FOR_ROLE'],
      ['an unknown role', { user_id: 'x', role: 'admin' }, 'VALIDATION_FAILED'],
      ['an unknown field', { user_id: 'x', is_admin: true }, 'VALIDATION_FAILED'],
      ['a missing user_id', { role: 'participant' }, 'VALIDATION_FAILED'],
      ['a bad room id', { user_id: 'x', room: '../etc' }, 'VALIDATION_FAILED'],
      ['a TTL of the wrong type', { user_id: 'x', ttl_seconds: 'long' }, 'VALIDATION_FAILED'],
    ])('rejects %s with 400', async (_name, payload, code) => {
      const res = await t.app.inject({ method: 'POST', url: '/auth/token', headers: admin, payload });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe(code);
    });
  });

  describe('verification rejects', () => {
    const cases: Array<[string, () => string, string]> = [
      ['HS256 signed with the public key as the secret', () => signHs256(claims(), t.keys.publicKeyPem), 'TOKEN_ALGORITHM_NOT_ALLOWED'],
      ['alg none', () => unsigned(claims()), 'TOKEN_ALGORITHM_NOT_ALLOWED'],
      ['a wrong issuer', () => signRs256({ kid: t.keys.kid }, claims({ iss: 'someone-else' }), t.keys.privateKeyPem), 'TOKEN_CLAIM_INVALID'],
      ['a wrong audience', () => signRs256({ kid: t.keys.kid }, claims({ aud: 'other-app' }), t.keys.privateKeyPem), 'TOKEN_CLAIM_INVALID'],
      ['an expired token', () => signRs256({}, claims({ iat: 1000, exp: 2000 }), t.keys.privateKeyPem), 'TOKEN_EXPIRED'],
      ['a not-yet-valid token', () => signRs256({}, claims({ nbf: Math.floor(Date.now() / 1000) + 3600 }), t.keys.privateKeyPem), 'TOKEN_NOT_YET_VALID'],
      [
        'a tampered payload',
        () => {
          const [h, , s] = signRs256({}, claims(), t.keys.privateKeyPem).split('.');
          return `${h}.${Buffer.from(JSON.stringify(claims({ role: 'host' }))).toString('base64url')}.${s}`;
        },
        'TOKEN_INVALID_SIGNATURE',
      ],
      [
        'a token signed by another key',
        () => signRs256({}, claims(), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
        'TOKEN_INVALID_SIGNATURE',
      ],
      ['a token without a role', () => signRs256({}, claims({ role: undefined }), t.keys.privateKeyPem), 'TOKEN_CLAIM_INVALID'],
      ['a token with an unknown role', () => signRs256({}, claims({ role: 'god' }), t.keys.privateKeyPem), 'TOKEN_CLAIM_INVALID'],
      ['a token without exp', () => signRs256({}, claims({ exp: undefined }), t.keys.privateKeyPem), 'TOKEN_CLAIM_INVALID'],
      ['garbage', () => 'not.a.jwt', 'TOKEN_MALFORMED'],
    ];
    it.each(cases)('%s', async (_name, make, code) => {
      const res = await getCall(make());
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe(code);
    });

    it('an Authorization header that is not Bearer', async () => {
      const res = await t.app.inject({ method: 'GET', url: `/calls/${callId}`, headers: { authorization: 'Basic Zm9vOmJhcg==' } });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('TOKEN_MALFORMED');
    });

    it('accepts the same claims when properly signed (control)', async () => {
      expect((await getCall(signRs256({}, claims(), t.keys.privateKeyPem))).statusCode).toBe(200);
    });
  });
});
