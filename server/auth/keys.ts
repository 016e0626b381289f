import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/config';

/**
 * The RS256 key pair that signs and verifies every token. It comes from the
 * configuration; in development, when none is configured, one is generated once
 * into DATA_DIR/keys and reused on later starts (so tokens survive restarts).
 * Production never generates keys (loadConfig refuses to start without them).
 */
export interface SigningKeys {
  privateKeyPem: string;
  publicKeyPem: string;
  /** RFC 7638 thumbprint of the public key; the `kid` of tokens and of the JWKS entry. */
  kid: string;
  jwk: JsonWebKey & { kid: string; use: 'sig'; alg: 'RS256' };
  generated: boolean;
}

const MIN_RSA_BITS = 2048;

function thumbprint(jwk: JsonWebKey): string {
  const canonical = JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  return createHash('sha256').update(canonical).digest('base64url');
}

function describe(privateKey: KeyObject, publicKey: KeyObject, generated: boolean): SigningKeys {
  const jwk = publicKey.export({ format: 'jwk' });
  const kid = thumbprint(jwk);
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    kid,
    jwk: { kty: jwk.kty, n: jwk.n, e: jwk.e, kid, use: 'sig', alg: 'RS256' },
    generated,
  };
}

export function loadSigningKeys(opts: { privateKeyPem?: string; publicKeyPem?: string; dataDir: string }): SigningKeys {
  if (opts.privateKeyPem) {
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(opts.privateKeyPem);
    } catch (err) {
      throw new ConfigError([`JWT_PRIVATE_KEY: not a readable private key (${(err as Error).message})`]);
    }
    if (privateKey.asymmetricKeyType !== 'rsa') {
      throw new ConfigError([`JWT_PRIVATE_KEY: must be an RSA key for RS256 (got ${privateKey.asymmetricKeyType})`]);
    }
    const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw new ConfigError([`JWT_PRIVATE_KEY: RSA key must have at least ${MIN_RSA_BITS} bits (got ${bits})`]);
    const derived = createPublicKey(privateKey);
    if (opts.publicKeyPem) {
      let given: KeyObject;
      try {
        given = createPublicKey(opts.publicKeyPem);
      } catch (err) {
        throw new ConfigError([`JWT_PUBLIC_KEY: not a readable public key (${(err as Error).message})`]);
      }
      if (!given.equals(derived)) throw new ConfigError(['JWT_PUBLIC_KEY: does not match JWT_PRIVATE_KEY']);
    }
    return describe(privateKey, derived, false);
  }

  const dir = path.join(opts.dataDir, 'keys');
  const file = path.join(dir, 'jwt-private.pem');
  if (existsSync(file)) {
    const privateKey = createPrivateKey(readFileSync(file, 'utf8'));
    return describe(privateKey, createPublicKey(privateKey), false);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: MIN_RSA_BITS });
  writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  return describe(privateKey, publicKey, true);
}
