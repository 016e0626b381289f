#!/usr/bin/env node
/**
 * Integration edges benchmark (a benchmark, not a test). One run measures, on the real
 * server process (`node dist/server/main.js`, embedded PGlite by default):
 *
 *   1. client-side recording upload: one file of --upload-mb MB sent in --chunk-mb MB
 *      PATCHes (POST /calls/:id/uploads, then PATCH /uploads/:id), MB/s end to end
 *      (the SHA-256 check and the recording row included) and the server's peak RSS
 *      growth; baseline in the same run: a bare node:http server (its own process) that
 *      streams the same PATCHes to a file through SHA-256, no auth, no database;
 *   2. webhooks: --events calls created and ended one after the other (POST /calls, then
 *      POST /calls/:id/end -> one call.ended webhook each); latency from the end request's
 *      answer to the signed POST reaching a receiver on 127.0.0.1 (signature checked), then
 *      a burst of the same count ended at once and the time until the last arrives;
 *      baseline in the same run: the bench POSTing the same signed body straight to the
 *      receiver (the HTTP hop alone).
 *
 * Everything goes to 127.0.0.1. Needs a build (npm run build -> dist/).
 *
 *   node scripts/bench-integrations.mjs [--upload-mb 256] [--chunk-mb 16] [--events 200]
 *                                       [--postgres] [--out result.json]
 *
 * --postgres runs the server on a fresh PostgreSQL database (CREATE DATABASE bench_<random>
 * through TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres;
 * dropped WITH (FORCE) at the end).
 */
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  BENCH_API_KEY as API_KEY,
  ROOT,
  SERVER_MAIN,
  freePort,
  integerOption,
  killQuietly,
  machineMeta,
  nearestRank,
  onExitKillAndRemove,
  onTerminationSignals,
  spawnNodeProcess,
  statusKb,
  table,
  tempDir as makeTempDir,
  waitForReady,
} from './bench-lib.mjs';

const require = createRequire(path.join(ROOT, 'package.json'));
const MB = 1024 * 1024;
const SECRET = 'bench-webhook-secret-0123456789abcdef0123456789';
const OCTET = 'application/offset+octet-stream';

