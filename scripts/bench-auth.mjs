#!/usr/bin/env node
/**
 * Token verification benchmark (a benchmark, not a test): REST throughput with autocannon
 * against one Switchboard server (embedded database), every target in the same run:
 *
 *   GET /health                         no authentication at all (the bare baseline)
 *   GET /admin/webhooks/deliveries      no credentials: 401 AUTH_REQUIRED, the same route
 *                                       with nothing to verify
 *     ... Bearer (current key)          403: the token is fully verified (RS256, claims),
 *                                       then refused because the route wants the API key;
 *                                       no database work, so this isolates verification
 *     ... Bearer (previous key)         the same with a JWT_PREVIOUS_PUBLIC_KEYS key (only when
 *                                       the server publishes it in its JWKS: servers before key
 *                                       rotation ignore the variable)
 *     ... Bearer (unknown kid)          401: a key the server does not know
 *   GET /calls/:id  x-api-key / Bearer  a database read with and without a token
 *
 * Targets are measured in turn, --rounds times, and the median of the rounds is reported (the
 * machine may be shared). Everything goes to 127.0.0.1; needs a build (npm run build).
 *
 *   node scripts/bench-auth.mjs [--duration 5] [--warmup 1] [--connections 10] [--rounds 3] [--out FILE]
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { freePort, request } from './lib/net.mjs';
import { OUT_OPTION, parseOptions } from './lib/options.mjs';
import { BenchRun } from './lib/runner.mjs';
import { BENCH_API_KEY, LIMITS_OUT_OF_THE_WAY, assertBuilt, startSwitchboard, switchboardEnv } from './lib/servers.mjs';
import { median, r1, table, verdict } from './lib/stats.mjs';
import { ROOT, machineMeta } from './lib/system.mjs';
import { createSigningKey, tokenMinter } from './lib/tokens.mjs';

/**
 * What autocannon reports, the fields used here (it ships no types).
 * @typedef {{ requests: { average: number, total: number }, latency: { p50: number, p99: number }, errors: number, timeouts: number, statusCodeStats?: Record<string, { count: number }> }} CannonResult
 * @typedef {Promise<CannonResult> & { stop(): void }} CannonRun
 */
const require = createRequire(path.join(ROOT, 'package.json'));
/** @type {(options: object) => CannonRun} */
const autocannon = require('autocannon');

const { values: o } = parseOptions('node scripts/bench-auth.mjs', {
  duration: { type: 'integer', default: 5, min: 1, max: 120, arg: 'S', help: 'seconds measured per target and round' },
  warmup: { type: 'integer', default: 1, min: 1, max: 30, arg: 'S', help: 'seconds of load before each measurement, discarded' },
  connections: { type: 'integer', default: 10, min: 1, max: 500, help: 'autocannon connections, pipelining 1' },
  rounds: { type: 'integer', default: 3, min: 1, max: 10, help: 'times every target is measured (the median is reported)' },
  out: OUT_OPTION,
});

const run = new BenchRun({ doing: 'stopping the server and cleaning up...' });
/** @type {CannonRun | null} */
let currentLoad = null;
run.beforeStopping(() => currentLoad?.stop());
/** @param {string} msg */
const log = (msg) => console.error(msg);

/** @typedef {{ label: string, urlPath: string, headers: Record<string, string>, expect: number }} Target */
/** @typedef {{ rps: number, p50: number, p99: number, total: number, bad: number }} Sample */

const results = {
  /** @type {Record<string, unknown>} */
  meta: {},
  options: o,
  /** @type {Record<string, string>} what the sanity request of each target answered */
  sanity: {},
  /** @type {Record<string, Sample[]>} */
  samples: {},
  /** @type {Array<{ target: string, rps_median: number | null, p50_ms: number | null, p99_ms: number | null, vs_baseline: number | null }>} */
  summary: [],
  /** @type {string[]} */
  failures: [],
  ok: false,
};

/**
 * @param {number} port
 * @param {Target} t
 * @returns {Promise<Sample>}
 */
async function measure(port, t) {
  const base = { url: `http://127.0.0.1:${port}${t.urlPath}`, method: 'GET', headers: t.headers, connections: o.connections, pipelining: 1, timeout: 10 };
  for (const [duration, keep] of [
    [o.warmup, false],
    [o.duration, true],
  ]) {
    const inst = autocannon({ ...base, duration });
    currentLoad = inst;
    const r = await inst;
    currentLoad = null;
    if (!keep) continue;
    const bad = Object.entries(r.statusCodeStats ?? {})
      .filter(([code]) => Number(code) !== t.expect)
      .reduce((s, [, v]) => s + v.count, 0);
    if (bad || r.errors || r.timeouts) results.failures.push(`${t.label}: ${bad} unexpected statuses, ${r.errors} errors, ${r.timeouts} timeouts`);
    return { rps: r1(r.requests.average) ?? 0, p50: r.latency.p50, p99: r.latency.p99, total: r.requests.total, bad: bad + r.errors + r.timeouts };
  }
  throw new Error('unreachable');
}

