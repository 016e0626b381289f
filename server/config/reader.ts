import { readFileSync } from 'node:fs';
import { badTrustEntry, type TrustProxy } from '../http/trustProxy';
import { loadTls, pemSource, TlsError, type TlsConfig } from '../tls/tls';
import type { Config } from './types';

/**
 * Reads environment variables one by one, collecting every problem (each
 * naming its variable) instead of stopping at the first.
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export type Env = Record<string, string | undefined>;

export class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  fail(name: string, why: string, value?: string): undefined {
    const shown = value === undefined ? '' : ` (got ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)})`;
    this.problems.push(`${name}: ${why}${shown}`);
    return undefined;
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      this.fail(name, `must be an integer from ${min} to ${max}`, v);
      return fallback;
    }
    return Number(v);
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const b = boolWord(v);
    if (b !== undefined) return b;
    this.fail(name, 'must be true or false', v);
    return fallback;
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      this.fail(name, `must be one of ${allowed.join(', ')}`, v);
      return fallback;
    }
    return v as T;
  }

  list(name: string): string[] {
    const v = this.raw(name);
    return v === undefined
      ? []
      : v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  }

  /** ICE servers as JSON: [{"urls":"stun:stun.example.com:3478"}, {"urls":[...],"username":..,"credential":..}]. */
  iceServers(name: string): Config['signaling']['iceServers'] {
    const v = this.raw(name);
    if (v === undefined) return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      this.fail(name, 'must be a JSON array of {"urls": ...} objects', v);
      return [];
    }
    const isUrl = (u: unknown) => typeof u === 'string' && /^(stun|stuns|turn|turns):/.test(u);
    const ok =
      Array.isArray(parsed) &&
      parsed.every(
        (s) =>
          typeof s === 'object' &&
          s !== null &&
          (isUrl((s as { urls: unknown }).urls) ||
            (Array.isArray((s as { urls: unknown }).urls) && (s as { urls: unknown[] }).urls.length > 0 && (s as { urls: unknown[] }).urls.every(isUrl))) &&
          ['username', 'credential'].every((k) => (s as Record<string, unknown>)[k] === undefined || typeof (s as Record<string, unknown>)[k] === 'string'),
      );
    if (!ok) {
      this.fail(name, 'must be a JSON array of {"urls": "stun:…"|"turn:…"|[…], "username"?, "credential"?} objects', v);
      return [];
    }
    return parsed as Config['signaling']['iceServers'];
  }

  /** true/false, or a comma-separated list of trusted proxy addresses and CIDRs (and loopback, linklocal, uniquelocal). */
  trustProxy(name: string): TrustProxy {
    const v = this.raw(name);
    if (v === undefined) return false;
    const b = boolWord(v);
    if (b !== undefined) return b;
    const entries = this.list(name);
    for (const entry of entries) {
      const why = badTrustEntry(entry);
      if (why) {
        this.fail(name, `must be true, false, or comma-separated addresses/CIDRs of trusted proxies (${entry}: ${why})`, v);
        return false;
      }
    }
    return entries.length > 0 ? entries : false;
  }

  /** TLS_CERT and TLS_KEY (each a file path or an inline PEM), TLS_CA optional: both or neither, and a matching pair. */
  tls(): TlsConfig | undefined {
    const cert = this.raw('TLS_CERT');
    const key = this.raw('TLS_KEY');
    const ca = this.raw('TLS_CA');
    if (!cert && !key) {
      if (ca) this.fail('TLS_CA', 'is used only with TLS_CERT and TLS_KEY');
      return undefined;
    }
    if (!cert) return this.fail('TLS_CERT', 'is required when TLS_KEY is set (set both, or neither for plain HTTP)');
    if (!key) return this.fail('TLS_KEY', 'is required when TLS_CERT is set (set both, or neither for plain HTTP)');
    const config: TlsConfig = { cert: pemSource('TLS_CERT', cert), key: pemSource('TLS_KEY', key), ...(ca ? { ca: pemSource('TLS_CA', ca) } : {}) };
    try {
      loadTls(config);
    } catch (err) {
      if (err instanceof TlsError) return this.fail(err.variable, err.message);
      throw err;
    }
    return config;
  }

  /**
   * Several PEM public keys, inline (NAME) or as a file (NAME_FILE), concatenated like a
   * certificate bundle: each -----BEGIN … PUBLIC KEY----- … -----END … PUBLIC KEY----- block is
   * one key (whitespace or newlines between blocks; nothing else). Unset: none.
   */
  publicKeyBundle(name: string): string[] {
    const pem = this.pem(name, 'PUBLIC KEY');
    if (pem === undefined) return [];
    const where = this.raw(`${name}_FILE`) ? `${name}_FILE` : name;
    const block = /-----BEGIN (RSA )?PUBLIC KEY-----[\s\S]*?-----END (RSA )?PUBLIC KEY-----/g;
    const blocks = pem.match(block) ?? [];
    if (blocks.length === 0 || pem.replace(block, '').trim() !== '') {
      this.fail(where, 'must be one or more PEM public keys (-----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----), concatenated, nothing between them');
      return [];
    }
    return blocks.map((b) => `${b}\n`);
  }

  /** A PEM given inline (NAME) or as a file (NAME_FILE); both set is an error. */
  pem(name: string, label: 'PRIVATE KEY' | 'PUBLIC KEY'): string | undefined {
    const inline = this.raw(name);
    const file = this.raw(`${name}_FILE`);
    if (inline && file) return this.fail(name, `set either ${name} or ${name}_FILE, not both`);
    let pem: string | undefined;
    if (inline) pem = inline.replace(/\\n/g, '\n');
    if (file) {
      try {
        pem = readFileSync(file, 'utf8');
      } catch (err) {
        return this.fail(`${name}_FILE`, `cannot read file: ${(err as Error).message}`);
      }
    }
    if (pem === undefined) return undefined;
    if (!pem.includes(label)) {
      return this.fail(file ? `${name}_FILE` : name, `must be a PEM ${label.toLowerCase()} (-----BEGIN ${label}----- or RSA ${label})`);
    }
    return pem;
  }
}

/** 1/true/yes/on and 0/false/no/off (any case); anything else: undefined. */
function boolWord(v: string): boolean | undefined {
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  return undefined;
}
