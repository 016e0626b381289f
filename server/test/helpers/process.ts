import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { mediaPorts } from './env';
import { until } from './wait';

/**
 * The real entry point (dist/server/main.js, built by `npm test`'s pretest) as a
 * separate process: the same thing `npm start` runs.
 */
export const MAIN = path.resolve(__dirname, '..', '..', '..', 'dist', 'server', 'main.js');

export function requireBuiltMain(): void {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build (npm test does it first)`);
}

export interface Proc {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  out: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts the server with only PATH, HOME and `env` as its environment. Unless
 * `env` names them, its media ports are a block of its own (mediaPorts), held
 * until it exits: two servers of parallel test files on the default WebRTC
 * port would fail with EADDRINUSE.
 */
export async function runServer(env: Record<string, string>, opts: { detached?: boolean } = {}): Promise<Proc> {
  const media = env.MEDIASOUP_WEBRTC_PORT ? null : await mediaPorts();
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...media?.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // detached: a process group of its own, for signals sent to the group (systemd, docker stop).
    detached: opts.detached ?? false,
  });
  if (media) child.once('exit', () => void media.release());
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, exited };
}

/**
 * Polls `probe` (a request to the process's /ready) until it answers 200, and
 * resolves with that answer. Fails at once if the process exits, and after
 * `timeoutMs` (60 s: a start takes 3 s idle, 10+ s on a saturated CI machine) with its output.
 */
export function waitReady<R extends { status: number }>(
  proc: { child: ChildProcess; out(): string },
  probe: () => Promise<R>,
  { name = 'server', timeoutMs = 60_000 }: { name?: string; timeoutMs?: number } = {},
): Promise<R> {
  return until(
    () => `${name} to be ready: ${proc.out()}`,
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`${name} exited: ${proc.out()}`);
      const res = await probe().catch(() => null); // not listening yet
      return res?.status === 200 ? res : null;
    },
    { timeoutMs, intervalMs: 100 },
  );
}