function usage(code) {
  (code ? console.error : console.log)(
    'usage: node scripts/bench-integrations.mjs [--upload-mb N=256] [--chunk-mb N=16] [--events N=200] [--postgres] [--out FILE]',
  );
  process.exit(code);
}
let args;
try {
  args = parseArgs({
    options: {
      'upload-mb': { type: 'string', default: '256' },
      'chunk-mb': { type: 'string', default: '16' },
      events: { type: 'string', default: '200' },
      postgres: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (err) {
  console.error(err.message);
  usage(2);
}
if (args.help) usage(0);
const bad = () => usage(2);
const opts = {
  uploadMb: integerOption('upload-mb', args['upload-mb'], 1, 2048, bad),
  chunkMb: integerOption('chunk-mb', args['chunk-mb'], 1, 64, bad),
  events: integerOption('events', args.events, 1, 2000, bad),
};

// ---------------------------------------------------------------- process bookkeeping

const children = new Set();
const tempDirs = new Set();
onExitKillAndRemove(() => [...children].map((p) => -p.pid), tempDirs);
onTerminationSignals({ doing: 'stopping the servers', cleanup: async () => stopAll() });
async function stopAll() {
  for (const p of children) {
    killQuietly(-p.pid, 'SIGTERM');
    const t = setTimeout(() => killQuietly(-p.pid, 'SIGKILL'), 5000);
    await p.exited;
    clearTimeout(t);
  }
  children.clear();
}
function spawn(name, script, env, extra = []) {
  const p = spawnNodeProcess(name, script, { env, args: extra });
  children.add(p);
  return p;
}

// ---------------------------------------------------------------- HTTP helpers

/** One request with a Buffer (or nothing) as the body; JSON answers parsed. */
function call(port, method, urlPath, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers, timeout: 120_000 }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timeout`)));
    req.on('error', reject);
    req.end(body);
  });
}
const jsonBody = (o) => ({ headers: { 'content-type': 'application/json', 'x-api-key': API_KEY }, body: JSON.stringify(o) });
function expectStatus(res, want, what) {
  if (res.status !== want) throw new Error(`${what}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  return res;
}

// ---------------------------------------------------------------- servers

const BARE_UPLOAD_SERVER = `
const http = require('node:http');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const { pipeline } = require('node:stream/promises');
const { Transform } = require('node:stream');
const dir = process.argv[1];
const uploads = new Map();
http.createServer(async (req, res) => {
  try {
    const id = req.url.split('/').pop();
    if (req.method === 'POST') {
      let body = '';
      for await (const d of req) body += d;
      const { size, sha256 } = JSON.parse(body);
      uploads.set(id, { size, sha256, offset: 0, file: dir + '/' + id });
      res.writeHead(201).end();
      return;
    }
    const u = uploads.get(id);
    const offset = Number(req.headers['upload-offset']);
    if (!u || offset !== u.offset) { res.writeHead(409).end(); return; }
    let n = 0;
    const count = new Transform({ transform(c, _e, cb) { n += c.length; cb(null, c); } });
    await pipeline(req, count, fs.createWriteStream(u.file, { flags: offset === 0 ? 'w' : 'r+', start: offset }));
    u.offset += n;
    if (u.offset === u.size) {
      const h = createHash('sha256');
      await pipeline(fs.createReadStream(u.file), h);
      if (h.digest('hex') !== u.sha256) { res.writeHead(422).end(); return; }
      fs.renameSync(u.file, u.file + '.done');
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ offset: u.offset }));
  } catch (err) { res.writeHead(500).end(String(err)); }
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

async function startSwitchboard(webhookUrl, databaseUrl) {
  const port = await freePort();
  const dataDir = makeTempDir('sb-int-data-', tempDirs);
  const recordingsDir = makeTempDir('sb-int-rec-', tempDirs);
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? os.tmpdir(),
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    RECORDINGS_DIR: recordingsDir,
    MEDIASOUP_WORKERS: '1',
    LOG_LEVEL: 'warn',
    API_KEYS: API_KEY,
    RATE_LIMIT_MAX: '10000000',
    WEBHOOK_URLS: webhookUrl,
    WEBHOOK_SECRET: SECRET,
    UPLOAD_MAX_BYTES: String(2048 * MB),
  };
  if (process.env.TMPDIR) env.TMPDIR = process.env.TMPDIR;
  if (databaseUrl) env.DATABASE_URL = databaseUrl;
  const proc = spawn('switchboard', SERVER_MAIN, env);
  await waitForReady(proc, port, performance.now(), { pollMs: 20, timeoutMs: 60_000 });
  return { proc, port };
}

async function startBareUploadServer() {
  const port = await freePort();
  const dir = makeTempDir('sb-int-bare-', tempDirs);
  const proc = spawnNodeProcess('bare-upload', '-e', { env: { PATH: process.env.PATH, PORT: String(port) }, args: [BARE_UPLOAD_SERVER, dir] });
  children.add(proc);
  for (let i = 0; i < 200; i++) {
    const ok = await call(port, 'GET', '/x').then(() => true, () => false);
    if (ok) return { proc, port };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`bare upload server did not start:\n${proc.tail()}`);
}

// ---------------------------------------------------------------- the webhook receiver

function startReceiver() {
  const arrivals = new Map(); // call_id -> ms
  let badSignatures = 0;
  let received = 0;
  const waiters = new Map();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const at = performance.now();
      const raw = Buffer.concat(chunks).toString('utf8');
      const ts = req.headers['webhook-timestamp'];
      const sig = String(req.headers['webhook-signature'] ?? '');
      const want = `v1=${createHmac('sha256', SECRET).update(`${ts}.${raw}`).digest('hex')}`;
      if (!sig.split(' ').includes(want)) badSignatures++;
      received++;
      res.writeHead(204).end();
      let event;
      try {
        event = JSON.parse(raw);
      } catch {
        return;
      }
      if (event.type !== 'call.ended') return;
      const id = event.data.call_id;
      arrivals.set(id, at);
      waiters.get(id)?.(at);
      waiters.delete(id);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}/hook`,
        port: server.address().port,
        arrivals,
        stats: () => ({ received, badSignatures }),
        arrival: (id) => (arrivals.has(id) ? Promise.resolve(arrivals.get(id)) : new Promise((r) => waiters.set(id, r))),
        close: () => new Promise((r) => server.close(r)),
      });
    });
  });
}

