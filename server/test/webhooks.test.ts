import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import pino from 'pino';
import { ConfigError, loadConfig } from '../config/config';
import { WebhookDispatcher, backoffDelay } from '../webhooks/dispatcher';
import { computeSignature, verifyWebhook, webhookHeaders } from '../webhooks/signature';
import { admin, bearer, issueToken, startTestApp, type TestApp } from './helpers/app';
import { problemsOf } from './helpers/config';
import { createPostgresDatabase } from './helpers/env';
import { Client, listen } from './helpers/signaling';
import { sleep, until } from './helpers/wait';

/**
 * Signed webhooks through the durable outbox, end to end: real apps on real
 * databases POST to a real HTTP receiver that checks every signature itself.
 */
const SECRET = 'whsec-test-0123456789abcdef0123456789abcdef';
const FAST = { backoffBaseMs: 50, backoffMaxMs: 400, pollIntervalMs: 100 };

interface Body {
  id: string;
  type: string;
  created_at: string;
  data: { call_id: string; reason?: string; participant_id?: string; user_id?: string; seq?: number; [k: string]: unknown };
}
interface Received {
  webhookId: string;
  timestamp: string;
  valid: boolean;
  status: number;
  raw: string;
  body: Body;
  headers: IncomingMessage['headers'];
}

/**
 * What a receiver does (written here from the documentation, not with the
 * server's own helper): HMAC-SHA256 over "<timestamp>.<raw body>", compared in
 * constant time, timestamp within 5 minutes.
 */
