/**
 * Waiting in tests: the suite's one polling loop (until), its one pause
 * (sleep), and gates that hold something until a test lets it go. Every
 * "poll until it holds, or fail after a while" goes through until, so that
 * a timeout always says what was awaited.
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

/** A promise that stays pending until release(), then resolves with `value`. */
export function gate<T = void>(value?: T): { released: Promise<T>; release(): void } {
  let release!: () => void;
  const released = new Promise<T>((resolve) => {
    release = () => resolve(value as T);
  });
  return { released, release };
}

/**
 * Replaces `obj[method]` so that its calls wait until release() before they
 * run: `entered` resolves at the first call. restore() puts the method back.
 */
export function hold<O extends object, K extends keyof O>(obj: O, method: K): { entered: Promise<void>; release(): void; restore(): void } {
  const original = obj[method];
  const call = original as unknown as (...args: unknown[]) => unknown;
  const { released, release } = gate();
  let enter!: () => void;
  const entered = new Promise<void>((resolve) => (enter = resolve));
  obj[method] = (async (...args: unknown[]) => {
    enter();
    await released;
    return call.apply(obj, args);
  }) as O[K];
  return { entered, release, restore: () => (obj[method] = original) };
}
