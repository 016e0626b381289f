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
