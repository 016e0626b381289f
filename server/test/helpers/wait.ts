/**
 * Waiting in tests: the suite's one polling loop (until) and its one pause
 * (sleep). Every "poll until it holds, or fail after a while" goes through
 * until, so that a timeout always says what was awaited.
 */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface UntilOptions {
  /** How long to keep probing before failing (default 10 s). */
  timeoutMs?: number;
  /** The pause between two probes (default 25 ms). */
  intervalMs?: number;
}

/** What a probe returns once it holds. */
export type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/**
 * Calls `probe` until it returns a truthy value, and resolves with that value.
 * Past `timeoutMs` it rejects with an error naming `what` (a function is asked
 * only then, so it can tell where things stood at the end). A probe that
 * throws ends the wait with its error (e.g. "the process exited").
 */
export async function until<T>(
  what: string | (() => string),
  probe: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 25 }: UntilOptions = {},
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as Truthy<T>;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(intervalMs);
  }
}
