/**
 * WEBHOOK_SECRET's forms (server/webhooks/signature.ts signs with the keys):
 * `whsec_<base64>`, the Standard Webhooks form, whose key is the base64-decoded
 * bytes after the prefix (24 to 64 of them, as the spec bounds it); or, for a
 * transition, a legacy plain secret of at least 32 printable ASCII characters
 * whose bytes are the key (receivers verify it with `new Webhook(secret, { format: 'raw' })`,
 * which takes one byte per character: hence ASCII, where that equals UTF-8).
 */
export const SECRET_PREFIX = 'whsec_';
export const SECRET_MIN_BYTES = 24;
export const SECRET_MAX_BYTES = 64;
/** A legacy plain secret is still accepted from this length (the old rule). */
export const LEGACY_SECRET_MIN_LENGTH = 32;

export interface WebhookSecret {
  /** The HMAC-SHA256 key. */
  key: Buffer;
  /** A plain secret, not `whsec_…`: its (ASCII) bytes are the key. */
  legacy: boolean;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** One secret as its key, or why it is not one. */
export function parseWebhookSecret(secret: string): WebhookSecret | { error: string } {
  if (secret.startsWith(SECRET_PREFIX)) {
    const b64 = secret.slice(SECRET_PREFIX.length);
    if (!BASE64.test(b64) || b64.length % 4 !== 0) return { error: 'the part after whsec_ must be standard base64 (A-Z a-z 0-9 + /, = padding)' };
    const key = Buffer.from(b64, 'base64');
    if (key.length < SECRET_MIN_BYTES || key.length > SECRET_MAX_BYTES)
      return { error: `the part after whsec_ must decode to ${SECRET_MIN_BYTES}-${SECRET_MAX_BYTES} bytes (it decodes to ${key.length})` };
    return { key, legacy: false };
  }
  if (secret.length < LEGACY_SECRET_MIN_LENGTH || !/^[\x21-\x7e]+$/.test(secret))
    return {
      error: `must be whsec_<base64 of ${SECRET_MIN_BYTES}-${SECRET_MAX_BYTES} bytes> (e.g. "whsec_$(openssl rand -base64 32)"), or a legacy plain secret of at least ${LEGACY_SECRET_MIN_LENGTH} printable ASCII characters`,
    };
  return { key: Buffer.from(secret, 'utf8'), legacy: true };
}
