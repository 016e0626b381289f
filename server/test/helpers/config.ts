import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../config/config';

/** The problems loadConfig reports for `env` (none: []). */
export function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

/**
 * Every environment variable the configuration reads: the names loadConfig asks
 * for (recorded through a Proxy, with and without the variables that make it
 * read more), and every name passed as a literal to the reader in
 * server/config/ (reads behind other conditions).
 */
export function variablesRead(): Set<string> {
  const names = new Set<string>();
  const recording = (base: Record<string, string>) =>
    new Proxy(base, {
      get(target, key) {
        if (typeof key === 'string') names.add(key);
        return target[key as string];
      },
    });
  for (const env of [
    {} as Record<string, string>,
    { REDIS_URL: 'redis://127.0.0.1:6379' },
    { WEBHOOK_URLS: 'http://127.0.0.1:1/hook' },
    { TURN_URLS: 'turn:127.0.0.1' },
  ]) {
    try {
      loadConfig(recording(env));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
    }
  }
  const dir = path.resolve(__dirname, '..', '..', 'config');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(path.join(dir, file), 'utf8');
    for (const m of source.matchAll(/(?:r|this)\.\w+\(\s*'([A-Z][A-Z0-9_]+)'/g)) names.add(m[1]!);
  }
  return names;
}
