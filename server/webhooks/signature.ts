import { createHmac, randomBytes } from 'node:crypto';
import { SECRET_PREFIX } from '../config/webhookSecret';

/**
 * Webhook signatures exactly per Standard Webhooks (https://www.standardwebhooks.com),
 * byte-identical to the `standardwebhooks` package's `Webhook#sign` (tested), so the
 * receivers' own libraries (`standardwebhooks`, `svix`) verify every delivery:
 *
 *   webhook-id:        `msg_<event id>`: the same on every retry (receivers dedupe on it)
 *   webhook-timestamp: integer unix seconds when this attempt was sent
 *   webhook-signature: `v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<raw body>")>`,
 *                      one per secret, space-separated (several while a secret is rotated)
 *
 * The key is the bytes a secret stands for: for `whsec_<base64>` the base64-decoded
 * bytes after the prefix (the spec's form, 24 to 64 bytes); for a legacy plain secret
 * (accepted during a transition) its UTF-8 bytes, which the libraries verify with
 * `new Webhook(secret, { format: 'raw' })`.
 */
export const SIGNATURE_VERSION = 'v1';
export const USER_AGENT = 'Switchboard-Webhooks/1';

/** A new secret in the spec's form: `whsec_` + base64 of 32 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

/** The base64 HMAC-SHA256 of `<msgId>.<timestamp>.<body>`. */
export function computeSignature(key: Buffer, msgId: string, timestampSeconds: number, body: string): string {
  return createHmac('sha256', key).update(`${msgId}.${timestampSeconds}.`).update(body).digest('base64');
}

/** The webhook-signature header: `v1,<base64>` per key, space-separated. */
export function signatureHeader(keys: readonly Buffer[], msgId: string, timestampSeconds: number, body: string): string {
  return keys.map((k) => `${SIGNATURE_VERSION},${computeSignature(k, msgId, timestampSeconds, body)}`).join(' ');
}

/** The webhook-id of an event: the same for every attempt and every endpoint. */
export const webhookId = (eventId: string): string => `msg_${eventId}`;

/** Every header of one delivery attempt. */
export function webhookHeaders(keys: readonly Buffer[], msgId: string, body: string, nowMs = Date.now()): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    'webhook-id': msgId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatureHeader(keys, msgId, timestamp, body),
  };
}
