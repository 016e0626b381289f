#!/usr/bin/env node
/**
 * The load test for users: runs scripts/load/artillery.yml (Artillery's Socket.IO engine:
 * token, connect, auth, join with ack, hold the call, leave) against a Switchboard server,
 * with its `ensure` thresholds (p95 join ack < 500 ms, no failed user). Exit code: Artillery's
 * (1 when a threshold fails).
 *
 *   SWITCHBOARD_API_KEY=... npm run load:artillery -- --target https://sb.example.com \
 *     [--duration 20] [--rate 2] [--hold 5] [--room-size 4] [--out report.json]
 *
 * Artillery is not a dependency of the project (with its plugins it is ~470 MB): this runs
 * ARTILLERY_BIN when set, else node_modules/.bin/artillery when installed, else
 * `npx --yes artillery@ARTILLERY_VERSION` (downloaded once into npm's cache; Playwright's
 * browser download is skipped, the Socket.IO engine does not need it).
 * Every phase is bounded: --duration seconds of arrivals, then --hold seconds at most.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions } from '../lib/options.mjs';

export const ARTILLERY_VERSION = '2.0.34';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const SCENARIO = path.join(HERE, 'artillery.yml');

/**
 * How to run Artillery here: ARTILLERY_BIN, a local install, or (allowNpx) npx with the pinned version.
 * @param {{ allowNpx: boolean }} opts
 * @returns {{ command: string, args: string[] } | undefined}
 */
export function findArtillery({ allowNpx }) {
  if (process.env.ARTILLERY_BIN) return { command: process.env.ARTILLERY_BIN, args: [] };
  const local = path.join(ROOT, 'node_modules', '.bin', 'artillery');
  if (existsSync(local)) return { command: local, args: [] };
  return allowNpx ? { command: 'npx', args: ['--yes', `artillery@${ARTILLERY_VERSION}`] } : undefined;
}

/**
 * Artillery's arguments for one run of the scenario with these figures (config overrides).
 * @param {{ target: string, duration: number, rate: number, hold: number, out?: string }} o
 */
export function artilleryArgs(o) {
  const overrides = {
    config: {
      phases: [{ name: 'arrivals', duration: o.duration, arrivalRate: o.rate }],
      variables: { holdSeconds: o.hold },
    },
  };
  return ['run', '--target', o.target, '--overrides', JSON.stringify(overrides), ...(o.out ? ['--output', o.out] : []), SCENARIO];
}

async function main() {
  const { values: o, fail } = parseOptions('npm run load:artillery --', {
    target: { type: 'string', default: 'http://127.0.0.1:8080', arg: 'URL', help: 'the Switchboard server' },
    duration: { type: 'integer', default: 20, min: 1, max: 3600, arg: 'S', help: 'seconds of arrivals' },
    rate: { type: 'integer', default: 2, min: 1, max: 1000, help: 'new virtual users per second' },
    hold: { type: 'integer', default: 5, min: 0, max: 3600, arg: 'S', help: 'seconds each user stays in the call' },
    'room-size': { type: 'integer', default: 4, min: 1, max: 10_000, help: 'users per room' },
    out: { type: 'string', arg: 'FILE', help: "also write Artillery's JSON report to FILE" },
  });
  if (!process.env.SWITCHBOARD_API_KEY) fail('set SWITCHBOARD_API_KEY to one of the server API_KEYS (development: data/keys/dev-api-key)');
  const artillery = /** @type {{ command: string, args: string[] }} */ (findArtillery({ allowNpx: true }));
  const args = [...artillery.args, ...artilleryArgs({ target: o.target, duration: o.duration, rate: o.rate, hold: o.hold, out: o.out })];
  const child = spawn(artillery.command, args, {
    stdio: 'inherit',
    env: {
      ...process.env,
      SWITCHBOARD_URL: o.target,
      LOAD_ROOM_SIZE: String(o['room-size']),
      PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1',
      ARTILLERY_DISABLE_TELEMETRY: 'true',
    },
  });
  const stop = () => child.kill('SIGINT');
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const code = await new Promise((resolve) => child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
  process.exit(/** @type {number} */ (code));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
