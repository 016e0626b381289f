/**
 * Part of `npm run docs`: rewrites the README's list of metric families
 * (catalog.ts) from the registry. `--check` only reports whether it is stale (exit 1).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { metricsTable, withMetricsTable } from './catalog';
import { Metrics } from './metrics';

const readme = path.resolve(__dirname, '..', '..', '..', 'README.md');
const text = readFileSync(readme, 'utf8');
const next = withMetricsTable(text, metricsTable(new Metrics({ defaultMetrics: false }).registry));
if (next === text) process.exit(0);
if (process.argv.includes('--check')) {
  process.stderr.write('README.md: the metrics list is stale: run npm run docs\n');
  process.exit(1);
}
writeFileSync(readme, next);
process.stdout.write('README.md metrics list updated\n');
