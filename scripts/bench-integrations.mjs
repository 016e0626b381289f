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
 *      answer to the signed POST reaching a receiver on 127.0.0.1 (signature checked with the
 *      standardwebhooks library), then a burst of the same count ended at once and the time
 *      until the last arrives;
 *      baseline in the same run: the bench POSTing the same signed body straight to the
 *      receiver (the HTTP hop alone).
 *
 * Everything goes to 127.0.0.1. Needs a build (npm run build -> dist/).
 *
 *   node scripts/bench-integrations.mjs [--upload-mb 256] [--chunk-mb 16] [--events 200]
 *                                       [--postgres] [--out result.json]   (--help describes them)
 *
 * --postgres runs the server on a fresh PostgreSQL database (CREATE DATABASE bench_<random>
 * through TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres;
 * dropped WITH (FORCE) at the end).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import { freeDualPort, freePort, request } from './lib/net.mjs';
import { OUT_OPTION, parseOptions } from './lib/options.mjs';
import { createDatabase } from './lib/postgres.mjs';
import { BenchRun, writeJson } from './lib/runner.mjs';
import { BENCH_API_KEY as API_KEY, minimalEnv, startSwitchboard as startServer, switchboardEnv } from './lib/servers.mjs';
import { nearestRank, round, table } from './lib/stats.mjs';
import { machineMeta, statusKb } from './lib/system.mjs';

/** @typedef {{ proc: import('./lib/processes.mjs').Proc, port: number }} Server */

const MB = 1024 * 1024;
// Standard Webhooks' form; the receiver verifies with the standardwebhooks library.
const SECRET = `whsec_${Buffer.from('bench-webhook-key-of-32-bytes-ok').toString('base64')}`;
const standardWebhook = new Webhook(SECRET);
const OCTET = 'application/offset+octet-stream';

const { values: args } = parseOptions('node scripts/bench-integrations.mjs', {
  'upload-mb': { type: 'integer', default: 256, min: 1, max: 2048, help: 'size of the uploaded file, MB' },
  'chunk-mb': { type: 'integer', default: 16, min: 1, max: 64, help: 'size of each PATCH, MB' },
  events: { type: 'integer', default: 200, min: 1, max: 2000, help: 'webhook events, one after the other, then as many at once' },
  postgres: { type: 'boolean', help: 'run the server on a fresh PostgreSQL database instead of the embedded one' },
  out: OUT_OPTION,
});
const opts = { uploadMb: args['upload-mb'], chunkMb: args['chunk-mb'], events: args.events };

const run = new BenchRun({ doing: 'stopping the servers' });

// ---------------------------------------------------------------- HTTP helpers

/**
 * One request with a Buffer (or nothing) as the body, on a kept-alive connection; JSON
 * answers parsed. Rejects if no answer came.
 * @param {number} port
 * @param {string} method
 * @param {string} urlPath
 * @param {{ headers?: http.OutgoingHttpHeaders, body?: string | Buffer }} [options]
 * @returns {Promise<{ status: number, json: any, text: string }>}
 */
