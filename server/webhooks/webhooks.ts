import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/config';
import type { DomainEvents } from '../events';
import type { PrismaClient } from '../generated/prisma/client';
import { WebhookDispatcher, type WebhookDispatcherOptions, type WebhookTuning } from './dispatcher';
import { WebhookOutbox } from './outbox';
import { generateSecret } from './signature';

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
  const { config, log } = opts;
  if (config.urls.length === 0) return { dispatcher: undefined, start: () => undefined, stop: async () => undefined };
  // main.ts generates one outside production; an embedding application must pass one.
  if (config.secrets.length === 0) throw new Error('WEBHOOK_URLS is set but there is no WEBHOOK_SECRET to sign with');
  if (config.secrets.some((s) => s.legacy)) {
    log.warn(
      'WEBHOOK_SECRET holds a plain (legacy) secret: its UTF-8 bytes are the signing key, so receivers verify with new Webhook(secret, { format: "raw" }). ' +
        'Move to the Standard Webhooks form whsec_<base64>: put the new secret before the old one (space-separated, both sign) until every receiver has it',
    );
  }
  const dispatcher = new WebhookDispatcher({
    prisma: opts.prisma,
    log,
    keys: config.secrets.map((s) => s.key),
    maxAttempts: config.maxAttempts,
    timeoutMs: config.timeoutMs,
    concurrencyPerEndpoint: config.concurrencyPerEndpoint,
    onAttempt: opts.onAttempt,
    ...opts.tuning,
  });
  const outbox = new WebhookOutbox({ prisma: opts.prisma, events: opts.events, endpoints: config.urls, log, onInserted: () => dispatcher.wake() });
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

/**
 * Development convenience: WEBHOOK_URLS set without WEBHOOK_SECRET (never in
 * production, where it is a start-up error): a `whsec_` secret is generated once
 * into DATA_DIR/keys/webhook-secret and kept, so a receiver configured with it
 * goes on verifying across restarts.
 */
export function devWebhookSecret(dataDir: string): { secret: string; file: string; generated: boolean } {
  const dir = path.join(dataDir, 'keys');
  const file = path.join(dir, 'webhook-secret');
  if (existsSync(file)) return { secret: readFileSync(file, 'utf8').trim(), file, generated: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const secret = generateSecret();
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return { secret, file, generated: true };
}
