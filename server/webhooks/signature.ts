import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures, Stripe / Standard Webhooks style:
 *
 *   webhook-id:        the event's id (the same on every retry: receivers dedupe on it)
 *   webhook-timestamp: unix seconds when this attempt was sent
 *   webhook-signature: v1=<hex HMAC-SHA256(WEBHOOK_SECRET, "<timestamp>.<raw body>")>
 *
 * A receiver recomputes the HMAC over the raw body bytes it received (before any
 * JSON parsing), compares it in constant time, and rejects a timestamp more than
 * five minutes from its own clock (a replayed request).
 */
export const SIGNATURE_VERSION = 'v1';
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;
export const USER_AGENT = 'Switchboard-Webhooks/1';

/** The hex HMAC-SHA256 of `<timestamp>.<body>`. */
export function computeSignature(secret: string, timestamp: number | string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The value of the webhook-signature header. */
export function signatureHeader(secret: string, timestamp: number | string, body: string | Buffer): string {
  return `${SIGNATURE_VERSION}=${computeSignature(secret, timestamp, body)}`;
}

/** Every header of one delivery attempt. */
export function webhookHeaders(secret: string, eventId: string, body: string, nowMs = Date.now()): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    'webhook-id': eventId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatureHeader(secret, timestamp, body),
  };
}

export type VerifyResult =
  { ok: true } | { ok: false; reason: 'missing-headers' | 'bad-timestamp' | 'timestamp-too-old' | 'timestamp-in-future' | 'bad-signature' };

/**
 * What a receiver does: checks the timestamp is within `toleranceSeconds` of now
 * and that one of the `v1=` signatures in the header (space-separated, so a
 * secret can be rotated) matches the raw body.
 */
export function verifyWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  rawBody: string | Buffer,
  opts: { toleranceSeconds?: number; nowMs?: number } = {},
): VerifyResult {
  const one = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const timestamp = one('webhook-timestamp');
  const signature = one('webhook-signature');
  if (!timestamp || !signature) return { ok: false, reason: 'missing-headers' };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'bad-timestamp' };
  const tolerance = opts.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const age = Math.floor((opts.nowMs ?? Date.now()) / 1000) - Number(timestamp);
  if (age > tolerance) return { ok: false, reason: 'timestamp-too-old' };
  if (age < -tolerance) return { ok: false, reason: 'timestamp-in-future' };
  const expected = Buffer.from(computeSignature(secret, timestamp, rawBody), 'hex');
  for (const part of signature.split(' ')) {
    const [version, hex] = part.split('=', 2);
    if (version !== SIGNATURE_VERSION || !hex || !/^[0-9a-f]{64}$/i.test(hex)) continue;
    if (timingSafeEqual(Buffer.from(hex, 'hex'), expected)) return { ok: true };
  }
  return { ok: false, reason: 'bad-signature' };
}
