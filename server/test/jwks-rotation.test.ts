import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { admin } from './helpers/app';
import { useSignalingApp } from './helpers/signaling';

/**
 * JWKS key rotation, proved with `jose` (a third-party JOSE implementation): the
 * server publishes the current key and JWT_PREVIOUS_PUBLIC_KEYS under their
 * RFC 7638 `kid`s; a token signed with a previous key is accepted over REST and
 * Socket.IO until it expires; an unknown `kid` is refused with TOKEN_KEY_UNKNOWN.
 */
// jose is an ES module: loaded with import() (the project compiles tests as CommonJS).
type Jose = typeof import('jose', { with: { 'resolution-mode': 'import' } });
let jose: Jose;
beforeAll(async () => {
  jose = await import('jose');
});

const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = (k: KeyObject, type: 'pkcs8' | 'spki') => k.export({ format: 'pem', type }).toString();

const current = rsa();
const previous = rsa();
const older = rsa();
const stranger = rsa();
const ROOM = 'rotation-room';

const app = useSignalingApp('pglite', {
  JWT_PRIVATE_KEY: pem(current.privateKey, 'pkcs8'),
  // Two previous keys, concatenated (inline, with \n escapes as in an env file).
  JWT_PREVIOUS_PUBLIC_KEYS: `${pem(previous.publicKey, 'spki')}${pem(older.publicKey, 'spki')}`.replace(/\n/g, '\\n'),
});

const kidOf = async (k: KeyObject) => jose.calculateJwkThumbprint(await jose.exportJWK(k), 'sha256');

/** A token as the server would issue it, signed by `key` with `kid` in its header, with jose. */
async function joseToken(key: KeyObject, kid: string | undefined, over: { exp?: number; iat?: number } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({ role: 'host', room: ROOM, name: 'Rotated' })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(kid ? { kid } : {}) })
    .setSubject(`user-${randomUUID().slice(0, 8)}`)
    .setJti(randomUUID())
    .setIssuer(app.t.config.jwt.issuer)
    .setAudience(app.t.config.jwt.audience)
    .setIssuedAt(over.iat ?? now)
    .setExpirationTime(over.exp ?? now + 600)
    .sign(key);
}

describe('JWKS key rotation', () => {
  let callId: string;
  let jwks: ReturnType<Jose['createRemoteJWKSet']>;
  const verifyOptions = () => ({ issuer: app.t.config.jwt.issuer, audience: app.t.config.jwt.audience, algorithms: ['RS256'] });

  beforeAll(async () => {
    const res = await fetch(`${app.url}/calls`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ room_id: ROOM }),
    });
    expect(res.status).toBe(201);
    callId = ((await res.json()) as { id: string }).id;
    jwks = jose.createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`));
  });

  const getCall = (token: string) => fetch(`${app.url}/calls/${callId}`, { headers: { authorization: `Bearer ${token}` } });
  const issued = async () => {
    const res = await fetch(`${app.url}/auth/token`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: 'current-user', room: ROOM, role: 'host' }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { token: string }).token;
  };
  /** The connect_error code of a Socket.IO handshake with `token`, or 'connected'. */
  const handshake = async (token: string): Promise<string> => {
    const c = app.client({ token });
    const outcome = await Promise.race([
      c.connected().then(() => 'connected'),
      c.next<Error & { data?: { code: string } }>('connect_error').then((e) => e.data?.code ?? e.message),
    ]);
    c.close();
    return outcome;
  };

  it('publishes the current key first, then the previous keys, under their RFC 7638 thumbprints', async () => {
    const res = await fetch(`${app.url}/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { keys: Array<Record<string, unknown>> };
    expect(body.keys.map((k) => k.kid)).toEqual([await kidOf(current.publicKey), await kidOf(previous.publicKey), await kidOf(older.publicKey)]);
    for (const k of body.keys) {
      expect(k).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
      expect(k.d).toBeUndefined();
    }
    expect(app.t.keys.kid).toBe(await kidOf(current.publicKey));
  });

  it('issues tokens that carry the current kid, and jose verifies them against the live JWKS', async () => {
    const token = await issued();
    const { protectedHeader, payload } = await jose.jwtVerify(token, jwks, verifyOptions());
    expect(protectedHeader).toMatchObject({ alg: 'RS256', kid: await kidOf(current.publicKey) });
    expect(payload).toMatchObject({ sub: 'current-user', room: ROOM, role: 'host' });
    expect((await getCall(token)).status).toBe(200);
    expect(await handshake(token)).toBe('connected');
  });

  it.each([
    ['the previous key', () => previous],
    ['the older previous key', () => older],
  ])('accepts a token signed with %s over REST and Socket.IO, and jose verifies it too', async (_name, key) => {
    const k = key();
    const kid = await kidOf(k.publicKey);
    const token = await joseToken(k.privateKey, kid);
    const { protectedHeader } = await jose.jwtVerify(token, jwks, verifyOptions());
    expect(protectedHeader.kid).toBe(kid);
    const res = await getCall(token);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe(callId);
    expect(await handshake(token)).toBe('connected');
  });

  it('refuses a previous-key token once it has expired', async () => {
    const token = await joseToken(previous.privateKey, await kidOf(previous.publicKey), { iat: 1000, exp: 2000 });
    const res = await getCall(token);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TOKEN_EXPIRED');
    expect(await handshake(token)).toBe('TOKEN_EXPIRED');
  });

  it('refuses an unknown kid with TOKEN_KEY_UNKNOWN over REST and Socket.IO (and jose finds no key either)', async () => {
    const token = await joseToken(stranger.privateKey, await kidOf(stranger.publicKey));
    await expect(jose.jwtVerify(token, jwks, verifyOptions())).rejects.toBeInstanceOf(jose.errors.JWKSNoMatchingKey);
    const res = await getCall(token);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TOKEN_KEY_UNKNOWN');
    expect(await handshake(token)).toBe('TOKEN_KEY_UNKNOWN');
    // The auth message after connecting verifies the same way.
    const c = app.client();
    await c.connected();
    expect((await c.request('auth', { token })).error?.code).toBe('TOKEN_KEY_UNKNOWN');
    c.close();
  });

  it('selects the key by kid: a previous key cannot sign under the current kid, nor a stranger under a previous kid', async () => {
    for (const token of [
      await joseToken(previous.privateKey, await kidOf(current.publicKey)),
      await joseToken(stranger.privateKey, await kidOf(previous.publicKey)),
    ]) {
      const res = await getCall(token);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TOKEN_INVALID_SIGNATURE');
    }
  });

  it('checks a token without a kid against the current key only', async () => {
    expect((await getCall(await joseToken(current.privateKey, undefined))).status).toBe(200);
    const res = await getCall(await joseToken(previous.privateKey, undefined));
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TOKEN_INVALID_SIGNATURE');
  });
});
