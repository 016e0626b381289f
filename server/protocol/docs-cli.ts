/**
 * `npm run docs`: rewrites the generated blocks of the documents that hold
 * them (server/protocol/docs.ts) from the protocol's declarations.
 * `npm run docs -- --check` only reports which are stale (exit 1).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GENERATED_DOCUMENTS, renderDocument } from './docs';

const root = path.resolve(__dirname, '..', '..', '..');
const check = process.argv.includes('--check');
let stale = 0;
for (const rel of GENERATED_DOCUMENTS) {
  const file = path.join(root, rel);
  const text = readFileSync(file, 'utf8');
  const next = renderDocument(text);
  if (next === text) continue;
  stale++;
  if (check) console.error(`${rel} is stale: run npm run docs`);
  else {
    writeFileSync(file, next);
    console.log(`${rel} updated`);
  }
}
process.exit(check && stale > 0 ? 1 : 0);