async function call(port, method, urlPath, { headers = {}, body } = {}) {
  const res = await request(port, method, urlPath, { headers, body, timeoutMs: 120_000, keepAlive: true });
  if (res.error !== undefined) throw new Error(`${method} ${urlPath}: ${res.error}`);
  let json;
  try {
    json = res.text ? JSON.parse(res.text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text: res.text };
}
/** @param {object} o */
const jsonBody = (o) => ({ headers: { 'content-type': 'application/json', 'x-api-key': API_KEY }, body: JSON.stringify(o) });
/**
 * @param {{ status: number, json: any, text: string }} res
 * @param {number} want
 * @param {string} what
 */
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

/**
 * @param {string} webhookUrl
 * @param {string | undefined} databaseUrl
 * @returns {Promise<Server>}
 */
async function startSwitchboard(webhookUrl, databaseUrl) {
  const port = await freePort();
  const dataDir = run.tempDir('sb-int-data-');
  const extra = {
    // Not the default 40000: other servers on the machine may hold it.
    MEDIASOUP_LISTEN_IP: '127.0.0.1',
    MEDIASOUP_WEBRTC_PORT: String(await freeDualPort(30000, 40000)),
    RECORDINGS_DIR: run.tempDir('sb-int-rec-'),
    RATE_LIMIT_MAX: '10000000',
    WEBHOOK_URLS: webhookUrl,
    WEBHOOK_SECRET: SECRET,
    UPLOAD_MAX_BYTES: String(2048 * MB),
  };
  const { proc } = await startServer(run, {
    name: 'switchboard',
    port,
    env: switchboardEnv({ port, dataDir, databaseUrl, extra }),
    pollMs: 20,
    timeoutMs: 60_000,
  });
  return { proc, port };
}

/** @returns {Promise<Server>} */
async function startBareUploadServer() {
  const port = await freePort();
  const dir = run.tempDir('sb-int-bare-');
  const proc = run.spawnNode('bare-upload', '-e', { env: { PATH: minimalEnv().PATH, PORT: String(port) }, args: [BARE_UPLOAD_SERVER, dir] });
  for (let i = 0; i < 200; i++) {
    const ok = await call(port, 'GET', '/x').then(
      () => true,
      () => false,
    );
    if (ok) return { proc, port };
    await sleep(25);
  }
  throw new Error(`bare upload server did not start:\n${proc.tail()}`);
}

// ---------------------------------------------------------------- the webhook receiver

/**
 * A webhook receiver on 127.0.0.1 that checks each signature and notes when each call.ended arrived.
 * @returns {Promise<{ url: string, port: number, arrivals: Map<string, number>, stats: () => { received: number, badSignatures: number }, arrival: (id: string) => Promise<number>, close: () => Promise<unknown> }>}
 */
function startReceiver() {
  /** @type {Map<string, number>} call_id -> ms */
  const arrivals = new Map();
  let badSignatures = 0;
  let received = 0;
  /** @type {Map<string, (at: number) => void>} */
  const waiters = new Map();
  const server = http.createServer((req, res) => {
    /** @type {Buffer[]} */
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const at = performance.now();
      const raw = Buffer.concat(chunks).toString('utf8');
      try {
        standardWebhook.verify(raw, /** @type {Record<string, string>} */ (req.headers));
      } catch {
        badSignatures++;
      }
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
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      resolve({
        url: `http://127.0.0.1:${port}/hook`,
        port,
        arrivals,
        stats: () => ({ received, badSignatures }),
        arrival: (id) => (arrivals.has(id) ? Promise.resolve(/** @type {number} */ (arrivals.get(id))) : new Promise((r) => waiters.set(id, r))),
        close: () => new Promise((r) => server.close(r)),
      });
    });
  });
}

// ---------------------------------------------------------------- measurements

/** @param {number[]} xs */
const pct = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: round(nearestRank(s, 50), 2), p99: round(nearestRank(s, 99), 2), max: round(s[s.length - 1], 2) };
};
/** @typedef {Awaited<ReturnType<typeof startReceiver>>} Receiver */

/**
 * @param {Server} sb
 * @param {Buffer} file
 * @param {string} sha256
 */
async function uploadSwitchboard(sb, file, sha256) {
  const created = expectStatus(await call(sb.port, 'POST', '/calls', jsonBody({ room_id: `bench-up-${randomUUID()}` })), 201, 'POST /calls');
  const callId = created.json.id;
  // The server's RSS, sampled every 50 ms while the upload runs: a server that buffered
  // a chunk would grow by about the chunk size.
  const rssBefore = statusKb(sb.proc.pid, 'VmRSS') ?? 0;
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
    last = expectStatus(
      await call(sb.port, 'PATCH', `/uploads/${id}`, {
        headers: {
          'x-api-key': API_KEY,
          'tus-resumable': '1.0.0',
          'content-type': OCTET,
          'upload-offset': String(off),
          'content-length': String(chunk.length),
        },
        body: chunk,
      }),
      204,
      'PATCH /uploads/:id',
    );
  }
  const ms = performance.now() - t0;
  clearInterval(sampler);
  // tus: 204 for every chunk, the last one included; the upload then says it is completed.
  const done = await call(sb.port, 'GET', `/uploads/${id}`, { headers: { 'x-api-key': API_KEY } });
  if (done.json?.status !== 'completed') throw new Error(`upload not completed: ${last?.text} ${done.text}`);
  return { ms, rssGrowthMb: round((rssPeak - rssBefore) / 1024, 1) };
}

/**
 * @param {Server} bare
 * @param {Buffer} file
 * @param {string} sha256
 */
