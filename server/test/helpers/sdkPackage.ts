import { spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './env';

/**
 * The SDK as a user gets it: `npm pack ./client` (built by `npm test`'s
 * pretest into client/dist), installed with npm into a fresh folder outside
 * the repository, beside an example copied from client/examples/.
 */
export const ROOT = path.resolve(__dirname, '..', '..', '..');

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end (killed after timeoutMs); never rejects. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${opts.timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/**
 * Packs client/ and copies client/examples/<example> into a temporary folder outside the repo,
 * its package.json naming the tarball there; then `npm install` as its README says (from npm's
 * cache where it can: --prefer-offline).
 */
export async function installPackedSdk(example: 'node' | 'browser'): Promise<{ dir: string; tarball: string; remove(): void }> {
  const tmp = tempDir(`sb-sdk-${example}-`);
  const packed = await run(NPM, ['pack', './client', '--pack-destination', tmp.dir, '--json'], { timeoutMs: 60_000 });
  if (packed.code !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
  const tarball = path.join(tmp.dir, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename);
  const src = path.join(ROOT, 'client', 'examples', example);
  cpSync(src, tmp.dir, { recursive: true, filter: (f) => !f.includes('node_modules') });
  // The example's package.json names the tarball by its place in the repo (npm run sdk:pack); here it is beside it.
  const manifest = JSON.parse(readFileSync(path.join(src, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  manifest.dependencies['@switchboard/client'] = `file:${tarball}`;
  writeFileSync(path.join(tmp.dir, 'package.json'), JSON.stringify(manifest, null, 2));
  const installed = await run(NPM, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: tmp.dir, timeoutMs: 240_000 });
  if (installed.code !== 0) throw new Error(`npm install of the packed SDK failed: ${installed.stderr}`);
  return { dir: tmp.dir, tarball, remove: tmp.remove };
}
