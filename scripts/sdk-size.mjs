#!/usr/bin/env node
/**
 * The SDK's size in a browser app, beside livekit-client's, measured the same way
 * for both: esbuild bundles the package's ESM entry with its dependencies
 * (platform browser, --minify), then gzip -9. The SDK comes from client/dist
 * (npm run build); livekit-client is installed from the npm registry into a
 * temporary folder. Also reported: the SDK alone, its dependencies left out.
 *
 *   npm run sdk:size [-- --livekit 2.23.0]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { parseOptions } from './lib/options.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const opts = parseOptions(
  'scripts/sdk-size.mjs',
  { livekit: { type: 'string', default: '2.23.0', arg: 'VERSION', help: 'the livekit-client version to compare with' } },
  'SDK bundle size (min+gzip) beside livekit-client',
);

/**
 * @param {string} name
 * @param {string} entry an ESM file, or a package name resolved from dir
 * @param {string} dir
 * @param {boolean} withDeps
 */
async function measure(name, entry, dir, withDeps) {
  const result = await build({
    absWorkingDir: dir,
    stdin: { contents: `export * from ${JSON.stringify(entry)};`, resolveDir: dir, loader: 'js' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    define: { 'process.env.NODE_ENV': '"production"' },
    ...(withDeps ? {} : { packages: /** @type {const} */ ('external') }),
    write: false,
    logLevel: 'error',
  });
  const code = result.outputFiles[0]?.contents ?? new Uint8Array();
  const gz = gzipSync(code, { level: 9 });
  return { name, minified_bytes: code.length, gzip_bytes: gz.length };
}

const tmp = mkdtempSync(path.join(tmpdir(), 'sb-size-'));
try {
  writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'sb-size', private: true }));
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', `livekit-client@${opts.values.livekit}`], {
    cwd: tmp,
    stdio: 'inherit',
  });
  const lk = JSON.parse(readFileSync(path.join(tmp, 'node_modules', 'livekit-client', 'package.json'), 'utf8'));
  const sdkEntry = path.join(root, 'client', 'dist', 'index.mjs');
  const rows = [
    await measure('@switchboard/client (with socket.io-client, mediasoup-client)', sdkEntry, root, true),
    await measure('@switchboard/client alone (dependencies external)', sdkEntry, root, false),
    await measure(`livekit-client ${lk.version} (with its dependencies)`, 'livekit-client', tmp, true),
  ];
  const kib = (/** @type {number} */ n) => `${(n / 1024).toFixed(1)} KiB`;
  for (const r of rows) console.log(`${r.name.padEnd(64)} min ${kib(r.minified_bytes).padStart(10)}   min+gzip ${kib(r.gzip_bytes).padStart(9)}`);
  console.log(JSON.stringify(rows));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
