import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './helpers/env';
import { ROOT } from './helpers/readme';

/**
 * A clone that was never set up (no node_modules, no dist): `npm start` must say
 * what to do (the README's promise) instead of a "Cannot find module" stack.
 */
describe('npm start in a fresh clone', () => {
  it('prints "run ./scripts/setup.sh" and exits non-zero within seconds', async () => {
    const clone = tempDir('sb-clone-');
    try {
      const files = execFileSync('git', ['-C', ROOT, 'ls-files', '-z'], { encoding: 'utf8' }).split('\0').filter(Boolean);
      expect(files).toContain('package.json');
      for (const f of files) {
        const from = path.join(ROOT, f);
        if (!existsSync(from)) continue; // deleted in the working tree, not yet committed
        mkdirSync(path.dirname(path.join(clone.dir, f)), { recursive: true });
        copyFileSync(from, path.join(clone.dir, f));
      }
      expect(existsSync(path.join(clone.dir, 'node_modules'))).toBe(false);
      expect(existsSync(path.join(clone.dir, 'dist'))).toBe(false);

      const started = Date.now();
      const child = spawn('npm', ['start'], {
        cwd: clone.dir,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', npm_config_update_notifier: 'false' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      clearTimeout(timer);

      expect(out).toContain('run ./scripts/setup.sh');
      expect(out).not.toMatch(/Cannot find module|ERR_MODULE_NOT_FOUND/);
      expect(code).not.toBe(0);
      expect(code).not.toBeNull(); // it exited by itself, not by the timer
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      clone.remove();
    }
  }, 30_000);
});
