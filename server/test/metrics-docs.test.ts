import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { metricsTable, withMetricsTable } from '../metrics/catalog';
import { startTestApp, type TestApp } from './helpers/app';
import { parseExposition, promtool, queryableNames, type Exposition } from './helpers/metrics';

/**
 * What is written about the metrics matches the live registry: every PromQL
 * query of the Grafana dashboard (deploy/grafana/switchboard.json) names only
 * metrics a live /metrics serves and parses with promtool, every Switchboard
 * family is on the dashboard, and the README's list is the registry's.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const DASHBOARD = path.join(ROOT, 'deploy', 'grafana', 'switchboard.json');

interface Panel {
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: Array<{ name: string; query?: string | { query?: string } }> };
}

/** Grafana's variables, replaced by what they stand for so promtool can parse the query. */
const asPromQL = (expr: string) => expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*');
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset']);

/** The metric names a PromQL query selects (not functions, keywords, labels or strings). */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  return [...bare.matchAll(/(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*(?![\w:]|\s*\()/g)].map((m) => m[0]).filter((w) => !KEYWORDS.has(w));
}

function queries(d: Dashboard): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ where: `panel "${p.title}"`, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  return out;
}

describe('metrics documentation', () => {
  let t: TestApp;
  let live: Exposition;
  beforeAll(async () => {
    t = await startTestApp('pglite');
    live = parseExposition((await t.app.inject({ method: 'GET', url: '/metrics' })).body);
  });
  afterAll(() => t?.close());

  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;

  it('the Grafana dashboard queries only metrics the live /metrics serves, and uses every Switchboard family', () => {
    const known = queryableNames(live);
    const all = queries(dashboard);
    expect(all.length).toBeGreaterThan(20);
    const unknown: string[] = [];
    const used = new Set<string>();
    for (const { where, expr } of all) {
      const names = metricNames(asPromQL(expr));
      if (names.length === 0) unknown.push(`${where}: no metric in ${expr}`);
      for (const n of names) {
        if (!known.has(n)) unknown.push(`${where}: ${n}`);
        used.add(n.replace(/_(bucket|sum|count)$/, ''));
      }
    }
    // Template variables: label_values(metric, label).
    for (const v of dashboard.templating.list) {
      const q = typeof v.query === 'string' ? v.query : v.query?.query;
      const m = /^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*),/.exec(q ?? '');
      if (m && !known.has(m[1]!)) unknown.push(`variable ${v.name}: ${m[1]}`);
    }
    expect(unknown).toEqual([]);
    const families = [...live.types.keys()].filter((n) => n.startsWith('switchboard_') && !/^switchboard_(process|nodejs)_/.test(n));
    expect(families.filter((f) => !used.has(f))).toEqual([]);
  });

  it('every dashboard query is PromQL that promtool parses', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-dash-'));
    try {
      const rules = queries(dashboard).map(({ expr }, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(asPromQL(expr))}`);
      const file = path.join(dir, 'rules.yml');
      writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
      const r = promtool(['check', 'rules', file]);
      if (r.error) throw new Error(`promtool could not run (${r.error.message}): install Debian's prometheus package (scripts/setup.sh does)`);
      expect({ status: r.status, output: r.status === 0 ? '' : r.output }).toEqual({ status: 0, output: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the README's metrics list is the live registry's (npm run docs rewrites it)", () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(withMetricsTable(readme, metricsTable(t.metrics.registry))).toBe(readme);
  });
});
