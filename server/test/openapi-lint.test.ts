import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startTestApp, type TestApp } from './helpers/app';

/**
 * The live OpenAPI document (/docs/json) passes `@redocly/cli lint` (its recommended
 * rules, run offline) with no error. The only warnings left are the probes' lack of a
 * 4xx response (they have none: no input, no authentication, no rate limit).
 */
const REDOCLY = path.resolve(__dirname, '../../node_modules/@redocly/cli/bin/cli.js');
const PUBLIC_URL = 'https://calls.switchboard.test';
const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options'] as const;
/** Routes outside the rate limit with no client error to report. */
const NO_4XX = ['/health', '/ready', '/metrics'];

interface Problem {
  ruleId: string;
  severity: 'error' | 'warn';
  message: string;
  location: Array<{ pointer: string }>;
}
interface Operation {
  operationId?: string;
  security?: Array<Record<string, string[]>>;
  tags?: string[];
  parameters?: Array<{ in: string; name: string; required?: boolean; schema?: { default?: unknown } }>;
}
interface Doc {
  servers?: Array<{ url: string }>;
  info: { license?: { name: string; identifier?: string } };
  tags?: Array<{ name: string; description?: string }>;
  components: { securitySchemes: Record<string, unknown> };
  paths: Record<string, Record<string, Operation>>;
}

describe('OpenAPI document (redocly lint)', () => {
  let t: TestApp;
  let dir: string;
  let doc: Doc;
  let lint: { totals: { errors: number; warnings: number }; problems: Problem[] };
  const operations = () =>
    Object.entries(doc.paths).flatMap(([p, ops]) => METHODS.flatMap((m) => (ops[m] ? [{ key: `${m.toUpperCase()} ${p}`, op: ops[m] }] : [])));

  beforeAll(async () => {
    t = await startTestApp('pglite', { PUBLIC_URL });
    const res = await t.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    doc = res.json();
    dir = mkdtempSync(path.join(tmpdir(), 'sb-openapi-lint-'));
    const file = path.join(dir, 'openapi.json');
    writeFileSync(file, res.body);
    // Offline: no telemetry, no update check. lint exits 1 on errors; the JSON report says why.
    const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', CI: 'true' };
    const run = promisify(execFile)(process.execPath, [REDOCLY, 'lint', file, '--format=json'], { cwd: dir, env, maxBuffer: 16 * 1024 * 1024 });
    const { stdout } = await run.catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
    lint = JSON.parse(stdout);
  }, 120_000);

  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('has no error', () => {
    expect(lint.problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`)).toEqual([]);
    expect(lint.totals.errors).toBe(0);
  });

  it('has no warning but the probes without a 4xx response', () => {
    const warnings = lint.problems.filter((p) => p.severity === 'warn').map((p) => `${p.ruleId} ${p.location[0]?.pointer}`);
    expect(warnings.sort()).toEqual(NO_4XX.map((p) => `operation-4xx-response #/paths/${p.replace(/\//g, '~1')}/get/responses`).sort());
  });

  it('names the server (PUBLIC_URL), the license and both security schemes', () => {
    expect(doc.servers).toEqual([expect.objectContaining({ url: PUBLIC_URL })]);
    expect(doc.info.license).toEqual({ name: 'MIT', identifier: 'MIT' });
    expect(doc.components.securitySchemes).toMatchObject({
      apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
      bearerToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
    });
  });

  it('gives every operation a unique camelCase operationId, its security ([] when public) and described tags', () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThanOrEqual(28);
    const ids = ops.map((o) => o.op.operationId);
    expect(ids.filter((id) => !/^[a-z][a-zA-Z0-9]*$/.test(id ?? ''))).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ops.filter((o) => !Array.isArray(o.op.security)).map((o) => o.key)).toEqual([]);
    const described = new Map((doc.tags ?? []).map((tag) => [tag.name, tag.description ?? '']));
    const used = new Set(ops.flatMap((o) => o.op.tags ?? []));
    expect([...used].filter((tag) => !described.get(tag))).toEqual([]);
    expect(ops.filter((o) => !o.op.tags?.length).map((o) => o.key)).toEqual([]);
  });

  it('marks public routes public and protected routes with the scheme they use', () => {
    const security = Object.fromEntries(operations().map((o) => [o.key, o.op.security]));
    for (const key of ['GET /health', 'GET /ready', 'GET /metrics', 'GET /.well-known/jwks.json', 'GET /', 'GET /admin', 'POST /dev/token'])
      expect([key, security[key]]).toEqual([key, []]);
    expect(security['POST /auth/token']).toEqual([{ apiKey: [] }]);
    expect(security['GET /admin/webhooks/deliveries']).toEqual([{ apiKey: [] }]);
    expect(security['GET /calls']).toEqual([{ apiKey: [] }, { bearerToken: [] }]);
  });

  it('makes limit optional, with its default, on every list endpoint', () => {
    const limits = operations().flatMap((o) => (o.op.parameters ?? []).filter((p) => p.in === 'query' && p.name === 'limit').map((p) => ({ key: o.key, p })));
    expect(limits.map((l) => l.key).sort()).toEqual(['GET /admin/webhooks/deliveries', 'GET /calls', 'GET /recordings']);
    for (const { p } of limits) {
      expect(p.required).not.toBe(true);
      expect(p.schema?.default).toBe(20);
    }
  });
});
