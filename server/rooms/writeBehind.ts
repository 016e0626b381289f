import type { FastifyBaseLogger } from 'fastify';

/**
 * Database writes that signaling must not wait for (participant rows, call
 * events). Writes with the same key (a participant, a call) run in order; a
 * failed write is logged and counted, never thrown at a client. flush() waits
 * for everything queued, for shutdown and tests.
 */
export class WriteBehind {
  private readonly tails = new Map<string, Promise<void>>();

  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly onFailure: () => void = () => undefined,
  ) {}

  enqueue(key: string, what: string, write: () => Promise<unknown>): void {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const tail: Promise<void> = prev
      .then(write)
      .then(
        () => undefined,
        (err: unknown) => {
          this.onFailure();
          this.log.error({ err, key, what }, 'database write behind signaling failed');
        },
      )
      .finally(() => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
      });
    this.tails.set(key, tail);
  }

  async flush(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}
