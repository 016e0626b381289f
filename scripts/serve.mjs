#!/usr/bin/env node
// `npm start`: the built server, or a line saying how to build it (a fresh clone has no dist/).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'server', 'main.js');
if (!existsSync(main)) {
  console.error('Switchboard is not built yet: run ./scripts/setup.sh (or ./scripts/start.sh to set up and start in one go)');
  process.exit(1);
}
await import(main);
