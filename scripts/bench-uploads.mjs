#!/usr/bin/env node
/**
 * Upload throughput over tus 1.0 (a benchmark, not a test). tus-js-client (the protocol's
 * own client, in this process) sends one file of --upload-mb MB in --chunk-mb MB PATCHes to:
 *
 *   (a) Switchboard (`node dist/server/main.js`, embedded PGlite): auth, the upload row, fsync
 *       per chunk, the whole-file SHA-256 check, the recording row;
 *   (b) a bare @tus/server with @tus/file-store on node:http (its own process): tus alone;
 *   (c) a bare node:http server (its own process) that writes each PATCH body to a file and
 *       answers just enough tus (POST → Location, PATCH → Upload-Offset) for the client.
 *
 * Same run, same file, a 16 MB warm-up on each, then --rounds measured rounds in turn;
 * MB/s is the best of the rounds. Everything goes to 127.0.0.1. Needs a build.
 *
 *   node scripts/bench-uploads.mjs [--upload-mb 200] [--chunk-mb 8] [--rounds 2] [--out result.json]
 */
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tus from 'tus-js-client';
import { freeDualPort, freePort, request } from './lib/net.mjs';
import { OUT_OPTION, parseOptions } from './lib/options.mjs';
import { BenchRun, writeJson } from './lib/runner.mjs';
import { BENCH_API_KEY as API_KEY, minimalEnv, startSwitchboard, switchboardEnv } from './lib/servers.mjs';
import { round, table } from './lib/stats.mjs';
import { machineMeta } from './lib/system.mjs';

const MB = 1024 * 1024;

const { values: args } = parseOptions('node scripts/bench-uploads.mjs', {
  'upload-mb': { type: 'integer', default: 200, min: 1, max: 2048, help: 'size of the uploaded file, MB' },
  'chunk-mb': { type: 'integer', default: 8, min: 1, max: 64, help: 'size of each PATCH (tus-js-client chunkSize), MB' },
  rounds: { type: 'integer', default: 2, min: 1, max: 10, help: 'measured uploads per server (the best counts)' },
  out: OUT_OPTION,
});
const opts = { uploadMb: args['upload-mb'], chunkMb: args['chunk-mb'], rounds: args.rounds };
const run = new BenchRun({ doing: 'stopping the servers' });

/** (b): @tus/server on node:http, files in argv[1]. */
const BARE_TUS = `
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';
const server = new Server({ path: '/files', datastore: new FileStore({ directory: process.argv[1] }), relativeLocation: true });
server.listen(Number(process.env.PORT), '127.0.0.1');
`;

