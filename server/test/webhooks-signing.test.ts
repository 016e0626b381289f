import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Webhook } from 'standardwebhooks';
import { ConfigError, loadConfig } from '../config/config';
import { parseWebhookSecret } from '../config/webhookSecret';
import { findIllFormedText } from '../lib/text';
import { backoffDelay } from '../webhooks/dispatcher';
import { toJsonText } from '../webhooks/outbox';
import { computeSignature, generateSecret, signatureHeader, webhookHeaders, webhookId } from '../webhooks/signature';
import { devWebhookSecret } from '../webhooks/webhooks';
import { problemsOf } from './helpers/config';
import { tempDir } from './helpers/env';
import { SECRET, libraryVerdicts } from './helpers/webhookReceiver';

/** Webhook signatures against the Standard Webhooks libraries themselves, the secrets' forms, backoff and configuration. */
const keyOf = (secret: string) => {
  const parsed = parseWebhookSecret(secret);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed.key;
};

describe('webhooks: signing (Standard Webhooks)', () => {
  const body = JSON.stringify({ type: 'call.started', timestamp: new Date().toISOString(), data: { call_id: randomUUID(), name: 'Zoë 🎉' } });
  const msgId = webhookId(randomUUID());

  it('is byte-identical to standardwebhooks Webhook#sign, for whsec_ secrets and legacy raw ones', () => {
    const at = new Date(1_700_000_000_987);
    expect(signatureHeader([keyOf(SECRET)], msgId, 1_700_000_000, body)).toBe(new Webhook(SECRET).sign(msgId, at, body));
    for (let i = 0; i < 20; i++) {
      const secret = generateSecret();
      expect(computeSignature(keyOf(secret), msgId, 1_700_000_000 + i, body)).toBe(
        new Webhook(secret).sign(msgId, new Date((1_700_000_000 + i) * 1000), body).slice(3),
      );
    }
    const legacy = 'plain-legacy-secret-0123456789abcdef';
    expect(signatureHeader([keyOf(legacy)], msgId, 1_700_000_000, body)).toBe(new Webhook(legacy, { format: 'raw' }).sign(msgId, at, body));
  });

  it('sends the spec headers: webhook-id, integer-seconds webhook-timestamp, v1,<base64> per secret', () => {
    const other = generateSecret();
    const h = webhookHeaders([keyOf(SECRET), keyOf(other)], msgId, body, 1_700_000_000_123);
    expect(h).toEqual({
      'content-type': 'application/json',
      'user-agent': 'Switchboard-Webhooks/1',
      'webhook-id': msgId,
      'webhook-timestamp': '1700000000',
      'webhook-signature': `${new Webhook(SECRET).sign(msgId, new Date(1_700_000_000_000), body)} ${new Webhook(other).sign(msgId, new Date(1_700_000_000_000), body)}`,
    });
    expect(h['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}= v1,[A-Za-z0-9+/]{43}=$/);
    expect(webhookId('0b6f3a5e-2f4c-4a8e-9a53-8f1f0f7b4a11')).toBe('msg_0b6f3a5e-2f4c-4a8e-9a53-8f1f0f7b4a11');
  });

  it('verifies with standardwebhooks and svix, with either secret of a rotation; forged, altered and replayed ones are rejected', async () => {
    const old = generateSecret();
    const h = webhookHeaders([keyOf(SECRET), keyOf(old)], msgId, body);
    expect(await libraryVerdicts(SECRET, h, body)).toEqual({});
    expect(await libraryVerdicts(old, h, body)).toEqual({}); // a receiver still on the previous secret
    expect(new Webhook(SECRET).verify(body, h)).toEqual(JSON.parse(body));

    const rejected = { standardwebhooks: expect.any(String), svix: expect.any(String) };
    const forged = webhookHeaders([keyOf(generateSecret())], msgId, body);
    expect(await libraryVerdicts(SECRET, forged, body)).toEqual(rejected);
    expect(await libraryVerdicts(SECRET, h, body.replace('call.started', 'call.ended'))).toEqual(rejected);
    expect(await libraryVerdicts(SECRET, { ...h, 'webhook-id': webhookId(randomUUID()) }, body)).toEqual(rejected);
    const old6min = webhookHeaders([keyOf(SECRET)], msgId, body, Date.now() - 6 * 60_000);
    expect(await libraryVerdicts(SECRET, old6min, body)).toEqual({ standardwebhooks: 'Message timestamp too old', svix: 'Message timestamp too old' });
    // A replayed request cannot be given a fresh timestamp without the secret.
    expect(await libraryVerdicts(SECRET, { ...old6min, 'webhook-timestamp': h['webhook-timestamp']! }, body)).toEqual(rejected);
    const legacy = 'plain-legacy-secret-0123456789abcdef';
    expect(await libraryVerdicts(legacy, webhookHeaders([keyOf(legacy)], msgId, body), body, { format: 'raw' })).toEqual({});
  });

  it('backs off 1 s, 2 s, 4 s … capped at 5 minutes, with at most 25 % jitter', () => {
    const zero = () => 0;
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, 1000, 300_000, zero))).toEqual([1000, 2000, 4000, 8000, 16_000]);
    expect(backoffDelay(9, 1000, 300_000, zero)).toBe(256_000);
    expect(backoffDelay(10, 1000, 300_000, zero)).toBe(300_000);
    expect(backoffDelay(50, 1000, 300_000, () => 0.99)).toBe(300_000);
    expect(backoffDelay(3, 1000, 300_000, () => 0.5)).toBe(4500);
  });

  it('finds ill-formed text in parsed JSON only (never in a stream or a buffer)', () => {
    expect(findIllFormedText({ a: ['ok', { b: 'x\ud800y' }] })).toBe('a[1].b');
    expect(findIllFormedText({ ['k\udfff']: 1 })).toBe('(a key)');
    expect(findIllFormedText({ fine: 'emoji 🎉 and ü', n: 1, x: null })).toBeUndefined();
    expect(findIllFormedText('\udc00 alone')).toBe('(value)');
    const stream = Readable.from(['x\ud800y']);
    expect(findIllFormedText(stream)).toBeUndefined();
    expect(findIllFormedText(Buffer.from('abc'))).toBeUndefined();
    expect(findIllFormedText(Object.assign(Object.create(null) as object, { q: 'x\ud800' }))).toBe('q');
  });

  it('stores JSON that jsonb accepts: lone surrogates become U+FFFD, NULs go, bigints become numbers', () => {
    const text = toJsonText({ name: 'x\ud800y', ['k\udc00']: ['a\u0000b', 'ok 🎉', 10n] });
    expect(JSON.parse(text)).toEqual({ name: 'x\ufffdy', 'k\ufffd': ['ab', 'ok 🎉', 10] });
    expect(text).not.toMatch(/\\ud[89a-f]/i);
  });
});

