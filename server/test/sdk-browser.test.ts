/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, FLAGS, requireChromium } from './helpers/chromium';
import { admin, issueToken, startTestApp, type TestApp } from './helpers/app';
import { freePort, tempDir } from './helpers/env';
import { installPackedSdk, NPM, ROOT, run } from './helpers/sdkPackage';
import { listen } from './helpers/signaling';
import { until } from './helpers/wait';

/**
 * client/examples/browser as a user runs it: the packed SDK installed outside
 * the repo, `npm run build` (esbuild bundles main.ts with the package and its
 * dependencies' browser builds), `npm run serve`, and the page opened in
 * Debian's Chromium (fake camera and microphone) by two users of one room:
 * each joins, plays the other's video, and leaves.
 */
jest.setTimeout(300_000);

/** Frames decoded by the page's remote videos, summed. */
const remoteFrames = (page: Page) =>
  page.evaluate(() =>
    [...document.querySelectorAll<HTMLVideoElement>('#videos video[data-producer-id]')]
      .filter((v) => !v.hidden)
      .reduce((n, v) => n + v.getVideoPlaybackQuality().totalVideoFrames, 0),
  );

describe('the browser example, bundled from the packed SDK', () => {
  let t: TestApp;
  let url: string;
  let pkg: { dir: string; remove(): void };
  let serve: ChildProcess | undefined;
  let page: string;
  let context: BrowserContext;
  const profile = tempDir('sb-chromium-');

  beforeAll(async () => {
    requireChromium();
    const port = await freePort();
    page = `http://127.0.0.1:${port}`;
    [t, pkg] = await Promise.all([startTestApp('pglite', { CORS_ORIGINS: page }), installPackedSdk('browser')]);
    url = await listen(t);
    const built = await run(NPM, ['run', 'build'], { cwd: pkg.dir, timeoutMs: 60_000 });
    if (built.code !== 0) throw new Error(`npm run build failed: ${built.stdout}${built.stderr}`);
    serve = spawn(process.execPath, ['serve.mjs', String(port)], { cwd: pkg.dir, stdio: 'ignore' });
    await until(
      'the example server',
      () =>
        fetch(page).then(
          (r) => r.ok,
          () => false,
        ),
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    context = await chromium.launchPersistentContext(profile.dir, { executablePath: CHROMIUM, headless: true, args: FLAGS });
  });
  afterAll(async () => {
    await context?.close().catch(() => undefined);
    serve?.kill();
    await t?.close();
    pkg?.remove();
    profile.remove();
  });

  it('is bundled by esbuild for the browser (no Node build of socket.io-client inside)', async () => {
    const bundle = path.join(pkg.dir, 'main.js');
    expect(statSync(bundle).size).toBeGreaterThan(50_000);
    const text = await (await fetch(`${page}/main.js`)).text();
    expect(text).not.toContain('Dynamic require of');
    expect(text).not.toMatch(/require\(["']tty["']\)/);
  });

  it("type-checks main.ts against the package's declarations, as a bundler project", async () => {
    writeFileSync(
      path.join(pkg.dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2022',
          module: 'esnext',
          moduleResolution: 'bundler',
          strict: true,
          noEmit: true,
          lib: ['es2023', 'dom', 'dom.iterable'],
          types: [],
        },
        files: ['main.ts'],
      }),
    );
    const tsc = await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', pkg.dir], { cwd: pkg.dir });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.code).toBe(0);
  });

  it('joins a call in Chromium: two pages play each other, then leave', async () => {
    const room = 'browser-example';
    const open = async (user: string, role: string) => {
      const token = await issueToken(t, { user_id: user, room, role, display_name: user });
      const p = await context.newPage();
      const errors: string[] = [];
      p.on('pageerror', (e) => errors.push(e.message));
      await p.goto(`${page}/#url=${encodeURIComponent(url)}&token=${token}`);
      await p.waitForSelector('body[data-joined="true"]', { timeout: 30_000 }).catch(async (e: Error) => {
        throw new Error(`${user} did not join: ${await p.textContent('#status')} ${await p.textContent('#error')} ${errors.join('; ')} (${e.message})`);
      });
      return p;
    };
    const ada = await open('ada', 'host');
    const bob = await open('bob', 'participant');
    for (const p of [ada, bob]) {
      let frames = [0, 0];
      await until(
        () => `remote video to play (frames ${frames[0]} → ${frames[1]})`,
        async () => {
          frames = [await remoteFrames(p), (await p.waitForTimeout(500), await remoteFrames(p))];
          return frames[1]! > frames[0]! + 3;
        },
        { timeoutMs: 30_000, intervalMs: 0 },
      );
      expect(await p.textContent('#error')).toBe('');
    }
    expect(await ada.evaluate(() => (window as unknown as { call: { participants: Map<string, unknown> } }).call.participants.size)).toBe(2);

    for (const p of [ada, bob]) {
      await p.click('#leave');
      await p.waitForFunction(() => document.getElementById('status')?.textContent === 'left', null, { timeout: 10_000 });
    }
    const list = await t.app.inject({ method: 'GET', url: `/calls?room_id=${room}`, headers: admin });
    const callId = (list.json() as { items: Array<{ id: string }> }).items[0]!.id;
    const call = (await t.app.inject({ method: 'GET', url: `/calls/${callId}`, headers: admin })).json() as { participants: Array<{ left_at: string | null }> };
    expect(call.participants).toHaveLength(2);
    expect(call.participants.every((p) => p.left_at !== null)).toBe(true);
  });
});
