import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import type { FastifyBaseLogger } from 'fastify';

/**
 * HTTPS and WSS served by this process: TLS_CERT and TLS_KEY (each a file path or
 * inline PEM), TLS_CA optional (intermediate certificates sent after TLS_CERT).
 * loadConfig checks at start that they parse and that the key matches the
 * certificate; TlsReloader re-reads the files on SIGHUP and when they change and
 * swaps the server's secure context: connections already open keep their session,
 * new handshakes get the new certificate, and a bad new pair is refused (logged)
 * while the current one stays.
 */

/** Where one PEM comes from: a file (re-read on reload) or inline text. */
export interface PemSource {
  /** The variable it was configured by (for messages). */
  variable: string;
  file?: string;
  inline?: string;
}

export interface TlsConfig {
  cert: PemSource;
  key: PemSource;
  ca?: PemSource;
}

/** Parsed and checked: what the server is given. */
export interface TlsMaterial {
  key: string;
  /** TLS_CERT followed by TLS_CA (the chain sent to clients). */
  cert: string;
  fingerprint256: string;
  subject: string;
  validTo: string;
}

/** A problem with one variable's PEM. */
export class TlsError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = 'TlsError';
  }
}

/** A variable's value: inline when it starts with -----BEGIN (`\n` escapes allowed), else a file path. */
export function pemSource(variable: string, value: string): PemSource {
  const v = value.trim();
  return v.startsWith('-----BEGIN') ? { variable, inline: v.replace(/\\n/g, '\n') } : { variable, file: v };
}

function readPem(src: PemSource): string {
  if (src.inline !== undefined) return src.inline;
  try {
    return readFileSync(src.file!, 'utf8');
  } catch (err) {
    throw new TlsError(src.variable, `cannot read file: ${(err as Error).message}`);
  }
}

function parseCert(src: PemSource, pem: string): X509Certificate {
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new TlsError(src.variable, `must be a PEM certificate (-----BEGIN CERTIFICATE-----)${src.file ? ` in ${src.file}` : ''}`);
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new TlsError(src.variable, `is not a valid PEM certificate: ${(err as Error).message}`);
  }
}

/** Reads and checks the certificate, the key, the chain, and that the key belongs to the certificate. Throws TlsError. */
export function loadTls(config: TlsConfig): TlsMaterial {
  const certPem = readPem(config.cert);
  const keyPem = readPem(config.key);
  const caPem = config.ca ? readPem(config.ca) : undefined;
  const x509 = parseCert(config.cert, certPem);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new TlsError(config.key.variable, `is not a valid PEM private key (an encrypted key is not supported): ${(err as Error).message}`);
  }
  if (!x509.checkPrivateKey(key)) {
    throw new TlsError(
      config.key.variable,
      `does not match the certificate of ${config.cert.variable} (subject ${x509.subject.replace(/\n/g, ', ')}); the key and the certificate must be one pair`,
    );
  }
  if (caPem !== undefined) parseCert(config.ca!, caPem);
  const chain = caPem === undefined ? certPem : `${certPem.trimEnd()}\n${caPem.trim()}\n`;
  return { key: keyPem, cert: chain, fingerprint256: x509.fingerprint256, subject: x509.subject.replace(/\n/g, ', '), validTo: x509.validTo };
}

/** Fastify's `https` option (and setSecureContext's). */
export function tlsServerOptions(m: TlsMaterial): { key: string; cert: string } {
  return { key: m.key, cert: m.cert };
}

/** The files of a TLS configuration (inline PEMs have none). */
export function tlsFiles(config: TlsConfig): string[] {
  return [config.cert, config.key, config.ca].flatMap((s) => (s?.file ? [path.resolve(s.file)] : []));
}

export interface TlsReloaderOptions {
  server: TlsServer;
  config: TlsConfig;
  /** What the server was started with. */
  current: TlsMaterial;
  log: FastifyBaseLogger;
  /** A burst of file changes within this time is one reload. */
  debounceMs?: number;
}

/**
 * Swaps the server's certificate: reload() on SIGHUP, and, for file-based
 * configuration, after the files' directories change (watching the directories
 * also sees files replaced by a rename or a symlink swap, as certbot and
 * Kubernetes secrets do).
 */
export class TlsReloader {
  private current: TlsMaterial;
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: TlsReloaderOptions) {
    this.current = opts.current;
  }

  /** Re-reads the PEMs; a valid, changed pair replaces the server's secure context. False if the new pair is bad. */
  reload(reason: string): boolean {
    const { log } = this.opts;
    let next: TlsMaterial;
    try {
      next = loadTls(this.opts.config);
    } catch (err) {
      const variable = err instanceof TlsError ? err.variable : undefined;
      log.error(
        { reason, variable, err: (err as Error).message },
        `TLS reload failed: ${variable ? `${variable} ` : ''}${(err as Error).message}; keeping the current certificate`,
      );
      return false;
    }
    if (next.cert === this.current.cert && next.key === this.current.key) {
      log.debug({ reason, fingerprint256: next.fingerprint256 }, 'TLS certificate unchanged');
      return true;
    }
    try {
      this.opts.server.setSecureContext(tlsServerOptions(next));
    } catch (err) {
      log.error({ reason, err: (err as Error).message }, 'TLS reload failed: the new certificate was refused; keeping the current certificate');
      return false;
    }
    log.info(
      { reason, fingerprint256: next.fingerprint256, previous: this.current.fingerprint256, subject: next.subject, validTo: next.validTo },
      'TLS certificate reloaded',
    );
    this.current = next;
    return true;
  }

  /** Watches the directories of the configured files; returns how many. */
  watch(): number {
    const files = tlsFiles(this.opts.config);
    const dirs = [...new Set(files.map((f) => path.dirname(f)))];
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => this.schedule());
        w.on('error', (err) => this.opts.log.warn({ dir, err: err.message }, 'watching the TLS certificate directory failed; reload with SIGHUP'));
        this.watchers.push(w);
      } catch (err) {
        this.opts.log.warn({ dir, err: (err as Error).message }, 'cannot watch the TLS certificate directory; reload with SIGHUP');
      }
    }
    return this.watchers.length;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload('file change'), this.opts.debounceMs ?? 500);
    this.timer.unref();
  }

  close(): void {
    clearTimeout(this.timer);
    for (const w of this.watchers.splice(0)) w.close();
  }
}