function receiverVerifies(secret: string, headers: Record<string, string | string[] | undefined>, raw: string, nowMs = Date.now()): boolean {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sig = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sig !== 'string') return false;
  if (!/^\d+$/.test(ts) || Math.abs(nowMs / 1000 - Number(ts)) > 300) return false;
  const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(`${ts}.${raw}`).digest('hex')}`);
  return sig.split(' ').some((s) => {
    const given = Buffer.from(s);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** A webhook endpoint on 127.0.0.1 that verifies, records and answers as told. */
class Receiver {
  private server: Server | undefined;
  port = 0;
  readonly requests: Received[] = [];
  /** Answer 503 to this many requests first. */
  failFirst = 0;
  /** Otherwise: a status to answer instead of 200 (null: 200), possibly after a while. */
  answer: (b: Body) => number | null | Promise<number | null> = () => null;
  delayMs = 0;

  constructor(private readonly secret: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async start(port = this.port): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const valid = req.method === 'POST' && receiverVerifies(this.secret, req.headers, raw);
    let body: Body;
    try {
      body = JSON.parse(raw) as Body;
    } catch {
      body = { id: '', type: 'unparseable', created_at: '', data: { call_id: '' } };
    }
    if (this.delayMs) await sleep(Math.random() * this.delayMs);
    let status = 200;
    if (!valid) status = 400;
    else if (this.failFirst > 0) {
      this.failFirst--;
      status = 503;
    } else status = (await this.answer(body)) ?? 200;
    this.requests.push({
      webhookId: String(req.headers['webhook-id']),
      timestamp: String(req.headers['webhook-timestamp']),
      valid,
      status,
      raw,
      body,
      headers: req.headers,
    });
    res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : `nope ${status}`);
  }

  /** Accepted requests, deduplicated by webhook-id (at-least-once), in arrival order. */
  delivered(): Received[] {
    const seen = new Set<string>();
    return this.requests.filter((r) => r.status >= 200 && r.status < 300 && !seen.has(r.webhookId) && seen.add(r.webhookId));
  }

  eventsFor(callId: string): Body[] {
    return this.delivered()
      .filter((r) => r.body.data.call_id === callId)
      .map((r) => r.body);
  }
}

/** Deliveries go through backoffs and restarts: wait longer than until's default. */
const PATIENT = { timeoutMs: 15_000 };

type DeliveryJson = {
  id: string;
  endpoint: string;
  event_id: string;
  event_type: string;
  call_id: string | null;
  status: string;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
  next_attempt_at: string;
};

const silent = pino({ level: 'silent' });

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

describe('webhooks: delivery (PostgreSQL)', () => {
  let t: TestApp;
  let url: string;
  let fullCallId = '';
  const receiver = new Receiver(SECRET);
  const clients: Client[] = [];
  const client = (token: string) => {
    const c = new Client(url, { token });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    await receiver.start();
    t = await startTestApp('postgres', { WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: SECRET, WEBHOOK_MAX_ATTEMPTS: '4' }, { webhookTuning: FAST });
    url = await listen(t);
  });
  afterAll(async () => {
    clients.forEach((c) => c.close());
    await t?.close();
    await receiver.stop();
  });
  beforeEach(() => {
    receiver.failFirst = 0;
    receiver.answer = () => null;
    receiver.delayMs = 0;
  });

  const get = (path: string, headers: Record<string, string> = admin) => t.app.inject({ method: 'GET', url: path, headers });
  const post = (path: string, headers: Record<string, string> = admin) => t.app.inject({ method: 'POST', url: path, headers });
  const deliveriesOf = async (callId: string): Promise<DeliveryJson[]> =>
    (await get(`/admin/webhooks/deliveries?call_id=${callId}&limit=100`)).json().items as DeliveryJson[];

  /** Host and participant join, a mute, the participant leaves, the host ends the call. */
  async function runCall(room: string): Promise<{ callId: string; hostId: string; partId: string }> {
    const H = client(await issueToken(t, { user_id: `${room}-host`, room, role: 'host', display_name: 'Hana' }));
    const P = client(await issueToken(t, { user_id: `${room}-pia`, room }));
    await H.connected();
    await H.join(room);
    await P.connected();
    await P.join(room, 'Pia');
    await H.next('peer-joined');
    await P.ok('mute', { call_id: P.callId, track: 'audio' });
    await H.next('mute-changed');
    await P.ok('leave', { call_id: P.callId });
    await H.next('peer-left');
    await H.ok('end-call', { call_id: H.callId });
    await H.next('call-state-changed');
    return { callId: H.callId, hostId: H.participantId, partId: P.participantId };
  }

  const EXPECTED_TYPES = ['call.started', 'participant.joined', 'participant.joined', 'participant.left', 'call.ended', 'participant.left'];

  it('delivers a whole call through signaling, in order, each signed', async () => {
    const { callId, hostId, partId } = await runCall('wh-full');
    fullCallId = callId;
    const events = await until(
      'six events of the call',
      () => {
        const e = receiver.eventsFor(callId);
        return e.length >= 6 ? e : null;
      },
      PATIENT,
    );
    expect(events.map((e) => e.type)).toEqual(EXPECTED_TYPES);
    expect(events[1]!.data).toMatchObject({
      call_id: callId,
      room: 'wh-full',
      participant_id: hostId,
      user_id: 'wh-full-host',
      display_name: 'Hana',
      role: 'host',
    });
    expect(events[2]!.data).toMatchObject({ participant_id: partId, user_id: 'wh-full-pia', display_name: 'Pia', role: 'participant' });
    expect(events[3]!.data).toMatchObject({ participant_id: partId, reason: 'left' });
    expect(events[4]!.data).toMatchObject({ call_id: callId, room: 'wh-full' });
    expect(events[5]!.data).toMatchObject({ participant_id: hostId, reason: 'call-ended' });
    for (const e of events) {
      expect(e).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        type: expect.any(String),
        created_at: expect.any(String),
        data: expect.objectContaining({ call_id: callId, at: expect.any(String) }),
      });
      expect(Object.keys(e)).toEqual(['id', 'type', 'created_at', 'data']);
    }
    const requests = receiver.requests.filter((r) => r.body.data.call_id === callId);
    // Every request verified, once each, with the documented headers.
    expect(requests).toHaveLength(6);
    for (const r of requests) {
      expect(r.valid).toBe(true);
      expect(r.webhookId).toBe(r.body.id);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['user-agent']).toBe('Switchboard-Webhooks/1');
      expect(r.headers['webhook-signature']).toMatch(/^v1=[0-9a-f]{64}$/);
      expect(Math.abs(Number(r.timestamp) - Date.now() / 1000)).toBeLessThan(60);
    }
    // The outbox rows: delivered at the first attempt.
    const rows = await until(
      'rows marked delivered',
      async () => {
        const d = await deliveriesOf(callId);
        return d.length === 6 && d.every((x) => x.status === 'delivered') ? d : null;
      },
      PATIENT,
    );
    for (const d of rows)
      expect(d).toMatchObject({ endpoint: receiver.url, attempts: 1, last_status: 200, last_error: null, delivered_at: expect.any(String) });
    expect(rows.map((d) => d.event_type).reverse()).toEqual(EXPECTED_TYPES);
  });

  it('retries while the receiver answers 503, keeping the call in order; the retries show in the admin endpoint', async () => {
    receiver.failFirst = 3;
    const { callId } = await runCall('wh-down');
    const events = await until(
      'six events after the outage',
      () => {
        const e = receiver.eventsFor(callId);
        return e.length >= 6 ? e : null;
      },
      PATIENT,
    );
    expect(events.map((e) => e.type)).toEqual(EXPECTED_TYPES);
    // The three refused requests were all the call's first event: the rest waited behind it.
    const refused = receiver.requests.filter((r) => r.status === 503);
    expect(refused.slice(-3).map((r) => r.body.type)).toEqual(['call.started', 'call.started', 'call.started']);
    expect(new Set(refused.slice(-3).map((r) => r.webhookId)).size).toBe(1);
    const rows = await until(
      'rows marked delivered',
      async () => {
        const d = await deliveriesOf(callId);
        return d.length === 6 && d.every((x) => x.status === 'delivered') ? d : null;
      },
      PATIENT,
    );
    const started = rows.find((d) => d.event_type === 'call.started')!;
    expect(started).toMatchObject({ attempts: 4, last_status: 200, last_error: null });
    expect(rows.filter((d) => d.attempts > 1)).toEqual([started]);
  });

  it('delivers other calls while one call waits on its oldest event', async () => {
    const blocked = randomUUID();
    const free = randomUUID();
    // The blocked call's first request hangs until released; its second event waits behind it.
    let release!: () => void;
    const released = new Promise<null>((resolve) => {
      release = () => resolve(null);
    });
    let hanging = 0;
    receiver.answer = (b) => {
      if (b.data.call_id !== blocked) return null;
      hanging++;
      return released;
    };
    const at = new Date().toISOString();
    t.events.emit('call.started', { call_id: blocked, room: 'wh-b', at });
    t.events.emit('call.ended', { call_id: blocked, room: 'wh-b', at });
    t.events.emit('call.started', { call_id: free, room: 'wh-f', at });
    t.events.emit('call.ended', { call_id: free, room: 'wh-f', at });
    await until('the free call', () => receiver.eventsFor(free).length === 2, PATIENT);
    await until('the blocked request', () => hanging === 1, PATIENT);
    expect(receiver.eventsFor(blocked)).toEqual([]);
    release();
    const events = await until(
      'the blocked call',
      () => {
        const e = receiver.eventsFor(blocked);
        return e.length === 2 ? e : null;
      },
      PATIENT,
    );
    expect(events.map((e) => e.type)).toEqual(['call.started', 'call.ended']);
    expect(hanging).toBe(2);
  });

  it('on stop, aborts a request in flight and gives its row back without counting the attempt', async () => {
    const callId = randomUUID();
    let release!: () => void;
    const released = new Promise<null>((resolve) => {
      release = () => resolve(null);
    });
    let hanging = 0;
    receiver.answer = (b) => {
      if (b.data.call_id !== callId || hanging++ > 0) return null;
      return released;
    };
    t.events.emit('call.started', { call_id: callId, room: 'wh-stop', at: new Date().toISOString() });
    await until('the hanging request', () => hanging === 1, PATIENT);
    const dispatcher = t.webhooks.dispatcher!;
    await dispatcher.stop();
    const row = await t.db.prisma.webhookDelivery.findFirstOrThrow({ where: { callId } });
    expect(row).toMatchObject({ status: 'pending', attempts: 0, lastError: 'interrupted: the server shut down during the request' });
    expect(row.nextAttemptAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    release();
    dispatcher.start();
    await until('the event after the restart', () => receiver.eventsFor(callId).length === 1, PATIENT);
    const done = await until(
      'the row delivered',
      async () => {
        const r = await t.db.prisma.webhookDelivery.findFirstOrThrow({ where: { callId } });
        return r.status === 'delivered' ? r : null;
      },
      PATIENT,
    );
    expect(done).toMatchObject({ attempts: 1, lastStatus: 200, lastError: null });
  });

  it('marks a delivery failed after WEBHOOK_MAX_ATTEMPTS, moves the call on, and re-queues it on request', async () => {
    const callId = randomUUID();
    receiver.answer = (b) => (b.data.call_id === callId && b.type === 'call.started' ? 500 : null);
    const at = new Date().toISOString();
    t.events.emit('call.started', { call_id: callId, room: 'wh-fail', at });
    t.events.emit('call.ended', { call_id: callId, room: 'wh-fail', at });
    // The group moves on once the head has failed for good.
    await until('call.ended after the failure', () => receiver.eventsFor(callId).length === 1, PATIENT);
    expect(receiver.eventsFor(callId).map((e) => e.type)).toEqual(['call.ended']);
    const failed = (await deliveriesOf(callId)).find((d) => d.event_type === 'call.started')!;
    expect(failed).toMatchObject({ status: 'failed', attempts: 4, last_status: 500, last_error: 'HTTP 500: nope 500', delivered_at: null });
    expect((await get(`/admin/webhooks/deliveries?status=failed&call_id=${callId}`)).json().items).toHaveLength(1);

    // Only a failed delivery can be retried.
    const ended = (await deliveriesOf(callId)).find((d) => d.event_type === 'call.ended')!;
    const conflictRes = await post(`/admin/webhooks/deliveries/${ended.id}/retry`);
    expect(conflictRes.statusCode).toBe(409);
    expect(conflictRes.json().error.code).toBe('WEBHOOK_DELIVERY_NOT_FAILED');
    const missing = await post('/admin/webhooks/deliveries/999999999/retry');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('WEBHOOK_DELIVERY_NOT_FOUND');
    expect((await post('/admin/webhooks/deliveries/abc/retry')).json().error.code).toBe('VALIDATION_FAILED');

    receiver.answer = () => null;
    const res = await post(`/admin/webhooks/deliveries/${failed.id}/retry`);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ id: failed.id, status: 'pending', attempts: 0, event_id: failed.event_id });
    await until('the retried event', () => receiver.eventsFor(callId).length === 2, PATIENT);
    const again = await until(
      'the retried row delivered',
      async () => {
        const d = (await deliveriesOf(callId)).find((x) => x.id === failed.id)!;
        return d.status === 'delivered' ? d : null;
      },
      PATIENT,
    );
    expect(again).toMatchObject({ attempts: 1, last_status: 200, last_error: null });
    // Same event, same webhook-id: receivers dedupe on it.
    expect(receiver.eventsFor(callId)[1]!.id).toBe(failed.event_id);
  });

  it('claims each row once with several dispatchers on one database, keeping every call in order', async () => {
    receiver.delayMs = 15;
    const others = [1, 2].map(
      () => new WebhookDispatcher({ prisma: t.db.prisma, log: silent, secret: SECRET, maxAttempts: 4, timeoutMs: 5000, concurrency: 4, pollIntervalMs: 10 }),
    );
    others.forEach((d) => d.start());
    try {
      const callIds: string[] = Array.from({ length: 6 }, () => randomUUID());
      const at = new Date().toISOString();
      for (let seq = 0; seq < 8; seq++) {
        for (const call_id of callIds)
          t.events.emit('participant.joined', {
            call_id,
            room: 'wh-many',
            participant_id: randomUUID(),
            user_id: `u${seq}`,
            display_name: null,
            role: 'participant',
            at,
          });
      }
      await until('48 events', () => callIds.every((c) => receiver.eventsFor(c).length === 8), { timeoutMs: 30_000 });
      for (const c of callIds) expect(receiver.eventsFor(c).map((e) => e.data.user_id)).toEqual(['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7']);
      // Nothing sent twice.
      const requests = receiver.requests.filter((r) => callIds.includes(r.body.data.call_id));
      expect(requests).toHaveLength(48);
    } finally {
      await Promise.all(others.map((d) => d.stop()));
    }
  });

  it('prunes delivered rows older than 7 days, and keeps the rest', async () => {
    const callId = randomUUID();
    const mk = (status: string, deliveredDaysAgo: number | null) =>
      t.db.prisma.webhookDelivery.create({
        data: {
          endpoint: 'http://127.0.0.1:1/unused',
          eventId: randomUUID(),
          eventType: 'call.started',
          callId,
          payload: {},
          status,
          attempts: 1,
          createdAt: new Date(Date.now() - 10 * 86_400_000),
          deliveredAt: deliveredDaysAgo === null ? null : new Date(Date.now() - deliveredDaysAgo * 86_400_000),
        },
      });
    const old = await mk('delivered', 8);
    const recent = await mk('delivered', 6);
    const failedOld = await mk('failed', null);
    const d = new WebhookDispatcher({ prisma: t.db.prisma, log: silent, secret: SECRET, maxAttempts: 4, timeoutMs: 5000 });
    expect(await d.prune()).toBeGreaterThanOrEqual(1);
    const left = await t.db.prisma.webhookDelivery.findMany({ where: { callId }, select: { id: true } });
    expect(left.map((r) => r.id).sort()).toEqual([recent.id, failedOld.id].sort());
    expect(left.some((r) => r.id === old.id)).toBe(false);
  });

  it('admin endpoint: API key only, filters, pagination, JSON errors', async () => {
    const noKey = await get('/admin/webhooks/deliveries', {});
    expect(noKey.statusCode).toBe(401);
    expect(noKey.json().error.code).toBe('AUTH_REQUIRED');
    const badKey = await get('/admin/webhooks/deliveries', { 'x-api-key': 'wrong-key-0123456789' });
    expect(badKey.statusCode).toBe(401);
    const userToken = await issueToken(t, { user_id: 'hana', room: 'wh-full', role: 'host' });
    const asUser = await get('/admin/webhooks/deliveries', bearer(userToken));
    expect(asUser.statusCode).toBe(403);
    expect(asUser.json().error.code).toBe('FORBIDDEN');
    expect((await post('/admin/webhooks/deliveries/1/retry', bearer(userToken))).statusCode).toBe(403);
    expect((await post('/admin/webhooks/deliveries/1/retry', {})).statusCode).toBe(401);

    const all = await get('/admin/webhooks/deliveries?limit=100');
    expect(all.statusCode).toBe(200);
    const items = all.json().items as DeliveryJson[];
    expect(items.length).toBeGreaterThan(10);
    const ids = items.map((d) => BigInt(d.id));
    expect([...ids].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0))).toEqual(ids);
    expect(Object.keys(items[0]!).sort()).toEqual(
      [
        'id',
        'endpoint',
        'event_id',
        'event_type',
        'call_id',
        'status',
        'attempts',
        'last_status',
        'last_error',
        'created_at',
        'delivered_at',
        'next_attempt_at',
      ].sort(),
    );

    const ended = (await get('/admin/webhooks/deliveries?event_type=call.ended&status=delivered&limit=100')).json().items as DeliveryJson[];
    expect(ended.length).toBeGreaterThanOrEqual(2);
    expect(ended.every((d) => d.event_type === 'call.ended' && d.status === 'delivered')).toBe(true);

    // Pagination over one call's six rows.
    const callId = fullCallId;
    const p1 = (await get(`/admin/webhooks/deliveries?call_id=${callId}&limit=4`)).json();
    expect(p1.items).toHaveLength(4);
    expect(p1.next_cursor).toEqual(expect.any(String));
    const p2 = (await get(`/admin/webhooks/deliveries?call_id=${callId}&limit=4&cursor=${p1.next_cursor}`)).json();
    expect(p2.items).toHaveLength(2);
    expect(p2.next_cursor).toBeNull();
    expect([...p1.items, ...p2.items].map((d: DeliveryJson) => d.event_type).reverse()).toEqual(EXPECTED_TYPES);

    const badCursor = await get('/admin/webhooks/deliveries?cursor=not-a-cursor');
    expect(badCursor.statusCode).toBe(400);
    expect(badCursor.json().error.code).toBe('INVALID_CURSOR');
    const badStatus = await get('/admin/webhooks/deliveries?status=lost');
    expect(badStatus.statusCode).toBe(400);
    expect(badStatus.json().error.code).toBe('VALIDATION_FAILED');

    // Documented in the OpenAPI description.
    const doc = (await get('/docs/json', {})).json() as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/admin/webhooks/deliveries', '/admin/webhooks/deliveries/{id}/retry']));
  });
});

describe('webhooks: a server restart while the receiver is down (PostgreSQL)', () => {
  const receiver = new Receiver(SECRET);
  let pgdb: Awaited<ReturnType<typeof createPostgresDatabase>>;
  const apps: TestApp[] = [];

  beforeAll(async () => {
    pgdb = await createPostgresDatabase();
    // Reserve a port, then take the receiver down: requests are refused.
    await receiver.start();
    await receiver.stop();
  });
  afterAll(async () => {
    for (const a of apps) await a.close().catch(() => undefined);
    await receiver.stop();
    await pgdb?.drop();
  });

  it('keeps pending deliveries in the database across a restart and sends them when the receiver is back', async () => {
    const env = { DATABASE_URL: pgdb.url, WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: SECRET };
    const tuning = { backoffBaseMs: 100, backoffMaxMs: 500, pollIntervalMs: 100 };
    const first = await startTestApp('postgres', env, { webhookTuning: tuning });
    apps.push(first);
    const room = 'wh-restart';
    const H = new Client(await listen(first), { token: await issueToken(first, { user_id: 'hana', room, role: 'host' }) });
    let callId: string;
    try {
      await H.connected();
      await H.join(room);
      callId = H.callId;
      await H.ok('end-call', { call_id: callId });
      await H.next('call-state-changed');
    } finally {
      H.close();
    }
    // Stored, and tried at least once against the dead receiver.
    await until(
      'a refused attempt',
      async () => {
        const rows = await first.db.prisma.webhookDelivery.findMany({ where: { callId } });
        return rows.length === 4 && rows.some((r) => r.attempts >= 1 && r.lastError !== null);
      },
      PATIENT,
    );
    await first.close();

    // A new app on the same database; the receiver is still down.
    const second = await startTestApp('postgres', env, { webhookTuning: tuning });
    apps.push(second);
    const rows = await second.db.prisma.webhookDelivery.findMany({ where: { callId }, orderBy: { id: 'asc' } });
    expect(rows.map((r) => r.eventType)).toEqual(['call.started', 'participant.joined', 'call.ended', 'participant.left']);
    expect(rows.every((r) => r.status === 'pending')).toBe(true);
    expect(rows[0]!.lastError).toMatch(/ECONNREFUSED|fetch failed|interrupted/);

    await receiver.start(); // the same port
    const events = await until(
      'the call after the restart',
      () => {
        const e = receiver.eventsFor(callId);
        return e.length === 4 ? e : null;
      },
      PATIENT,
    );
    expect(events.map((e) => e.type)).toEqual(['call.started', 'participant.joined', 'call.ended', 'participant.left']);
    expect(events.map((e) => e.id)).toEqual(rows.map((r) => r.eventId));
    expect(receiver.requests.every((r) => r.valid)).toBe(true);
    const done = await until(
      'delivered rows',
      async () => {
        const d = (await second.app.inject({ method: 'GET', url: `/admin/webhooks/deliveries?call_id=${callId}`, headers: admin })).json()
          .items as DeliveryJson[];
        return d.length === 4 && d.every((x) => x.status === 'delivered') ? d : null;
      },
      PATIENT,
    );
    expect(done.find((d) => d.event_type === 'call.started')!.attempts).toBeGreaterThan(1);
  });
});

describe('webhooks: embedded database (PGlite)', () => {
  const receiver = new Receiver(SECRET);
  let t: TestApp;

  beforeAll(async () => {
    await receiver.start();
    // A minute between polls: deliveries that arrive fast were woken by the insert.
    t = await startTestApp('pglite', { WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: SECRET }, { webhookTuning: { pollIntervalMs: 60_000, backoffBaseMs: 50 } });
  });
  afterAll(async () => {
    await t?.close();
    await receiver.stop();
  });

  it('delivers at once after the insert, in order, and retries', async () => {
    const callId = randomUUID();
    const at = new Date().toISOString();
    const sent = Date.now();
    t.events.emit('call.started', { call_id: callId, room: 'wh-pglite', at });
    await until('the first event', () => receiver.eventsFor(callId).length === 1, PATIENT);
    expect(Date.now() - sent).toBeLessThan(900);

    receiver.failFirst = 2;
    t.events.emit('recording.started', { call_id: callId, room: 'wh-pglite', recording_id: randomUUID(), mode: 'participant', by: null, at });
    t.events.emit('recording.finished', { call_id: callId, room: 'wh-pglite', recording: { size_bytes: 10, file: 'a\u0000b' }, at });
    t.events.emit('call.ended', { call_id: callId, room: 'wh-pglite', at });
    const events = await until(
      'four events',
      () => {
        const e = receiver.eventsFor(callId);
        return e.length === 4 ? e : null;
      },
      PATIENT,
    );
    expect(events.map((e) => e.type)).toEqual(['call.started', 'recording.started', 'recording.finished', 'call.ended']);
    expect(events[2]!.data.recording).toEqual({ size_bytes: 10, file: 'ab' });
    const rows = await t.db.prisma.webhookDelivery.findMany({ where: { callId }, orderBy: { id: 'asc' } });
    expect(rows.map((r) => [r.status, r.attempts])).toEqual([
      ['delivered', 1],
      ['delivered', 3],
      ['delivered', 1],
      ['delivered', 1],
    ]);
  });
});
