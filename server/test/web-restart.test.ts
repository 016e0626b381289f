/// <reference lib="dom" />
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, FLAGS, joinThroughPage, requireChromium } from './helpers/chromium';
import { freePort, mediaPorts, tempDir } from './helpers/env';
import { runServer, waitReady, type Proc } from './helpers/process';
import { until } from './helpers/wait';

/**
 * A restart does not end a call for the people in it: two pages of the web
 * client in Chromium are in a call, the server is stopped (SIGINT, then
 * SIGTERM) and started again on the same port and DATA_DIR; both pages come
 * back into the room by themselves, without a click, and play each other's
 * video again within 15 s of the restarted server answering. The stop itself
 * is bounded by SHUTDOWN_TIMEOUT_MS.
 */
jest.setTimeout(180_000);

const SHUTDOWN_TIMEOUT_MS = 10_000;

type Sb = { switchboard?: { participantId: string | null } | null };

/** The page's participant id now (null between calls). */
const myId = (page: Page) => page.evaluate(() => (window as unknown as Sb).switchboard?.participantId ?? null);

/** Whether the tile of `participantId` on `page` plays video (frames advance over 400 ms). */
async function playing(page: Page, participantId: string): Promise<boolean> {
  const frames = () =>
    page.evaluate((id) => {
      const v = document.querySelector<HTMLVideoElement>(`#tiles .tile[data-participant-id="${id}"] video`);
      return v && !v.paused && v.readyState >= 2 ? v.getVideoPlaybackQuality().totalVideoFrames : -1;
    }, participantId);
  const a = await frames();
  await page.waitForTimeout(400);
  const b = await frames();
  return a >= 0 && b > a + 2;
}

describe('a server restart under two pages in a call', () => {
  let server: Proc | undefined;
  let context: BrowserContext;
  let env: Record<string, string>;
  let base: string;
  const data = tempDir();
  const profile = tempDir('sb-chromium-');
  let release: () => Promise<void> = async () => undefined;

  /** Starts the server; resolves with how long it took to be ready, and when it was. */
  const start = async (): Promise<{ startMs: number; readyAt: number }> => {
    const t0 = Date.now();
    server = await runServer(env);
    await waitReady(server, () => fetch(`${base}/ready`));
    return { startMs: Date.now() - t0, readyAt: Date.now() };
  };

  beforeAll(async () => {
    requireChromium();
    const ports = await mediaPorts();
    release = ports.release;
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // The same port, media ports and DATA_DIR (keys, database) on every start: what a restart is.
    env = {
      NODE_ENV: 'development',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: data.dir,
      RECORDINGS_DIR: path.join(data.dir, 'rec'),
      MEDIASOUP_WORKERS: '1',
      MEDIASOUP_LISTEN_IP: '127.0.0.1',
      LOG_LEVEL: 'info',
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      ...ports.env,
    };
    await start();
    context = await chromium.launchPersistentContext(profile.dir, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1024, height: 700 },
    });
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    await release();
    data.remove();
    profile.remove();
  });

  /** Both pages in the call with ids other than `before`, each playing the other's video. */
  async function bothBack(pages: Page[], before: Array<string | null>, boundMs: number, t0: number): Promise<number> {
    let seen = '';
    return until(
      () => `both pages back in the call, playing each other (${seen})`,
      async () => {
        const ids = await Promise.all(pages.map(myId));
        seen = JSON.stringify({ ids, before, status: await Promise.all(pages.map((p) => p.textContent('#status').catch(() => null))) });
        if (ids.some((id, i) => !id || id === before[i])) return null;
        const ok = await Promise.all(pages.map((p, i) => playing(p, ids[1 - i]!)));
        return ok.every(Boolean) ? Date.now() - t0 : null;
      },
      { timeoutMs: boundMs, intervalMs: 100 },
    );
  }

  it.each(['SIGINT', 'SIGTERM'] as const)('after %s and a restart both pages are back with video within 15 s, without a click', async (signal) => {
    const room = `restart-${signal.toLowerCase()}`;
    const pages = [await joinThroughPage(context, base, 'Ada', 'host', room), await joinThroughPage(context, base, 'Bob', 'participant', room)];
    const ids = await Promise.all(pages.map(myId));
    await bothBack(pages, [null, null], 20_000, Date.now());

    const stopAt = Date.now();
    server!.child.kill(signal);
    const code = await server!.exited;
    if (code !== 0) console.log(server!.out().slice(-4000));
    expect(code).toBe(0);
    const stopMs = Date.now() - stopAt;
    expect(stopMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    // The pages wait for the server; they do not end the call.
    for (const page of pages) expect(await page.isVisible('section#call')).toBe(true);

    // The bound runs from the server answering again: its own start (3 s idle, more on a busy
    // machine) is not the clients' doing.
    const { startMs, readyAt } = await start();
    const back = await bothBack(pages, ids, 15_000, readyAt);
    console.log(`${signal}: stopped in ${stopMs} ms; restarted (ready) in ${startMs} ms; both pages back with video ${back} ms after that`);
    for (const page of pages) await page.close();
  });
});
