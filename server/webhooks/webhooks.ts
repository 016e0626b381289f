import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/config';
import type { DomainEvents } from '../events';
import type { PrismaClient } from '../generated/prisma/client';
import { WebhookDispatcher, type WebhookDispatcherOptions, type WebhookTuning } from './dispatcher';
import { WebhookOutbox } from './outbox';

/**
 * Signed webhooks with a durable outbox: the outbox turns domain events into
 * webhook_deliveries rows, the dispatcher sends them. Both exist only when
 * WEBHOOK_URLS is set; the admin routes exist always.
 */
export interface Webhooks {
  dispatcher: WebhookDispatcher | undefined;
  /** Starts recording events and sending (when WEBHOOK_URLS is set). */
  start(): void;
  /** Stores what is still buffered, then stops the dispatcher. The database must still be open. */
  stop(): Promise<void>;
}

export function createWebhooks(opts: {
  config: Config['webhooks'];
  prisma: PrismaClient;
  events: DomainEvents;
  log: FastifyBaseLogger;
  tuning?: WebhookTuning;
  /** After every delivery attempt (metrics). */
  onAttempt?: WebhookDispatcherOptions['onAttempt'];
}): Webhooks {
  const { config } = opts;
  if (config.urls.length === 0 || !config.secret) {
    return { dispatcher: undefined, start: () => undefined, stop: async () => undefined };
  }
  const dispatcher = new WebhookDispatcher({
    prisma: opts.prisma,
    log: opts.log,
    secret: config.secret,
    maxAttempts: config.maxAttempts,
    timeoutMs: config.timeoutMs,
    onAttempt: opts.onAttempt,
    ...opts.tuning,
  });
  const outbox = new WebhookOutbox({ prisma: opts.prisma, events: opts.events, endpoints: config.urls, log: opts.log, onInserted: () => dispatcher.wake() });
  // Listening starts at once: no event emitted after the app is built is missed.
  outbox.attach();
  return {
    dispatcher,
    start: () => dispatcher.start(),
    stop: async () => {
      await outbox.close();
      await dispatcher.stop();
    },
  };
}
