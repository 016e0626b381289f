/**
 * Switchboard access tokens minted by the benchmarks themselves: the server they start gets
 * the private key (JWT_PRIVATE_KEY_FILE or JWT_PRIVATE_KEY), so no token request is part of
 * what they measure.
 */
import { createHash, createPrivateKey, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/** @typedef {{ sub: string, name?: string, room?: string, role?: string }} TokenFields */
/** @typedef {(fields: TokenFields, ttlSeconds?: number) => string} MintToken */

/** @param {string} s */
const b64url = (s) => Buffer.from(s).toString('base64url');

/**
 * A compact RS256 JWT of `claims` signed with `signingKey`, header kid = `kid`.
 * @param {import('node:crypto').KeyObject} signingKey
 * @param {string} kid
 * @param {object} claims
 */
function mintRs256(signingKey, kid, claims) {
  const header = { alg: 'RS256', typ: 'JWT', kid };
  const data = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${data}.${sign('sha256', Buffer.from(data), signingKey).toString('base64url')}`;
}

/**
 * Mints Switchboard tokens with a PKCS#8 PEM key: iat now, exp iat + ttlSeconds (default one
 * hour), iss/aud 'switchboard', a fresh jti, plus `fields`.
 * @param {string} pem
 * @param {string} kid
 * @returns {MintToken}
 */
export function tokenMinter(pem, kid) {
  const key = createPrivateKey(pem);
  return (fields, ttlSeconds = 3600) => {
    const iat = Math.floor(Date.now() / 1000);
    return mintRs256(key, kid, { ...fields, iat, exp: iat + ttlSeconds, jti: randomUUID(), iss: 'switchboard', aud: 'switchboard' });
  };
}

/**
 * A fresh RS256 key pair for the server: writes the PKCS#8 PEM to <dir>/jwt-private.pem
 * (mode 600). kid is the RFC 7638 thumbprint of the public JWK, as the server computes it.
 * @param {string} dir
 * @returns {{ keyFile: string, pem: string, kid: string, token: MintToken }}
 */
export function createSigningKey(dir) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const keyFile = path.join(dir, 'jwt-private.pem');
  writeFileSync(keyFile, pem, { mode: 0o600 });
  const jwk = publicKey.export({ format: 'jwk' });
  const kid = createHash('sha256')
    .update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n }))
    .digest('base64url');
  return { keyFile, pem, kid, token: tokenMinter(pem, kid) };
}
