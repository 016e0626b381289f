import { createHmac } from 'node:crypto';

/**
 * Time-limited TURN credentials in the scheme of coturn's REST API
 * (`use-auth-secret` / `static-auth-secret`): username = "<expiry unix time>:<user id>",
 * credential = base64(HMAC-SHA1(secret, username)). The TURN server checks the
 * HMAC and the expiry; nothing is stored.
 */
export function turnCredentials(secret: string, userId: string, ttlSeconds: number, now = Date.now()): { username: string; credential: string } {
  const username = `${Math.floor(now / 1000) + ttlSeconds}:${userId}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}
