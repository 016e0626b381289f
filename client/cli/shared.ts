/**
 * What every command shares: the server URL and API key (flags, then
 * SWITCHBOARD_URL / SWITCHBOARD_API_KEY), node:util's parseArgs with --help,
 * REST calls whose refusals become CliError with the server's code, and the
 * exit codes: 0 done, 1 the server refused or failed (its code and message are
 * printed), 2 the command line is wrong.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export const EXIT_OK = 0;
export const EXIT_SERVER = 1;
export const EXIT_USAGE = 2;
export const DEFAULT_URL = 'http://localhost:8080';

/** A failure that ends the command with an exit code and a one-line message on stderr. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const usageError = (message: string): CliError => new CliError(EXIT_USAGE, 'USAGE', message);

export interface Io {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
}

export interface Command {
  /** `token create`, `call`… as typed. */
  name: string;
  summary: string;
  run(argv: string[], io: Io): Promise<number>;
}

/** The options every command that talks to a server takes. */
export const SERVER_OPTIONS = {
  url: { type: 'string' },
  'api-key': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const SERVER_HELP = `
Server options:
  --url URL          the server (default: $SWITCHBOARD_URL, else ${DEFAULT_URL})
  --api-key KEY      an API key of the server (default: $SWITCHBOARD_API_KEY)
  --json             print the server's JSON answer instead of a summary
  -h, --help         this help`;

/** parseArgs with its errors as usage errors (exit 2). */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw usageError((err as Error).message);
  }
}

export interface Server {
  url: string;
  apiKey: string;
}

export function server(values: { url?: string | undefined; 'api-key'?: string | undefined }, env: NodeJS.ProcessEnv): Server {
  const url = (values.url ?? env.SWITCHBOARD_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]/.test(url)) throw usageError(`--url must be an http(s) URL, got '${url}'`);
  const apiKey = values['api-key'] ?? env.SWITCHBOARD_API_KEY;
  if (!apiKey) throw usageError('no API key: pass --api-key or set SWITCHBOARD_API_KEY (in development: data/keys/dev-api-key)');
  return { url, apiKey };
}

/** One REST call with the API key; a refusal becomes CliError(1) with the server's code and message. */
export async function rest<T>(s: Server, method: string, path: string, body?: unknown): Promise<{ data: T; res: Response }> {
  let res: Response;
  try {
    res = await fetch(s.url + path, {
      method,
      headers: { 'x-api-key': s.apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(EXIT_SERVER, 'CONNECTION_FAILED', `cannot reach ${s.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  if (!res.ok) {
    const text = await res.text();
    let error: { code?: string; message?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
    } catch {
      error = undefined;
    }
    throw new CliError(EXIT_SERVER, error?.code ?? `HTTP_${res.status}`, error?.message ?? (text.slice(0, 200) || res.statusText));
  }
  const type = res.headers.get('content-type') ?? '';
  return { data: (type.includes('json') ? await res.json() : undefined) as T, res };
}

export const query = (params: Record<string, string | number | undefined>): string => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
};

export function intOption(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw usageError(`--${name} must be an integer from ${min} to ${max}, got '${value}'`);
  return n;
}

/** Rows as aligned columns (the first row is the header). */
export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
