import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The layout's rules, checked: a folder per concept, imported only downwards
 * (LAYERS, lowest first), no cycle between folders, the Socket.IO adapter
 * imported by nobody but the composition root, and files small enough to read
 * in one sitting.
 */
const SERVER = path.resolve(__dirname, '..');
/** Each folder (or root file) may import only from its own folder and the ones before it. */
const LAYERS = [
  'protocol',
  'errors',
  'events',
  'lib',
  'http',
  'tls',
  'config',
  'db',
  'metrics',
  'logging',
  'auth',
  'calls',
  'media',
  'recording',
  'mediaNode',
  'rooms',
  'invitations',
  'cluster',
  'uploads',
  'webhooks',
  'health',
  'web',
  'signaling',
  'app',
  'startup',
  'main',
] as const;
const MAX_LINES = 450;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return name === 'generated' || name === 'node_modules' ? [] : files(full);
    return /\.(ts|mjs)$/.test(name) ? [full] : [];
  });
}

/** The concept a file belongs to: its folder under server/, or its own name for a root file (app.ts → app). */
const conceptOf = (file: string): string => {
  const rel = path.relative(SERVER, file).split(path.sep);
  return rel.length === 1 ? rel[0]!.replace(/\.(ts|mjs)$/, '') : rel[0]!;
};

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((s) => path.resolve(path.dirname(file), s));
}

const sources = files(SERVER).filter((f) => !f.includes(`${path.sep}test${path.sep}`));
const edges = new Map<string, Set<string>>();
for (const file of sources) {
  const from = conceptOf(file);
  for (const target of importsOf(file)) {
    if (!target.startsWith(SERVER + path.sep)) continue;
    const to = conceptOf(target);
    if (to === from || to === 'generated') continue;
    if (!edges.has(from)) edges.set(from, new Set());
    edges.get(from)!.add(to);
  }
}

describe('architecture', () => {
  it('knows every folder', () => {
    const concepts = new Set(sources.map(conceptOf));
    for (const c of concepts) expect(LAYERS).toContain(c);
  });

  it('imports only downwards', () => {
    const wrong: string[] = [];
    for (const [from, tos] of edges) {
      for (const to of tos) {
        if (LAYERS.indexOf(to as (typeof LAYERS)[number]) > LAYERS.indexOf(from as (typeof LAYERS)[number])) wrong.push(`${from} → ${to}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('has no import cycle between folders', () => {
    const cycles: string[] = [];
    const visit = (node: string, trail: string[]): void => {
      if (trail.includes(node)) {
        cycles.push([...trail.slice(trail.indexOf(node)), node].join(' → '));
        return;
      }
      for (const next of edges.get(node) ?? []) visit(next, [...trail, node]);
    };
    for (const node of edges.keys()) visit(node, []);
    expect(cycles).toEqual([]);
  });

  it('keeps the Socket.IO adapter out of the domain and the REST routes', () => {
    const users = [...edges].filter(([from, tos]) => tos.has('signaling') && from !== 'app').map(([from]) => from);
    expect(users).toEqual([]);
  });

  it(`keeps every file under ${MAX_LINES} lines`, () => {
    const long = files(SERVER)
      .map((f) => ({ f: path.relative(SERVER, f), lines: readFileSync(f, 'utf8').split('\n').length }))
      .filter((x) => x.lines > MAX_LINES)
      .map((x) => `${x.f}: ${x.lines}`);
    expect(long).toEqual([]);
  });
});