// ---------------------------------------------------------------- measurements

const pct = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: round(nearestRank(s, 50)), p99: round(nearestRank(s, 99)), max: round(s[s.length - 1]) };
};
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

async function uploadSwitchboard(sb, file, sha256) {
  const created = expectStatus(await call(sb.port, 'POST', '/calls', jsonBody({ room_id: `bench-up-${randomUUID()}` })), 201, 'POST /calls');
  const callId = created.json.id;
  // The server's RSS, sampled every 50 ms while the upload runs: a server that buffered
  // a chunk would grow by about the chunk size.
  const rssBefore = statusKb(sb.proc.pid, 'VmRSS');
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, statusKb(sb.proc.pid, 'VmRSS') ?? 0);
  }, 50);
  const t0 = performance.now();
  const up = expectStatus(
    await call(sb.port, 'POST', `/calls/${callId}/uploads`, jsonBody({ file_name: 'bench.webm', mime_type: 'video/webm', size_bytes: file.length, sha256 })),
    201,
    'POST /calls/:id/uploads',
  );
  const id = up.json.upload_id;
  let last;
  for (let off = 0; off < file.length; off += opts.chunkMb * MB) {
    const chunk = file.subarray(off, Math.min(file.length, off + opts.chunkMb * MB));
    // 204 with the new Upload-Offset for a chunk, 200 with the recording for the last one.
    last = expectStatus(
      await call(sb.port, 'PATCH', `/uploads/${id}`, { headers: { 'x-api-key': API_KEY, 'content-type': OCTET, 'upload-offset': String(off), 'content-length': String(chunk.length) }, body: chunk }),
      off + chunk.length < file.length ? 204 : 200,
      'PATCH /uploads/:id',
    );
  }
  const ms = performance.now() - t0;
  clearInterval(sampler);
  if (last.json.status !== 'completed') throw new Error(`upload not completed: ${last.text}`);
  return { ms, rssGrowthMb: round((rssPeak - rssBefore) / 1024, 1) };
}

async function uploadBare(bare, file, sha256) {
  const id = randomUUID();
  const t0 = performance.now();
  expectStatus(await call(bare.port, 'POST', `/u/${id}`, { body: JSON.stringify({ size: file.length, sha256 }) }), 201, 'bare POST');
  for (let off = 0; off < file.length; off += opts.chunkMb * MB) {
    const chunk = file.subarray(off, Math.min(file.length, off + opts.chunkMb * MB));
    expectStatus(await call(bare.port, 'PATCH', `/u/${id}`, { headers: { 'upload-offset': String(off), 'content-length': String(chunk.length) }, body: chunk }), 200, 'bare PATCH');
  }
  return { ms: performance.now() - t0 };
}

async function createAndEnd(sb) {
  const created = expectStatus(await call(sb.port, 'POST', '/calls', jsonBody({ room_id: `bench-wh-${randomUUID()}` })), 201, 'POST /calls');
  return created.json.id;
}
async function endCall(sb, id) {
  expectStatus(await call(sb.port, 'POST', `/calls/${id}/end`, { headers: { 'x-api-key': API_KEY } }), 200, 'POST /calls/:id/end');
  return performance.now();
}

async function webhookLatency(sb, receiver) {
  const seq = [];
  for (let i = 0; i < opts.events; i++) {
    const id = await createAndEnd(sb);
    const answered = await endCall(sb, id);
    const arrived = await Promise.race([receiver.arrival(id), new Promise((_, rej) => setTimeout(() => rej(new Error('webhook not received within 30 s')), 30_000))]);
    seq.push(arrived - answered);
  }
  // Burst: every call created first, then all ended at once.
  const ids = [];
  for (let i = 0; i < opts.events; i++) ids.push(await createAndEnd(sb));
  const t0 = performance.now();
  await Promise.all(ids.map((id) => endCall(sb, id)));
  const arrivals = await Promise.all(ids.map((id) => receiver.arrival(id)));
  const burstMs = Math.max(...arrivals) - t0;
  return { sequential: pct(seq), burstMs: round(burstMs, 0), burstPerSecond: round((opts.events / burstMs) * 1000, 0) };
}

