import { EventEmitter } from 'node:events';

/**
 * An EventEmitter whose events and their arguments are declared once, as
 * mediasoup's EnhancedEventEmitter: `emit` and `on` are checked by the
 * compiler, and `safeEmit` keeps a listener that throws from taking the
 * emitter (and the request that made it emit) down.
 */
export class TypedEmitter<Events extends Record<keyof Events, unknown[]>> extends EventEmitter<Events> {
  constructor(private readonly onListenerError: (event: keyof Events, err: unknown) => void = () => undefined) {
    super();
  }

  /** Emits to every listener; one that throws is reported to onListenerError and the others still run. */
  safeEmit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    for (const listener of this.listeners(event as never) as unknown as Array<(...a: Events[E]) => unknown>) {
      try {
        listener(...args);
      } catch (err) {
        this.onListenerError(event, err);
      }
    }
  }
}