async function uploadBare(bare, file, sha256) {
  const id = randomUUID();
  const t0 = performance.now();
  expectStatus(await call(bare.port, 'POST', `/u/${id}`, { body: JSON.stringify({ size: file.length, sha256 }) }), 201, 'bare POST');
  for (let off = 0; off < file.length; off += opts.chunkMb * MB) {
    const chunk = file.subarray(off, Math.min(file.length, off + opts.chunkMb * MB));
    expectStatus(
      await call(bare.port, 'PATCH', `/u/${id}`, { headers: { 'upload-offset': String(off), 'content-length': String(chunk.length) }, body: chunk }),
      200,
      'bare PATCH',
    );
  }
  return { ms: performance.now() - t0 };
}

/** @param {Server} sb */
async function createAndEnd(sb) {
  const created = expectStatus(await call(sb.port, 'POST', '/calls', jsonBody({ room_id: `bench-wh-${randomUUID()}` })), 201, 'POST /calls');
  return created.json.id;
}
/**
 * @param {Server} sb
 * @param {string} id
 */
async function endCall(sb, id) {
  expectStatus(await call(sb.port, 'POST', `/calls/${id}/end`, { headers: { 'x-api-key': API_KEY } }), 200, 'POST /calls/:id/end');
  return performance.now();
}

/**
 * @param {Server} sb
 * @param {Receiver} receiver
 */
async function webhookLatency(sb, receiver) {
  const seq = [];
  for (let i = 0; i < opts.events; i++) {
    const id = await createAndEnd(sb);
    const answered = await endCall(sb, id);
    /** @type {number} */
    const arrived = await Promise.race([
      receiver.arrival(id),
      new Promise((_, rej) => setTimeout(() => rej(new Error('webhook not received within 30 s')), 30_000)),
    ]);
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

/** @param {Receiver} receiver */
async function directPostLatency(receiver) {
  const xs = [];
  for (let i = 0; i < opts.events; i++) {
    const body = JSON.stringify({ type: 'bench.direct', timestamp: new Date().toISOString(), data: {} });
    const msgId = `msg_${randomUUID()}`;
    const t0 = performance.now();
    const now = new Date();
    expectStatus(
      await call(receiver.port, 'POST', '/hook', {
        headers: {
          'content-type': 'application/json',
          'webhook-id': msgId,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': standardWebhook.sign(msgId, now, body),
        },
        body,
      }),
      204,
      'direct POST',
    );
    xs.push(performance.now() - t0);
  }
  return pct(xs);
}

// ---------------------------------------------------------------- main

async function main() {
  console.log(
    `bench-integrations: upload ${opts.uploadMb} MB in ${opts.chunkMb} MB chunks; ${opts.events} webhook events; ${args.postgres ? 'PostgreSQL' : 'PGlite'}`,
  );
  const file = randomBytes(opts.uploadMb * MB);
  const sha256 = createHash('sha256').update(file).digest('hex');
  const receiver = await startReceiver();
  const db = args.postgres ? await createDatabase(run, 'bench') : null;
  // The receiver outlives the server (which may still be sending) and closes before the database goes.
  run.afterStopping(() => receiver.close());
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

  /** @param {number} ms */
  const mbps = (ms) => round(opts.uploadMb / (ms / 1000), 0);
  console.log('\nUpload of one file (wall time from the first request to the completed answer)');
  console.log(
    table(
      ['server', 'seconds', 'MB/s', 'server RSS growth (peak)'],
      [
        ['Switchboard (auth, DB rows, SHA-256, rename, recording row)', round(sbUp.ms / 1000, 2), mbps(sbUp.ms), `${sbUp.rssGrowthMb} MB`],
        ['bare node:http -> file + SHA-256 (baseline)', round(bareUp.ms / 1000, 2), mbps(bareUp.ms), ''],
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
  const result = {
    meta: machineMeta(),
    opts,
    database: args.postgres ? 'postgres' : 'pglite',
    upload: { switchboard: sbUp, bare: bareUp, mbps: { switchboard: mbps(sbUp.ms), bare: mbps(bareUp.ms) } },
    webhooks: { ...hooks, direct, badSignatures },
  };
  if (args.out) writeJson(args.out, result);
  if (badSignatures > 0) results.failures.push(`${badSignatures} webhooks with a bad signature`);
}

/** Nothing but the verdict: the tables are printed and the JSON written as the run goes. */
/** @type {{ failures: string[] }} */
const results = { failures: [] };
await run.finish({ main, results });
