import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { until } from './wait';

/**
 * The README as executable truth: its code blocks, grouped by `## ` section, the
 * responses it shows after commands, and a bash session that runs them.
 *
 * Conventions the README follows (and readme.test.ts enforces):
 * - ```sh / ```bash blocks run; ```js / ```ts blocks run with node (an ES module when
 *   it imports, CommonJS otherwise). Any of them may be preceded by
 *   `<!-- readme-test: skip — why -->` instead.
 * - `# → <response>` after a shell command (`// → <line>` in a node block) is what the
 *   command prints: JSON is compared by shape (same keys; `…` or `"…"` is any value, `"ab…"` a
 *   string starting `ab`; an array ending in `"…"` may hold more), anything else as text
 *   with `…` matching anything. Lines `#   …` right after it continue the response.
 *   A command that prints while the README shows nothing fails.
 * - `<!-- readme-test: participant ROOM -->` before a block: a real WebRTC peer joins ROOM and
 *   publishes audio and video first (where the README asks for someone on the call page).
 * - A command ending in `npm start` starts a server: the harness runs it in the
 *   background and stops it at the end of the section.
 */

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const README = path.join(ROOT, 'README.md');

export type Kind = 'shell' | 'node' | 'other';

export interface Block {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  kind: Kind;
  code: string;
  /** The reason given by a `<!-- readme-test: skip — reason -->` comment just before the block. */
  skip?: string;
  /**
   * `<!-- readme-test: participant ROOM -->`: the block needs someone in ROOM's call, publishing
   * (what the README asks the reader to do in a browser); the harness joins a real WebRTC peer first.
   */
  participant?: string;
}

export interface Section {
  title: string;
  blocks: Block[];
}

const SHELL = new Set(['sh', 'bash', 'shell']);
const NODE = new Set(['js', 'javascript', 'mjs', 'cjs', 'ts', 'typescript']);
const DIRECTIVE = /^<!--\s*readme-test:\s*(.*?)\s*-->$/;

export function kindOf(lang: string): Kind {
  return SHELL.has(lang) ? 'shell' : NODE.has(lang) ? 'node' : 'other';
}

/** The README's fenced blocks (also those indented in a list item), grouped by `## ` heading. */
export function parseReadme(markdown: string): Section[] {
  const lines = markdown.split('\n');
  const sections: Section[] = [{ title: '(top)', blocks: [] }];
  let directive: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heading = /^## (.+)$/.exec(line);
    if (heading) {
      sections.push({ title: heading[1]!.trim(), blocks: [] });
      directive = undefined;
      continue;
    }
    const fence = /^(\s*)```(\S*)\s*$/.exec(line);
    if (!fence) {
      const d = DIRECTIVE.exec(line.trim());
      if (d) directive = d[1]!;
      else if (line.trim() !== '') directive = undefined;
      continue;
    }
    const indent = fence[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !/^\s*```\s*$/.test(lines[j]!)) body.push(lines[j++]!.slice(indent));
    if (j >= lines.length) throw new Error(`README.md:${i + 1}: unclosed code fence`);
    const lang = fence[2]!.toLowerCase();
    const skip = directive === undefined ? undefined : /^skip\b\s*[—:-]?\s*(.*)$/.exec(directive)?.[1];
    const participant = directive === undefined ? undefined : /^participant\s+(\S+)$/.exec(directive)?.[1];
    if (directive !== undefined && skip === undefined && participant === undefined)
      throw new Error(`README.md:${i + 1}: unknown readme-test directive "${directive}"`);
    sections[sections.length - 1]!.blocks.push({
      line: i + 1,
      lang,
      kind: kindOf(lang),
      code: body.join('\n'),
      ...(skip !== undefined ? { skip } : {}),
      ...(participant !== undefined ? { participant } : {}),
    });
    directive = undefined;
    i = j;
  }
  return sections.filter((s) => s.blocks.length > 0);
}

export function readReadme(): Section[] {
  return parseReadme(readFileSync(README, 'utf8'));
}

export interface Step {
  /** 1-based line of the step's first line within the block. */
  offset: number;
  code: string;
  /** The response the README shows after it, if any. */
  shown?: string;
  /** It ends by starting a server (`… npm start`): run it in the background. */
  server: boolean;
}

