/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import type { BrowserContext, Page } from 'playwright-core';

/**
 * Debian's Chromium for the page tests (playwright-core), headless, with a
 * fake camera and microphone granted without a prompt.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

/** Throws with what to do when Chromium is not installed. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM}: scripts/setup.sh installs Debian's chromium (or set CHROMIUM_PATH)`);
}

/** Opens the web client at `base` in a new page and joins `room` through its form; resolves once the call shows. */
export async function joinThroughPage(context: BrowserContext, base: string, name: string, role: 'host' | 'participant', room: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`[${name}] page error: ${err.message}`));
  await page.goto(base);
  await page.fill('#name', name);
  await page.fill('#room', room);
  await page.selectOption('#role', role);
  await page.click('#join');
  await page.waitForSelector('section#call', { state: 'visible', timeout: 20_000 });
  return page;
}
