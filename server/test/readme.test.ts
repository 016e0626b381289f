import { readdirSync, readFileSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { freePort, mediaPorts, tempDir } from './helpers/env';
import { killAllPeers, spawnPeer, type MediaPeer } from './helpers/mediaPeers';
import { requireBuiltMain } from './helpers/process';
import { localize, nodeShown, outputMismatch, parseReadme, readReadme, ROOT, shellSteps, ShellSession, type Block, type Section } from './helpers/readme';
import { until } from './helpers/wait';

/**
 * README.md as executable truth: every ```sh/```bash block (and every ```js/```ts
 * block) runs, in order, in one bash session per section, against a server started
 * with the README's own `npm start`, in a working folder that looks like a checkout
 * (the repository's files linked, its own ./data and ./recordings), on a free port:
 * `localhost:8080` in the blocks is the only text rewritten (to that port). What a command
 * prints must have the shape of the response the README shows after it. Blocks that
 * cannot run here carry `<!-- readme-test: skip — why -->`; the first test lists them.
 */

const STEP_TIMEOUT_MS = 30_000;
const SERVER_TIMEOUT_MS = 90_000;
const sections = readReadme();
const runnable = (s: Section) => s.blocks.some((b) => b.kind !== 'other' && b.skip === undefined);

let work: ReturnType<typeof tempDir>;
let scratch: string;
let port: number;
let env: Record<string, string>;
let releasePorts: () => Promise<void>;
/** The shared server (`npm start` with no further variables), while it runs. */
let shared: { session: ShellSession; log: string } | undefined;

beforeAll(async () => {
  requireBuiltMain();
  work = tempDir('sb-readme-');
  scratch = path.join(work.dir, '.readme-test');
  mkdirSync(scratch);
  // A checkout: everything of the repository but its state (data, recordings) and git.
  for (const entry of readdirSync(ROOT)) {
    if (['.git', 'data', 'recordings', 'coverage'].includes(entry)) continue;
    symlinkSync(path.join(ROOT, entry), path.join(work.dir, entry));
  }
  port = await freePort();
  const media = await mediaPorts();
  releasePorts = media.release;
  // What the README's Configuration section documents for one machine with several
  // interfaces, on ports of this test's own: the rest is the defaults.
  env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    PORT: String(port),
    HOST: '127.0.0.1',
    MEDIASOUP_LISTEN_IP: '127.0.0.1',
    MEDIASOUP_ANNOUNCED_ADDRESS: '127.0.0.1',
    MEDIASOUP_WORKERS: '1',
    ...media.env,
  };
}, 30_000);

afterAll(async () => {
  await killAllPeers();
  await stopShared();
  await releasePorts?.();
  work?.remove();
}, 30_000);

function serverLog(log: string): string {
  try {
    return readFileSync(log, 'utf8').slice(-4000);
  } catch {
    return '(no log)';
  }
}

async function waitServer(log: string, pgid: number): Promise<void> {
  await until(
    () => `the server on port ${port} to be ready; its log:\n${serverLog(log)}`,
    async () => {
      try {
        process.kill(pgid, 0); // the group's leader (the group itself may not exist yet: setsid runs after the fork)
      } catch {
        throw new Error(`the server exited; its log:\n${serverLog(log)}`);
      }
      const res = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null);
      return res?.status === 200;
    },
    { timeoutMs: SERVER_TIMEOUT_MS, intervalMs: 200 },
  );
}

async function startShared(): Promise<void> {
  if (shared) return;
  const session = new ShellSession(work.dir, scratch, env);
  const log = path.join(scratch, 'server-shared.log');
  const pgid = await session.background('npm start', log);
  shared = { session, log };
  await waitServer(log, pgid);
}

async function stopShared(): Promise<void> {
  if (!shared) return;
  const s = shared;
  shared = undefined;
  await s.session.close();
}

function where(block: Block, offset = 1): string {
  return `README.md:${block.line + offset}`;
}

