/// <reference lib="dom" />
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, FLAGS, joinThroughPage, requireChromium } from './helpers/chromium';
import { freePort, mediaPorts, tempDir } from './helpers/env';
import { runServer, waitReady, type Proc } from './helpers/process';
import { Client } from './helpers/signaling';
import { until } from './helpers/wait';

/**
 * The web client in Debian's Chromium (playwright-core, fake camera and
 * microphone), against the real server process: two pages join one room
 * through the page's form and each plays the other's video; the host mutes the
 * other and both tiles show it; the participant's page has no moderation
 * controls. A screenshot is saved in test-results/.
 */
jest.setTimeout(120_000);

const SHOTS = path.resolve(__dirname, '..', '..', 'test-results');

/** Frames decoded by the video of a participant's tile, measured twice `ms` apart. */
async function framesAdvance(page: Page, participantId: string, ms = 1000): Promise<[number, number]> {
  const frames = () =>
    page.evaluate((id) => {
      const v = document.querySelector<HTMLVideoElement>(`#tiles .tile[data-participant-id="${id}"] video`);
      return v && !v.paused && v.readyState >= 2 ? v.getVideoPlaybackQuality().totalVideoFrames : -1;
    }, participantId);
  const a = await frames();
  await page.waitForTimeout(ms);
  return [a, await frames()];
}

async function waitPlaying(page: Page, participantId: string, timeoutMs = 20_000): Promise<void> {
  let last = [-1, -1];
  await until(
    () => `the video of ${participantId} to play (frames ${last[0]} → ${last[1]})`,
    async () => {
      const [a, b] = (last = await framesAdvance(page, participantId, 500));
      return a >= 0 && b > a + 3;
    },
    { timeoutMs, intervalMs: 0 },
  );
}

describe('the web client in Chromium', () => {
  let server: Proc | undefined;
  let base: string;
  let context: BrowserContext;
  const data = tempDir();
  const profile = tempDir('sb-chromium-');
  let release: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    requireChromium();
    const ports = await mediaPorts();
    release = ports.release;
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = await runServer({
      NODE_ENV: 'development',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: data.dir,
      RECORDINGS_DIR: path.join(data.dir, 'rec'),
      MEDIASOUP_WORKERS: '1',
      MEDIASOUP_LISTEN_IP: '127.0.0.1',
      LOG_LEVEL: 'warn',
      MAX_PARTICIPANTS_PER_ROOM: '2',
      ...ports.env,
    });
    await waitReady(server, () => fetch(`${base}/ready`));
    context = await chromium.launchPersistentContext(profile.dir, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1280, height: 800 },
    });
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGINT');
      await server.exited;
    }
    await release();
    data.remove();
    profile.remove();
  });

  async function joinAs(name: string, role: 'host' | 'participant', room: string): Promise<{ page: Page; id: string }> {
    const page = await joinThroughPage(context, base, name, role, room);
    const id = await page.waitForFunction(
      () => (window as unknown as { switchboard?: { participantId: string | null } }).switchboard?.participantId ?? null,
      null,
      { timeout: 10_000 },
    );
    return { page, id: (await id.jsonValue()) as string };
  }

  it('two pages join one room and play each other; the host mutes the other; a participant has no moderation controls', async () => {
    const room = 'web-room';
    const host = await joinAs('Ada', 'host', room);
    const guest = await joinAs('Bob', 'participant', room);

    // Each page shows the other's tile, and its video plays (frames advance).
    await host.page.waitForSelector(`#tiles .tile[data-participant-id="${guest.id}"]`);
    await guest.page.waitForSelector(`#tiles .tile[data-participant-id="${host.id}"]`);
    await waitPlaying(host.page, guest.id);
    await waitPlaying(guest.page, host.id);
    // The participant list shows both, with roles.
    expect(await host.page.textContent(`#participants li[data-participant-id="${guest.id}"] .role`)).toMatch(/participant/i);
    expect(await guest.page.textContent(`#participants li[data-participant-id="${host.id}"] .role`)).toMatch(/host/i);

    // The host mutes Bob's microphone from the participant list: both pages' tiles show it.
    await host.page.click(`#participants li[data-participant-id="${guest.id}"] button[data-action="mute-audio"]`);
    await host.page.waitForSelector(`#tiles .tile[data-participant-id="${guest.id}"][data-audio-muted="true"] .tile-muted`, { state: 'visible' });
    await guest.page.waitForSelector(`#tiles .tile[data-participant-id="${guest.id}"][data-audio-muted="true"]`);
    // Bob's own microphone button shows the mute.
    expect(await guest.page.getAttribute('#toggle-audio', 'aria-pressed')).toBe('true');

    // The participant's page has no moderation controls at all; the host's has them.
    expect(await guest.page.locator('#participants button[data-action]').count()).toBe(0);
    expect(await guest.page.locator('#host-controls').count()).toBe(0);
    expect(await host.page.locator('#host-controls #record').count()).toBe(1);
    expect(await host.page.locator('#host-controls #end-call').count()).toBe(1);

    mkdirSync(SHOTS, { recursive: true });
    const shot = path.join(SHOTS, 'web-call.png');
    await host.page.screenshot({ path: shot, fullPage: true });
    expect(existsSync(shot)).toBe(true);

    // The host ends the call: the guest's page goes back to the form with a message.
    await host.page.click('#end-call');
    await guest.page.waitForSelector('form#join-form', { state: 'visible', timeout: 10_000 });
  });

  it('says clearly when the room is full', async () => {
    // The server runs with MAX_PARTICIPANTS_PER_ROOM=2: two clients fill the room first.
    const room = 'full-room';
    const fillers: Client[] = [];
    for (const name of ['Cy', 'Di']) {
      const res = await fetch(`${base}/dev/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ display_name: name, room }),
      });
      const c = new Client(base, { token: ((await res.json()) as { token: string }).token });
      fillers.push(c);
      await c.connected();
      await c.join(room);
    }
    const page = await context.newPage();
    await page.goto(base);
    await page.fill('#name', 'Eve');
    await page.fill('#room', room);
    await page.click('#join');
    await page.waitForFunction(() => /full/i.test(document.querySelector('#error')?.textContent ?? ''), null, { timeout: 10_000 });
    await page.close();
    for (const c of fillers) c.close();
  });

  it('says clearly when the camera is denied, and stays in the call to see and hear the others', async () => {
    // Without --use-fake-ui-for-media-stream, headless Chromium denies the permission prompt.
    const denied = tempDir('sb-chromium-denied-');
    const ctx = await chromium.launchPersistentContext(denied.dir, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS.filter((f) => f !== '--use-fake-ui-for-media-stream'),
    });
    try {
      const page = await ctx.newPage();
      await page.goto(base);
      await page.fill('#name', 'Fay');
      await page.fill('#room', 'denied-room');
      await page.click('#join');
      await page.waitForFunction(() => /denied/i.test(document.querySelector('#error')?.textContent ?? ''), null, { timeout: 15_000 });
      expect(await page.isVisible('section#call')).toBe(true);
    } finally {
      await ctx.close();
      denied.remove();
    }
  });
});