describe('webhooks: configuration', () => {
  const url = 'http://127.0.0.1:9999/hook';
  const defaults = { urls: [], secrets: [], maxAttempts: 12, timeoutMs: 5000, concurrencyPerEndpoint: 8 };

  it('is off by default, with 12 attempts, a 5 s timeout and 8 requests in flight per endpoint', () => {
    expect(loadConfig({}).webhooks).toEqual(defaults);
  });

  it('reads the URLs, whsec_ secrets (several: rotation), a legacy plain secret and the limits', () => {
    const next = generateSecret();
    const c = loadConfig({
      WEBHOOK_URLS: ` ${url} , https://hooks.example.com/sb?x=1,${url}`,
      WEBHOOK_SECRET: ` ${next}  ${SECRET} `,
      WEBHOOK_MAX_ATTEMPTS: '3',
      WEBHOOK_TIMEOUT_MS: '1500',
      WEBHOOK_CONCURRENCY_PER_ENDPOINT: '2',
    });
    expect(c.webhooks).toEqual({
      urls: [url, 'https://hooks.example.com/sb?x=1'],
      secrets: [
        { key: Buffer.from(next.slice(6), 'base64'), legacy: false },
        { key: Buffer.from('switchboard-test-webhook-key-32b'), legacy: false },
      ],
      maxAttempts: 3,
      timeoutMs: 1500,
      concurrencyPerEndpoint: 2,
    });
    const legacy = 'a-plain-secret-of-32-characters!!';
    expect(loadConfig({ WEBHOOK_URLS: url, WEBHOOK_SECRET: legacy }).webhooks.secrets).toEqual([{ key: Buffer.from(legacy), legacy: true }]);
  });

  it('validates whsec_ secrets: base64 of 24 to 64 bytes', () => {
    for (const n of [24, 32, 64]) expect(problemsOf({ WEBHOOK_SECRET: `whsec_${randomBytes(n).toString('base64')}` })).toEqual([]);
    expect(problemsOf({ WEBHOOK_SECRET: `whsec_${randomBytes(23).toString('base64')}` })).toEqual([
      expect.stringMatching(/^WEBHOOK_SECRET: the part after whsec_ must decode to 24-64 bytes \(it decodes to 23\)/),
    ]);
    expect(problemsOf({ WEBHOOK_SECRET: `whsec_${randomBytes(65).toString('base64')}` })).toEqual([expect.stringMatching(/decode to 24-64 bytes/)]);
    expect(problemsOf({ WEBHOOK_SECRET: 'whsec_not*base64!0123456789abcdef0123456789' })).toEqual([expect.stringMatching(/must be standard base64/)]);
    expect(problemsOf({ WEBHOOK_SECRET: 'short-secret' })).toEqual([expect.stringMatching(/^WEBHOOK_SECRET: must be whsec_<base64 of 24-64 bytes>/)]);
    expect(problemsOf({ WEBHOOK_SECRET: 'a-plain-secret-with-ünïcödé-0123456789' })).toEqual([expect.stringMatching(/printable ASCII/)]);
  });

  it('requires WEBHOOK_SECRET with WEBHOOK_URLS in production only (development generates one)', () => {
    const prod = { NODE_ENV: 'production', JWT_PRIVATE_KEY: 'x', API_KEYS: 'k'.repeat(16), WEBHOOK_URLS: url };
    expect(problemsOf(prod)).toEqual(expect.arrayContaining([expect.stringMatching(/^WEBHOOK_SECRET: is required in production when WEBHOOK_URLS is set/)]));
    expect(problemsOf({ ...prod, WEBHOOK_SECRET: SECRET }).filter((p) => p.startsWith('WEBHOOK'))).toEqual([]);
    expect(() => loadConfig({ WEBHOOK_URLS: url })).not.toThrow();
    expect(loadConfig({ WEBHOOK_URLS: url }).webhooks.secrets).toEqual([]);
  });

  it('generates a whsec_ development secret once into DATA_DIR/keys and keeps it', () => {
    const data = tempDir();
    try {
      const first = devWebhookSecret(data.dir);
      expect(first).toEqual({
        secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
        file: path.join(data.dir, 'keys', 'webhook-secret'),
        generated: true,
      });
      expect(parseWebhookSecret(first.secret)).toEqual({ key: expect.any(Buffer), legacy: false });
      expect(readFileSync(first.file, 'utf8')).toBe(`${first.secret}\n`);
      expect(statSync(first.file).mode & 0o777).toBe(0o600);
      expect(devWebhookSecret(data.dir)).toEqual({ ...first, generated: false });
    } finally {
      data.remove();
    }
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
    expect(problemsOf({ WEBHOOK_CONCURRENCY_PER_ENDPOINT: '0' })).toEqual([expect.stringMatching(/^WEBHOOK_CONCURRENCY_PER_ENDPOINT:/)]);
    expect(() => loadConfig({ WEBHOOK_SECRET: 'short' })).toThrow(ConfigError);
  });
});
