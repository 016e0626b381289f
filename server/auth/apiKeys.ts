import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Checks API keys in constant time. Keys are kept only as SHA-256 digests so a
 * heap dump or an accidental log of this object shows no key.
 */
export class ApiKeys {
  private readonly digests: Buffer[];

  constructor(keys: string[]) {
    this.digests = keys.map((k) => createHash('sha256').update(k).digest());
  }

  get size(): number {
    return this.digests.length;
  }

  matches(candidate: string): boolean {
    const d = createHash('sha256').update(candidate).digest();
    let ok = false;
    for (const known of this.digests) ok = timingSafeEqual(known, d) || ok;
    return ok;
  }
}

/**
 * Development convenience: with no API_KEYS configured (never in production),
 * one key is generated once into DATA_DIR/keys/dev-api-key. Its path is logged,
 * never the key.
 */
export function devApiKey(dataDir: string): { key: string; file: string; generated: boolean } {
  const dir = path.join(dataDir, 'keys');
  const file = path.join(dir, 'dev-api-key');
  if (existsSync(file)) return { key: readFileSync(file, 'utf8').trim(), file, generated: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32).toString('base64url');
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return { key, file, generated: true };
}