/** (c): node:http writing each PATCH body to a file in argv[1]. */
const BARE_HTTP = `
import http from 'node:http';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
let n = 0;
http.createServer(async (req, res) => {
  if (req.method === 'POST') { res.writeHead(201, { location: '/f/' + (++n), 'tus-resumable': '1.0.0' }).end(); return; }
  const file = process.argv[1] + '/' + req.url.split('/').pop();
  const offset = Number(req.headers['upload-offset'] ?? 0);
  if (req.method === 'PATCH') {
    await pipeline(req, fs.createWriteStream(file, { flags: offset === 0 ? 'w' : 'r+', start: offset }));
    res.writeHead(204, { 'upload-offset': String(fs.statSync(file).size), 'tus-resumable': '1.0.0' }).end();
    return;
  }
  res.writeHead(200, { 'upload-offset': String(fs.existsSync(file) ? fs.statSync(file).size : 0), 'tus-resumable': '1.0.0', 'cache-control': 'no-store' }).end();
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

/** @param {string} name @param {string} code */
async function startBare(name, code) {
  const port = await freePort();
  const dir = run.tempDir(`sb-up-${name}-`);
  const proc = run.spawnNode(name, '--input-type=module', { env: { PATH: minimalEnv().PATH, PORT: String(port) }, args: ['-e', code, dir] });
  for (let i = 0; i < 400; i++) {
    if (
      await request(port, 'OPTIONS', '/files/x').then(
        () => true,
        () => false,
      )
    )
      return port;
    await sleep(25);
  }
  throw new Error(`${name} did not start:\n${proc.tail()}`);
}

/**
 * tus-js-client: one whole upload; resolves with the wall time.
 * @param {string} endpoint @param {Buffer} file @param {Record<string, string>} headers @param {Record<string, string>} metadata
 */
function upload(endpoint, file, headers, metadata) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const up = new tus.Upload(file, {
      endpoint,
      headers,
      metadata,
      chunkSize: opts.chunkMb * MB,
      retryDelays: [],
      onError: reject,
      onSuccess: () => resolve(performance.now() - t0),
    });
    up.start();
  });
}

async function main() {
  console.log(`bench-uploads: tus-js-client, ${opts.uploadMb} MB in ${opts.chunkMb} MB chunks, ${opts.rounds} round(s)`);
  const file = randomBytes(opts.uploadMb * MB);
  const sha256 = createHash('sha256').update(file).digest('hex');
  const warm = randomBytes(16 * MB);

  const sbPort = await freePort();
  const extra = {
    RECORDINGS_DIR: run.tempDir('sb-up-rec-'),
    RATE_LIMIT_MAX: '10000000',
    UPLOAD_MAX_BYTES: String(4096 * MB),
    // Another server on this machine may hold the default WebRTC port.
    MEDIASOUP_WEBRTC_PORT: String(await freeDualPort()),
  };
  await startSwitchboard(run, {
    name: 'switchboard',
    port: sbPort,
    env: switchboardEnv({ port: sbPort, dataDir: run.tempDir('sb-up-data-'), databaseUrl: undefined, extra }),
    pollMs: 20,
    timeoutMs: 60_000,
  });
  const json = { 'x-api-key': API_KEY, 'content-type': 'application/json' };
  const created = await request(sbPort, 'POST', '/calls', { headers: json, body: JSON.stringify({ room_id: 'bench-uploads' }) });
  if (created.status !== 201) throw new Error(`POST /calls: ${created.status} ${created.text}`);
  const callId = JSON.parse(created.text).id;
  const tusPort = await startBare('bare-tus', BARE_TUS);
  const httpPort = await startBare('bare-http', BARE_HTTP);

  /** @type {Array<{ name: string, url: string, headers: Record<string, string> }>} */
  const targets = [
    {
      name: 'Switchboard (tus: auth, rows, fsync, SHA-256, recording)',
      url: `http://127.0.0.1:${sbPort}/calls/${callId}/uploads`,
      headers: { 'x-api-key': API_KEY },
    },
    { name: 'bare @tus/server + FileStore on node:http (baseline)', url: `http://127.0.0.1:${tusPort}/files`, headers: {} },
    { name: 'bare node:http -> file (baseline)', url: `http://127.0.0.1:${httpPort}/f`, headers: {} },
  ];
  /** @type {Record<string, number[]>} */
  const times = {};
  for (const t of targets) {
    await upload(t.url, warm, t.headers, { filename: 'warm.webm', filetype: 'video/webm' });
    times[t.name] = [];
  }
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of targets) {
      times[t.name]?.push(/** @type {number} */ (await upload(t.url, file, t.headers, { filename: 'bench.webm', filetype: 'video/webm', sha256 })));
    }
  }
  /** @param {number} ms */
  const mbps = (ms) => round(opts.uploadMb / (ms / 1000), 0);
  const rows = targets.map((t) => {
    const best = Math.min(...(times[t.name] ?? []));
    return [t.name, round(best / 1000, 2), mbps(best), (times[t.name] ?? []).map((ms) => mbps(ms)).join(' / ')];
  });
  console.log(`\nOne ${opts.uploadMb} MB file with tus-js-client (best of ${opts.rounds})`);
  console.log(table(['server', 'seconds', 'MB/s', 'MB/s each round'], rows));
  if (args.out) writeJson(args.out, { meta: machineMeta(), opts, results: Object.fromEntries(targets.map((t) => [t.name, times[t.name]])) });
}

await run.finish({ main, results: { failures: [] } });
