import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { TEST_API_KEY } from './helpers/app';
import { tempDir } from './helpers/env';
import { parseExposition, total } from './helpers/metrics';
import { useSignalingApp } from './helpers/signaling';

/**
 * The users' load test (scripts/load/artillery.yml, through npm run
 * load:artillery's script) run with Artillery itself against a real server,
 * small and bounded: its thresholds must hold and the server must have
 * counted every join. Artillery is not a dependency (~470 MB): this runs only
 * where it is installed, ARTILLERY_BIN or node_modules/.bin/artillery.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const LOCAL = path.join(ROOT, 'node_modules', '.bin', 'artillery');
const ARTILLERY = process.env.ARTILLERY_BIN ?? (existsSync(LOCAL) ? LOCAL : undefined);
const RUN = { duration: 5, rate: 2, hold: 2 };
const USERS = RUN.duration * RUN.rate;

jest.setTimeout(120_000);

interface Report {
  aggregate: { counters: Record<string, number>; summaries: Record<string, { p95: number; count: number }> };
}

(ARTILLERY ? describe : describe.skip)(`Artillery load test${ARTILLERY ? '' : ' (skipped: set ARTILLERY_BIN or install artillery)'}`, () => {
  const app = useSignalingApp('postgres');

  it(`${USERS} users get a token, join with an ack, hold the call and leave within the thresholds`, async () => {
    const out = tempDir('sb-artillery-');
    try {
      const report = path.join(out.dir, 'report.json');
      const args = ['--target', app.url, '--duration', String(RUN.duration), '--rate', String(RUN.rate), '--hold', String(RUN.hold), '--out', report];
      const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'load', 'run-artillery.mjs'), ...args], {
        env: { ...process.env, ARTILLERY_BIN: ARTILLERY, SWITCHBOARD_API_KEY: TEST_API_KEY },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      // The figures of the run, for whoever reads the test log.
      console.log(output.slice(output.indexOf('Summary report')));
      expect({ code, checks: output.includes('Checks:') }).toEqual({ code: 0, checks: true });

      const { aggregate } = JSON.parse(readFileSync(report, 'utf8')) as Report;
      expect(aggregate.counters['vusers.created']).toBe(USERS);
      expect(aggregate.counters['vusers.completed']).toBe(USERS);
      expect(aggregate.counters['vusers.failed'] ?? 0).toBe(0);
      expect(aggregate.counters['switchboard.join_ok']).toBe(USERS);
      expect(aggregate.summaries['switchboard.join_ack_ms']!.p95).toBeLessThan(500);

      const server = parseExposition((await app.t.app.inject({ method: 'GET', url: '/metrics' })).body);
      expect(total(server, 'switchboard_join_duration_seconds_count', { result: 'ok' })).toBe(USERS);
      expect(total(server, 'switchboard_http_requests_total', { method: 'POST', route: '/auth/token', status: '201' })).toBe(USERS);
    } finally {
      out.remove();
    }
  });
});