async function main() {
  assertBuilt();
  results.meta = { ...machineMeta(), autocannon: require('autocannon/package.json').version };
  const targetsMax = 7;
  run.watchdog(120_000 + o.rounds * targetsMax * (o.duration + o.warmup + 1) * 1000);

  const dir = run.tempDir('sb-bench-auth-');
  const current = createSigningKey(dir);
  const previous = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const previousPem = previous.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const previousFile = path.join(dir, 'previous.pub.pem');
  writeFileSync(previousFile, previous.publicKey.export({ format: 'pem', type: 'spki' }));
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

  const port = await freePort();
  const env = switchboardEnv({
    port,
    dataDir: path.join(dir, 'data'),
    extra: { JWT_PRIVATE_KEY_FILE: current.keyFile, JWT_PREVIOUS_PUBLIC_KEYS_FILE: previousFile, ...LIMITS_OUT_OF_THE_WAY },
  });
  const srv = await startSwitchboard(run, { name: 'switchboard', port, env, pollMs: 50, timeoutMs: 90_000 });
  log(`switchboard ready in ${Math.round(srv.readyMs)} ms on port ${port}`);

  const json = { 'x-api-key': BENCH_API_KEY, 'content-type': 'application/json' };
  const created = await request(port, 'POST', '/calls', { headers: json, body: JSON.stringify({ room_id: 'bench-auth' }), timeoutMs: 10_000 });
  if (created.status !== 201) throw new Error(`POST /calls answered ${created.status || created.error}: ${created.text}`);
  const callPath = `/calls/${JSON.parse(created.text).id}`;
  const jwks = JSON.parse((await request(port, 'GET', '/.well-known/jwks.json', { timeoutMs: 5_000 })).text ?? '{"keys":[]}');
  const kids = /** @type {Array<{ kid: string }>} */ (jwks.keys).map((k) => k.kid);
  const previousKid = kids.find((k) => k !== current.kid);
  results.meta.jwks_kids = kids.length;

  const claims = { sub: 'bench-user', room: 'bench-auth', role: 'participant' };
  const bearer = (/** @type {string} */ token) => ({ authorization: `Bearer ${token}` });
  const admin = '/admin/webhooks/deliveries';
  /** @type {Target[]} */
  const targets = [
    { label: 'GET /health (no auth)', urlPath: '/health', headers: {}, expect: 200 },
    { label: 'admin route, no credentials', urlPath: admin, headers: {}, expect: 401 },
    { label: 'admin route, Bearer (current key)', urlPath: admin, headers: bearer(current.token(claims)), expect: 403 },
    ...(previousKid
      ? [{ label: 'admin route, Bearer (previous key)', urlPath: admin, headers: bearer(tokenMinter(previousPem, previousKid)(claims)), expect: 403 }]
      : []),
    { label: 'admin route, Bearer (unknown kid)', urlPath: admin, headers: bearer(tokenMinter(stranger, 'unknown-kid')(claims)), expect: 401 },
    { label: 'GET /calls/:id x-api-key (db read)', urlPath: callPath, headers: { 'x-api-key': BENCH_API_KEY }, expect: 200 },
    { label: 'GET /calls/:id Bearer (db read)', urlPath: callPath, headers: bearer(current.token(claims)), expect: 200 },
  ];
  if (!previousKid) log('  the server does not publish JWT_PREVIOUS_PUBLIC_KEYS: no previous-key target');

  for (const t of targets) {
    const res = await request(port, 'GET', t.urlPath, { headers: t.headers, timeoutMs: 5_000 });
    results.sanity[t.label] = `${res.status} ${res.status >= 400 ? JSON.parse(res.text ?? '{}').error?.code : ''}`.trim();
    if (res.status !== t.expect) throw new Error(`${t.label}: sanity request got ${res.status || res.error} (want ${t.expect}): ${res.text?.slice(0, 200)}`);
    results.samples[t.label] = [];
  }
  for (let round = 1; round <= o.rounds; round++) {
    log(`round ${round}/${o.rounds}`);
    for (const t of targets) {
      const s = await measure(port, t);
      results.samples[t.label]?.push(s);
      log(`  ${t.label}: ${s.rps} req/s, p50 ${s.p50} ms, p99 ${s.p99} ms`);
    }
  }
  const baseline = median((results.samples[targets[0]?.label ?? ''] ?? []).map((s) => s.rps));
  for (const t of targets) {
    const samples = results.samples[t.label] ?? [];
    const rps = median(samples.map((s) => s.rps));
    results.summary.push({
      target: t.label,
      rps_median: rps,
      p50_ms: median(samples.map((s) => s.p50)),
      p99_ms: median(samples.map((s) => s.p99)),
      vs_baseline: rps != null && baseline ? Math.round((rps / baseline) * 1000) / 1000 : null,
    });
  }
  results.ok = results.failures.length === 0;
}

function report() {
  const m = results.meta;
  console.log(`\nSwitchboard token verification benchmark  ${m.date}`);
  console.log(`Node ${m.node} | ${m.cpu_model} | ${m.cpu_cores} cores | autocannon ${m.autocannon} | JWKS keys: ${m.jwks_kids}`);
  console.log(`load: ${o.connections} connections, ${o.duration} s per target after ${o.warmup} s warm-up, ${o.rounds} rounds (median), 127.0.0.1\n`);
  console.log(
    table(
      ['target', 'answered', 'req/s (median)', 'p50 ms', 'p99 ms', 'vs no auth'],
      results.summary.map((s) => [s.target, results.sanity[s.target], s.rps_median, s.p50_ms, s.p99_ms, s.vs_baseline]),
    ),
  );
  console.log(`\n${verdict(results.failures, 'OK: every response had the expected status')}`);
}

await run.finish({ main, results, report, out: o.out ? path.resolve(o.out) : undefined });