/** A shell block cut after each `# →` comment: every part runs on its own so its output can be compared. */
export function shellSteps(code: string): Step[] {
  const lines = code.split('\n');
  const steps: Step[] = [];
  let start = 0;
  let current: string[] = [];
  const push = (shown?: string) => {
    const body = current.join('\n');
    if (body.trim() !== '' || shown !== undefined)
      steps.push({ offset: start + 1, code: body, ...(shown !== undefined ? { shown } : {}), server: startsServer(body) });
    current = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const arrow = /^\s*# → ?(.*)$/.exec(line);
    if (!arrow) {
      if (current.length === 0) start = i;
      current.push(line);
      continue;
    }
    const shown = [arrow[1]!];
    while (i + 1 < lines.length && /^\s*# {3}/.test(lines[i + 1]!)) shown.push(lines[++i]!.replace(/^\s*# {3}/, ''));
    push(shown.join('\n'));
  }
  push();
  return steps;
}

/** The last command of `code`, its `\` continuations joined. */
function lastCommand(code: string): string {
  const logical = code.replace(/\\\n/g, ' ').split('\n');
  const commands = logical.map((l) => l.replace(/(^|\s)#.*$/, '').trim()).filter(Boolean);
  return commands[commands.length - 1] ?? '';
}

export function startsServer(code: string): boolean {
  return /(^|\s)npm start$/.test(lastCommand(code));
}

/** The `// → …` lines of a node block: what it prints, one line each, in order. */
export function nodeShown(code: string): string[] {
  return code
    .split('\n')
    .map((l) => /\/\/ → ?(.*)$/.exec(l)?.[1])
    .filter((s): s is string => s !== undefined);
}

/** The README talks to http://localhost:8080; the test's server listens elsewhere. */
export function localize(code: string, port: number): string {
  return code.replace(/(https?:\/\/)?localhost:8080/g, (_m, scheme: string | undefined) => `${scheme ?? ''}127.0.0.1:${port}`);
}

const ELLIPSIS = '…';

function wildcard(pattern: string): RegExp {
  const parts = pattern.split(ELLIPSIS).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('[\\s\\S]*')}$`);
}

/** Why `real` does not have the shape of `shown` (see the conventions above), or null when it does. */
export function shapeMismatch(shown: unknown, real: unknown, at = '$'): string | null {
  if (shown === ELLIPSIS) return null;
  if (typeof shown === 'string' && shown.includes(ELLIPSIS)) {
    return typeof real === 'string' && wildcard(shown).test(real) ? null : `${at}: ${JSON.stringify(real)} is not like ${JSON.stringify(shown)}`;
  }
  if (Array.isArray(shown)) {
    if (!Array.isArray(real)) return `${at}: expected an array, got ${JSON.stringify(real)}`;
    const open = shown.length > 0 && shown[shown.length - 1] === ELLIPSIS;
    const items = open ? shown.slice(0, -1) : shown;
    if (open ? real.length < items.length : real.length !== items.length) return `${at}: ${real.length} items, the README shows ${shown.length}`;
    for (let i = 0; i < items.length; i++) {
      const m = shapeMismatch(items[i], real[i], `${at}[${i}]`);
      if (m) return m;
    }
    return null;
  }
  if (shown !== null && typeof shown === 'object') {
    if (real === null || typeof real !== 'object' || Array.isArray(real)) return `${at}: expected an object, got ${JSON.stringify(real)}`;
    const s = shown as Record<string, unknown>;
    const r = real as Record<string, unknown>;
    const open = ELLIPSIS in s;
    const want = Object.keys(s).filter((k) => k !== ELLIPSIS);
    const missing = want.filter((k) => !(k in r));
    const extra = open ? [] : Object.keys(r).filter((k) => !(k in s));
    if (missing.length || extra.length)
      return `${at}: keys differ (missing ${JSON.stringify(missing)}, not shown ${JSON.stringify(extra)}) in ${JSON.stringify(real)}`;
    for (const k of want) {
      const m = shapeMismatch(s[k], r[k], `${at}.${k}`);
      if (m) return m;
    }
    return null;
  }
  return Object.is(shown, real) ? null : `${at}: ${JSON.stringify(real)}, the README shows ${JSON.stringify(shown)}`;
}

/** Compares what a command printed with what the README shows after it. */
export function outputMismatch(shown: string, real: string): string | null {
  let expected: unknown;
  try {
    expected = JSON.parse(shown.replace(/([:[,]\s*)…(?=\s*[,}\]])/g, '$1"…"')); // a bare … is "…": any value
  } catch {
    const norm = (s: string) => s.trim().replace(/\s+/g, ' ');
    return wildcard(norm(shown)).test(norm(real)) ? null : `printed ${JSON.stringify(real.trim())}, the README shows ${JSON.stringify(shown)}`;
  }
  let actual: unknown;
  try {
    actual = JSON.parse(real);
  } catch {
    return `printed ${JSON.stringify(real.trim())}, not the JSON the README shows`;
  }
  return shapeMismatch(expected, actual);
}

export interface StepResult {
  rc: number;
  stdout: string;
  stderr: string;
  /** The commands that failed (the ERR trap), as `line: command`. */
  failed: string[];
}

/**
 * One bash per README section, fed step files with `.` so that variables carry
 * from block to block as in a reader's terminal (a node block sees only what the
 * README exports). A failing command (pipelines included) is recorded by an ERR
 * trap; the session goes on so the report can name it. A variable used before
 * it is set (`set -u`) ends the session with bash's "unbound variable".
 */
/** Numbers the files of every session's steps (sessions share one scratch folder). */
let seq = 0;

export class ShellSession {
  private readonly child: ChildProcess;
  private stderr = '';
  private readonly servers: number[] = [];

  constructor(
    cwd: string,
    private readonly scratch: string,
    env: Record<string, string>,
  ) {
    this.child = spawn('bash', ['--noprofile', '--norc'], { cwd, env, stdio: ['pipe', 'ignore', 'pipe'] });
    this.child.stderr!.on('data', (d) => (this.stderr += d));
    this.child.stdin!.write('set -u -o pipefail -E\n'); // -u: a variable used before it is set ends the session, naming it
  }

  /** Runs `code` (sourced, so assignments stay); resolves when it is done or rejects after `timeoutMs`. */
  async run(code: string, timeoutMs: number): Promise<StepResult> {
    const n = ++seq;
    const f = (ext: string) => path.join(this.scratch, `step-${n}.${ext}`);
    writeFileSync(f('sh'), `${code}\n`);
    writeFileSync(f('err-cmds'), '');
    this.child.stdin!.write(
      `trap 'echo "$LINENO: $BASH_COMMAND" >> ${q(f('err-cmds'))}' ERR; . ${q(f('sh'))} > ${q(f('out'))} 2> ${q(f('err'))}; echo $? > ${q(f('rc.tmp'))}; trap - ERR; mv ${q(f('rc.tmp'))} ${q(f('rc'))}\n`,
    );
    await until(
      () => `the step to finish:\n${code}\nstdout: ${read(f('out'))}\nstderr: ${read(f('err'))}`,
      () => {
        if (this.child.exitCode !== null) throw new Error(`the shell exited (${this.child.exitCode}): ${this.stderr}\n${read(f('err'))}`);
        return existsSync(f('rc'));
      },
      { timeoutMs, intervalMs: 50 },
    );
    return {
      rc: Number(read(f('rc')).trim()),
      stdout: read(f('out')),
      stderr: read(f('err')),
      failed: read(f('err-cmds')).split('\n').filter(Boolean),
    };
  }

  /** Starts `code` (ending in `npm start`) in the background, in a process group of its own; its output goes to `log`. */
  async background(code: string, log: string): Promise<number> {
    const n = ++seq;
    const script = path.join(this.scratch, `server-${n}.sh`);
    const pidFile = path.join(this.scratch, `server-${n}.pid`);
    writeFileSync(script, `${code}\n`);
    this.child.stdin!.write(`setsid bash ${q(script)} > ${q(log)} 2>&1 < /dev/null & echo $! > ${q(pidFile)}\n`);
    const pid = Number(await until('the server command to start', () => existsSync(pidFile) && read(pidFile).trim()));
    this.servers.push(pid);
    return pid;
  }

  /** Stops the servers it started (SIGTERM to their process groups, SIGKILL after 15 s) and the shell. */
  async close(): Promise<void> {
    await Promise.all(this.servers.map((pgid) => stopGroup(pgid)));
    this.child.stdin!.end('exit\n');
    await until('the shell to exit', () => this.child.exitCode !== null || this.child.signalCode !== null, { timeoutMs: 5000 }).catch(() =>
      this.child.kill('SIGKILL'),
    );
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to a process group the harness created, then SIGKILL if it is still there after 15 s. */
export async function stopGroup(pgid: number): Promise<void> {
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    return; // gone already
  }
  await until(`process group ${pgid} to stop`, () => !alive(-pgid), { timeoutMs: 15_000, intervalMs: 100 }).catch(() => {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone in between
    }
  });
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const read = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '');

/** The variable names in the first column of the README's Configuration table. */
export function readmeEnvTable(markdown: string): Set<string> {
  const section = markdown.split(/^## /m).find((s) => s.startsWith('Configuration'));
  if (!section) throw new Error('README.md has no "## Configuration" section');
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    const first = /^\|([^|]+)\|/.exec(line)?.[1];
    if (!first) continue;
    for (const m of first.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(m[1]!);
  }
  return names;
}