async function directPostLatency(receiver) {
  const xs = [];
  for (let i = 0; i < opts.events; i++) {
    const body = JSON.stringify({ id: randomUUID(), type: 'bench.direct', created_at: new Date().toISOString(), data: {} });
    const ts = Math.floor(Date.now() / 1000);
    const t0 = performance.now();
    expectStatus(
      await call(receiver.port, 'POST', '/hook', {
        headers: { 'content-type': 'application/json', 'webhook-timestamp': String(ts), 'webhook-signature': `v1=${createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}` },
        body,
      }),
      204,
      'direct POST',
    );
    xs.push(performance.now() - t0);
  }
  return pct(xs);
}

// ---------------------------------------------------------------- PostgreSQL

async function freshPostgres() {
  const pg = require('pg');
  const admin = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const name = `bench_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const d = new pg.Client({ connectionString: admin });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
    },
  };
}

// ---------------------------------------------------------------- main

async function main() {
  console.log(`bench-integrations: upload ${opts.uploadMb} MB in ${opts.chunkMb} MB chunks; ${opts.events} webhook events; ${args.postgres ? 'PostgreSQL' : 'PGlite'}`);
  const file = randomBytes(opts.uploadMb * MB);
  const sha256 = createHash('sha256').update(file).digest('hex');
  const receiver = await startReceiver();
  const db = args.postgres ? await freshPostgres() : null;
  try {
    const sb = await startSwitchboard(receiver.url, db?.url);
    const bare = await startBareUploadServer();

    // A warm-up upload of 16 MB on each, then the measured one (bare first, then Switchboard).
    const warm = randomBytes(16 * MB);
    const warmSha = createHash('sha256').update(warm).digest('hex');
    await uploadBare(bare, warm, warmSha);
    await uploadSwitchboard(sb, warm, warmSha);
    const bareUp = await uploadBare(bare, file, sha256);
    const sbUp = await uploadSwitchboard(sb, file, sha256);

    const direct = await directPostLatency(receiver);
    const hooks = await webhookLatency(sb, receiver);
    const { badSignatures } = receiver.stats();

    const mbps = (ms) => round(opts.uploadMb / (ms / 1000), 0);
    console.log('\nUpload of one file (wall time from the first request to the completed answer)');
    console.log(
      table(
        ['server', 'seconds', 'MB/s', 'server RSS growth (peak)'],
        [
          ['Switchboard (auth, DB rows, SHA-256, rename, recording row)', round(sbUp.ms / 1000), mbps(sbUp.ms), `${sbUp.rssGrowthMb} MB`],
          ['bare node:http -> file + SHA-256 (baseline)', round(bareUp.ms / 1000), mbps(bareUp.ms), ''],
        ],
      ),
    );
    console.log(`\nWebhooks (${opts.events} call.ended events; ${badSignatures} bad signatures)`);
    console.log(
      table(
        ['path', 'p50 ms', 'p99 ms', 'max ms'],
        [
          ['end answered -> signed webhook received (outbox, dispatcher)', hooks.sequential.p50, hooks.sequential.p99, hooks.sequential.max],
          ['bench -> receiver POST, signed (baseline: the hop alone)', direct.p50, direct.p99, direct.max],
        ],
      ),
    );
    console.log(`burst: ${opts.events} calls ended at once -> last webhook after ${hooks.burstMs} ms (${hooks.burstPerSecond} events/s)`);
    const result = { meta: machineMeta(), opts, database: args.postgres ? 'postgres' : 'pglite', upload: { switchboard: sbUp, bare: bareUp, mbps: { switchboard: mbps(sbUp.ms), bare: mbps(bareUp.ms) } }, webhooks: { ...hooks, direct, badSignatures } };
    if (args.out) writeFileSync(args.out, JSON.stringify(result, null, 2));
    if (badSignatures > 0) process.exitCode = 1;
  } finally {
    await stopAll();
    await receiver.close();
    await db?.drop();
  }
}

main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