/** A real WebRTC participant (mediasoup-client on wrtc, what the call page does) publishing in `room`. */
async function joinParticipant(room: string): Promise<MediaPeer> {
  const res = await fetch(`http://127.0.0.1:${port}/dev/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ display_name: 'Ada', room, role: 'host' }),
  });
  expect(res.status).toBe(201);
  const { token } = (await res.json()) as { token: string };
  const peer = spawnPeer({ name: `readme-${room}` });
  await peer.start({ url: `http://127.0.0.1:${port}`, token, room, displayName: 'Ada', publish: { audio: true, video: true } }, 60_000);
  return peer;
}

/** Runs one block in the section's session; returns what went wrong, or []. */
async function runBlock(session: ShellSession, block: Block, n: number, peers: MediaPeer[]): Promise<string[]> {
  const problems: string[] = [];
  if (block.participant !== undefined) {
    if (!shared && !sessionHasServer.has(session)) await startShared();
    peers.push(await joinParticipant(block.participant));
  }
  if (block.kind === 'node') {
    const code = localize(block.code, port);
    const esm = /^\s*(import|export)\s/m.test(code);
    const ts = block.lang.startsWith('t');
    const file = path.join(work.dir, `.readme-block-${n}.${ts ? (esm ? 'mts' : 'cts') : esm ? 'mjs' : 'cjs'}`);
    writeFileSync(file, code);
    const r = await session.run(`node ${JSON.stringify(file)}`, STEP_TIMEOUT_MS);
    if (r.rc !== 0) return [`${where(block)}: node exited ${r.rc}\n${r.stderr}${r.stdout}`];
    const printed = r.stdout.split('\n').filter((l) => l.trim() !== '');
    const shown = nodeShown(block.code);
    if (printed.length !== shown.length) problems.push(`${where(block)}: printed ${printed.length} lines, the README shows ${shown.length}:\n${r.stdout}`);
    shown.forEach((s, i) => {
      const m = i < printed.length ? outputMismatch(s, printed[i]!) : null;
      if (m) problems.push(`${where(block)}: line ${i + 1}: ${m}`);
    });
    return problems;
  }
  for (const step of shellSteps(block.code)) {
    const code = localize(step.code, port);
    const at = where(block, step.offset);
    if (step.server) {
      await stopShared(); // the section starts a server of its own on the same port
      const log = path.join(scratch, `server-${n}.log`);
      const pgid = await session.background(code, log);
      await waitServer(log, pgid);
      continue;
    }
    if (!shared && !sessionHasServer.has(session)) await startShared();
    const r = await session.run(code, STEP_TIMEOUT_MS).catch((err: Error) => {
      throw new Error(`${at}: ${err.message}`); // e.g. "CALL_ID: unbound variable"
    });
    if (r.failed.length > 0 || r.rc !== 0) {
      problems.push(
        `${at}: failed (exit ${r.rc}) at ${r.failed.join('; ') || 'the last command'}\n--- step ---\n${code}\n--- stderr ---\n${r.stderr}--- stdout ---\n${r.stdout}` +
          (shared ? `\n--- server log ---\n${serverLog(shared.log)}` : ''),
      );
      break; // later steps depend on this one
    }
    if (step.shown === undefined) {
      if (r.stdout.trim() !== '') problems.push(`${at}: printed ${JSON.stringify(r.stdout.trim())} but the README shows no response (add "# → …")`);
    } else {
      const m = outputMismatch(step.shown, r.stdout);
      if (m) problems.push(`${at}: ${m}`);
    }
  }
  return problems;
}

/** Sessions whose section started its own server (the shared one is not needed then). */
const sessionHasServer = new Set<ShellSession>();

describe('README.md', () => {
  it('has runnable blocks, and a reason for every skipped one', () => {
    const all = sections.flatMap((s) => s.blocks.filter((b) => b.kind !== 'other').map((b) => ({ ...b, section: s.title })));
    const skipped = all.filter((b) => b.skip !== undefined);
    console.log(
      `README.md: ${all.length - skipped.length} of ${all.length} shell/node blocks run; ${skipped.length} skipped:\n` +
        skipped.map((b) => `  line ${b.line} (${b.section}, ${b.lang}): ${b.skip}`).join('\n'),
    );
    expect(all.length - skipped.length).toBeGreaterThan(0);
    for (const b of skipped) expect(b.skip!.length).toBeGreaterThan(10);
  });

  const toRun = sections.filter(runnable);
  it.each(toRun.map((s) => [s.title, s] as const))(
    'runs the blocks of "%s" as written',
    async (_title, section) => {
      const session = new ShellSession(work.dir, scratch, env);
      if (section.blocks.some((b) => b.skip === undefined && b.kind === 'shell' && shellSteps(b.code).some((s) => s.server))) sessionHasServer.add(session);
      const problems: string[] = [];
      const peers: MediaPeer[] = [];
      try {
        let n = 0;
        for (const block of section.blocks) {
          n++;
          if (block.kind === 'other' || block.skip !== undefined) continue;
          problems.push(...(await runBlock(session, block, sections.indexOf(section) * 100 + n, peers)));
          if (problems.length > 0) break;
        }
      } finally {
        await Promise.all(peers.map((p) => p.stop()));
        await session.close();
        sessionHasServer.delete(session);
      }
      expect(problems).toEqual([]);
    },
    240_000,
  );
});

describe('the README harness', () => {
  it('reads blocks, skip comments and the responses shown after commands', () => {
    const [section] = parseReadme(
      [
        '## A',
        '<!-- readme-test: skip — needs Docker -->',
        '```sh',
        'docker run x',
        '```',
        '```bash',
        'X=1',
        'echo "$X"',
        '# → 1',
        'true',
        '```',
        '```json',
        '{}',
        '```',
      ].join('\n'),
    );
    expect(section!.blocks.map((b) => [b.kind, b.skip])).toEqual([
      ['shell', 'needs Docker'],
      ['shell', undefined],
      ['other', undefined],
    ]);
    expect(shellSteps(section!.blocks[1]!.code)).toEqual([
      { offset: 1, code: 'X=1\necho "$X"', shown: '1', server: false },
      { offset: 4, code: 'true', server: false },
    ]);
    expect(shellSteps('A=b \\\n  npm start')[0]!.server).toBe(true);
    expect(() => parseReadme('<!-- readme-test: maybe -->\n```sh\nx\n```')).toThrow(/unknown readme-test directive/);
  });

  it('compares responses by shape: keys, literal values, … wildcards', () => {
    const token = '{"token":"eyJ…","token_type":"Bearer","expires_in":3600,"expires_at":"…"}';
    expect(outputMismatch(token, '{"token":"eyJabc","token_type":"Bearer","expires_in":3600,"expires_at":"2026-01-01T00:00:00Z"}')).toBeNull();
    // What a wrong key variable gets: a 401 is not the token the README shows.
    expect(outputMismatch(token, '{"error":{"code":"API_KEY_INVALID","message":"x"}}')).toMatch(/keys differ/);
    expect(outputMismatch(token, '{"token":"abc","token_type":"Bearer","expires_in":3600,"expires_at":"x"}')).toMatch(/not like "eyJ…"/);
    expect(outputMismatch('{"items":[…],"n":…}', '{"items":[1,2],"n":null}')).toBeNull();
    expect(outputMismatch('{"items":[]}', '{"items":[1]}')).toMatch(/1 items/);
    expect(outputMismatch('200 video/webm … bytes', '200 video/webm 38698 bytes\n')).toBeNull();
    expect(outputMismatch('200 video/webm … bytes', '404 application/json 80 bytes')).toMatch(/README shows/);
  });

  it('fails a command that uses a variable no block has set', async () => {
    const dir = tempDir('sb-readme-unit-');
    const session = new ShellSession(dir.dir, dir.dir, { PATH: process.env.PATH ?? '' });
    try {
      expect(await session.run('KEY=abc\necho "$KEY"', 5000)).toMatchObject({ rc: 0, stdout: 'abc\n', failed: [] });
      expect((await session.run('false | cat\necho after', 5000)).failed).toEqual(['1: cat']); // the pipeline's last command, as bash names it
      await expect(session.run('echo "$CALL_ID"', 5000)).rejects.toThrow(/CALL_ID: unbound variable/);
    } finally {
      await session.close();
      dir.remove();
    }
  });
});
