import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/config';

export type PublicJwk = JsonWebKey & { kid: string; use: 'sig'; alg: 'RS256' };

/** A public key that verifies tokens carrying its `kid`. */
export interface VerificationKey {
  publicKeyPem: string;
  /** RFC 7638 thumbprint of the public key; the `kid` of tokens and of the JWKS entry. */
  kid: string;
  jwk: PublicJwk;
}

/**
 * The RS256 key pair that signs and verifies every token, and the previous public
 * keys (JWT_PREVIOUS_PUBLIC_KEYS) that still verify tokens during a key rotation.
 * The pair comes from the configuration; in development, when none is configured,
 * one is generated once into DATA_DIR/keys and reused on later starts (so tokens
 * survive restarts). Production never generates keys (loadConfig refuses to start
 * without them).
 */
export interface SigningKeys extends VerificationKey {
  privateKeyPem: string;
  generated: boolean;
  /** Accepted and published next to the current key; never the current key itself. */
  previous: VerificationKey[];
}

/** Every key that verifies tokens, the current one first: what the JWKS publishes. */
export function verificationKeys(keys: SigningKeys): VerificationKey[] {
  return [keys, ...keys.previous];
}

const MIN_RSA_BITS = 2048;

function thumbprint(jwk: JsonWebKey): string {
  const canonical = JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  return createHash('sha256').update(canonical).digest('base64url');
}

function verificationKey(publicKey: KeyObject): VerificationKey {
  const jwk = publicKey.export({ format: 'jwk' });
  const kid = thumbprint(jwk);
  return {
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    kid,
    jwk: { kty: jwk.kty, n: jwk.n, e: jwk.e, kid, use: 'sig', alg: 'RS256' },
  };
}

/** JWT_PREVIOUS_PUBLIC_KEYS: RSA public keys of at least 2048 bits; the current key and repeats are dropped. */
function previousKeys(pems: string[], current: VerificationKey): VerificationKey[] {
  const out: VerificationKey[] = [];
  const problems: string[] = [];
  pems.forEach((pem, i) => {
    const which = `JWT_PREVIOUS_PUBLIC_KEYS: key ${i + 1}`;
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch (err) {
      problems.push(`${which} is not a readable public key (${(err as Error).message})`);
      return;
    }
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (key.asymmetricKeyType !== 'rsa') problems.push(`${which} must be an RSA key for RS256 (got ${key.asymmetricKeyType})`);
    else if (bits < MIN_RSA_BITS) problems.push(`${which}: RSA key must have at least ${MIN_RSA_BITS} bits (got ${bits})`);
    else {
      const v = verificationKey(key);
      if (v.kid !== current.kid && !out.some((o) => o.kid === v.kid)) out.push(v);
    }
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

function describe(privateKey: KeyObject, publicKey: KeyObject, generated: boolean, previousPems: string[]): SigningKeys {
  const current = verificationKey(publicKey);
  return {
    ...current,
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    generated,
    previous: previousKeys(previousPems, current),
  };
}

export function loadSigningKeys(opts: { privateKeyPem?: string; publicKeyPem?: string; previousPublicKeyPems?: string[]; dataDir: string }): SigningKeys {
  const previous = opts.previousPublicKeyPems ?? [];
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
    return describe(privateKey, derived, false, previous);
  }

  const dir = path.join(opts.dataDir, 'keys');
  const file = path.join(dir, 'jwt-private.pem');
  if (existsSync(file)) {
    const privateKey = createPrivateKey(readFileSync(file, 'utf8'));
    return describe(privateKey, createPublicKey(privateKey), false, previous);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: MIN_RSA_BITS });
  writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  return describe(privateKey, publicKey, true, previous);
}
