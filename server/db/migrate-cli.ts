/**
 * `npm run db:migrate`: applies pending migrations to DATABASE_URL, or to the
 * embedded database under DATA_DIR when DATABASE_URL is unset. The server does
 * the same at start-up; this is for deploy pipelines that migrate first.
 */
import { loadConfig, ConfigError } from '../config/config';
import { openDatabase } from './database';

async function main(): Promise<void> {
  const config = loadConfig();
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    log: (m) => console.log(m),
  });
  await db.close();
  console.log(`database is up to date (${db.kind})`);
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : `migration failed: ${(err as Error).message}`);
  process.exit(1);
});
