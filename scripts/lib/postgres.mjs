/**
 * Fresh PostgreSQL databases for benchmark servers, created through TEST_DATABASE_URL (the
 * tests' admin connection, default postgresql://postgres@127.0.0.1:5432/postgres) and dropped
 * WITH (FORCE) at the run's cleanup.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ROOT } from './system.mjs';

const require = createRequire(path.join(ROOT, 'package.json'));

export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

/**
 * One statement on a connection of its own (CREATE/DROP DATABASE cannot share a transaction).
 * @param {string} sql
 * @param {unknown[]} [params]
 */
export async function adminQuery(sql, params) {
  /** @type {typeof import('pg')} */
  const pg = require('pg');
  const c = new pg.Client({ connectionString: ADMIN_DATABASE_URL, connectionTimeoutMillis: 5_000, query_timeout: 60_000 });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

/**
 * @typedef {object} Database
 * @property {string} name
 * @property {string} url its connection string (DATABASE_URL for a server)
 * @property {string} shown the same with the password, if any, as ***
 * @property {() => Promise<boolean>} exists
 */

/**
 * CREATE DATABASE "<prefix>_<pid>_<random>"; the run drops it at cleanup.
 * @param {import('./runner.mjs').BenchRun} run
 * @param {string} prefix
 * @returns {Promise<Database>}
 */
export async function createDatabase(run, prefix) {
  const name = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${name}"`);
  run.afterStopping(async () => {
    await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    console.error(`  dropped database ${name}`);
  });
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  const shown = new URL(url);
  if (shown.password) shown.password = '***';
  return {
    name,
    url: url.toString(),
    shown: shown.toString(),
    exists: async () => ((await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount ?? 0) > 0,
  };
}
