import { createHmac, randomUUID } from 'node:crypto';
import { ConfigError, loadConfig } from '../config/config';
import { backoffDelay } from '../webhooks/dispatcher';
import { computeSignature, verifyWebhook, webhookHeaders } from '../webhooks/signature';
import { problemsOf } from './helpers/config';
import { SECRET, receiverVerifies } from './helpers/webhookReceiver';

/** Webhook signatures (checked against a receiver written from the documentation), backoff and configuration. */
describe('webhooks: signing', () => {
  const body = JSON.stringify({ id: randomUUID(), type: 'call.started', created_at: new Date().toISOString(), data: { call_id: randomUUID() } });

  it('signs "<timestamp>.<body>" with HMAC-SHA256, hex, as v1=', () => {
    const h = webhookHeaders(SECRET, 'evt-1', body, 1_700_000_000_123);
    expect(h).toEqual({
      'content-type': 'application/json',
      'user-agent': 'Switchboard-Webhooks/1',
      'webhook-id': 'evt-1',
      'webhook-timestamp': '1700000000',
      'webhook-signature': `v1=${createHmac('sha256', SECRET).update(`1700000000.${body}`).digest('hex')}`,
    });
    expect(computeSignature(SECRET, 1700000000, body)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('verifies with the right secret; a different secret, a changed body or an old timestamp are detected', () => {
    const h = webhookHeaders(SECRET, 'evt-1', body);
    expect(verifyWebhook(SECRET, h, body)).toEqual({ ok: true });
    expect(receiverVerifies(SECRET, h, body)).toBe(true);

    const otherSecret = 'another-secret-0123456789abcdef0123456789';
    expect(verifyWebhook(otherSecret, h, body)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(receiverVerifies(otherSecret, h, body)).toBe(false);
    const forged = webhookHeaders(otherSecret, 'evt-1', body);
    expect(verifyWebhook(SECRET, forged, body)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(receiverVerifies(SECRET, forged, body)).toBe(false);

    const tampered = body.replace('call.started', 'call.ended');
    expect(verifyWebhook(SECRET, h, tampered)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(receiverVerifies(SECRET, h, tampered)).toBe(false);

    const sixMinutesAgo = Date.now() - 6 * 60_000;
    const old = webhookHeaders(SECRET, 'evt-1', body, sixMinutesAgo);
    expect(verifyWebhook(SECRET, old, body)).toEqual({ ok: false, reason: 'timestamp-too-old' });
    expect(receiverVerifies(SECRET, old, body)).toBe(false);
    // The replayed timestamp cannot be refreshed without the secret.
    expect(verifyWebhook(SECRET, { ...old, 'webhook-timestamp': h['webhook-timestamp'] }, body)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyWebhook(SECRET, { ...h, 'webhook-signature': undefined }, body)).toEqual({ ok: false, reason: 'missing-headers' });
    // Several signatures (secret rotation): one match is enough.
    expect(verifyWebhook(SECRET, { ...h, 'webhook-signature': `${forged['webhook-signature']} ${h['webhook-signature']}` }, body)).toEqual({ ok: true });
  });

  it('backs off 1 s, 2 s, 4 s … capped at 5 minutes, with at most 25 % jitter', () => {
    const zero = () => 0;
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, 1000, 300_000, zero))).toEqual([1000, 2000, 4000, 8000, 16_000]);
    expect(backoffDelay(9, 1000, 300_000, zero)).toBe(256_000);
    expect(backoffDelay(10, 1000, 300_000, zero)).toBe(300_000);
    expect(backoffDelay(50, 1000, 300_000, () => 0.99)).toBe(300_000);
    expect(backoffDelay(3, 1000, 300_000, () => 0.5)).toBe(4500);
  });
});

describe('webhooks: configuration', () => {
  const url = 'http://127.0.0.1:9999/hook';

  it('is off by default, with 12 attempts and a 5 s timeout', () => {
    expect(loadConfig({}).webhooks).toEqual({ urls: [], secret: undefined, maxAttempts: 12, timeoutMs: 5000 });
  });

  it('reads the URLs, the secret and the limits', () => {
    const c = loadConfig({
      WEBHOOK_URLS: ` ${url} , https://hooks.example.com/sb?x=1,${url}`,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_MAX_ATTEMPTS: '3',
      WEBHOOK_TIMEOUT_MS: '1500',
    });
    expect(c.webhooks).toEqual({ urls: [url, 'https://hooks.example.com/sb?x=1'], secret: SECRET, maxAttempts: 3, timeoutMs: 1500 });
  });

  it('requires WEBHOOK_SECRET with WEBHOOK_URLS, as a ConfigError naming it', () => {
    expect(() => loadConfig({ WEBHOOK_URLS: url })).toThrow(ConfigError);
    expect(() => loadConfig({ WEBHOOK_URLS: url })).toThrow(/WEBHOOK_SECRET/);
    expect(problemsOf({ WEBHOOK_URLS: url })).toEqual([expect.stringMatching(/^WEBHOOK_SECRET: is required when WEBHOOK_URLS is set/)]);
    expect(problemsOf({ WEBHOOK_URLS: url, WEBHOOK_SECRET: 'short-secret' })).toEqual([
      expect.stringMatching(/^WEBHOOK_SECRET: must be at least 32 characters/),
    ]);
  });

  it('refuses URLs that are not http(s), carry credentials, and out-of-range limits', () => {
    expect(problemsOf({ WEBHOOK_URLS: 'ftp://example.com/x', WEBHOOK_SECRET: SECRET })).toEqual([
      expect.stringMatching(/^WEBHOOK_URLS: must be comma-separated http/),
    ]);
    expect(problemsOf({ WEBHOOK_URLS: 'not a url', WEBHOOK_SECRET: SECRET })).toEqual([expect.stringMatching(/^WEBHOOK_URLS:/)]);
    expect(problemsOf({ WEBHOOK_URLS: 'https://u:p@example.com/x', WEBHOOK_SECRET: SECRET })).toEqual([
      expect.stringMatching(/^WEBHOOK_URLS: must not contain credentials/),
    ]);
    expect(problemsOf({ WEBHOOK_MAX_ATTEMPTS: '0' })).toEqual([expect.stringMatching(/^WEBHOOK_MAX_ATTEMPTS:/)]);
    expect(problemsOf({ WEBHOOK_TIMEOUT_MS: 'soon' })).toEqual([expect.stringMatching(/^WEBHOOK_TIMEOUT_MS:/)]);
  });
});
