#!/usr/bin/env node
/**
 * Builds the web client into dist/web: client/web/call.ts and admin.ts bundled by
 * esbuild (with socket.io-client and mediasoup-client from node_modules, so the
 * pages load nothing from outside the server), and the .html, .css and .svg files
 * copied as they are. Run by `npm run build`.
 */
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'client', 'web');
const out = path.join(root, 'dist', 'web');

const started = performance.now();
await mkdir(out, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: { call: path.join(src, 'call.ts'), admin: path.join(src, 'admin.ts') },
  outdir: out,
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: ['chrome100', 'firefox100', 'safari15'],
  minify: true,
  sourcemap: true,
  tsconfig: path.join(root, 'client', 'tsconfig.json'),
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
  metafile: true,
});

const copied = [];
for (const name of await readdir(src)) {
  if (!/\.(html|css|svg)$/.test(name)) continue;
  await copyFile(path.join(src, name), path.join(out, name));
  copied.push(name);
}

// The server serves every file of dist/web: remove what this build did not write
// (files are replaced in place rather than the folder emptied first, so a server
// running meanwhile never finds its pages missing).
const written = new Set([...Object.keys(result.metafile.outputs).map((f) => path.basename(f)), ...copied]);
for (const name of await readdir(out)) if (!written.has(name)) await rm(path.join(out, name), { recursive: true, force: true });

const sizes = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith('.js'))
  .map(([file, o]) => `${path.basename(file)} ${(o.bytes / 1024).toFixed(0)} KiB`);
console.log(`web client built into dist/web in ${Math.round(performance.now() - started)} ms: ${sizes.join(', ')}; copied ${copied.join(', ')}`);
