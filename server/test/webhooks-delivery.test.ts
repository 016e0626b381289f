import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { WebhookDispatcher } from '../webhooks/dispatcher';
import { admin, bearer, issueToken } from './helpers/app';
import { useSignalingApp } from './helpers/signaling';
import { gate, until } from './helpers/wait';
import { FAST, PATIENT, Receiver, SECRET, deliveredRows, deliveriesOf, type DeliveryJson } from './helpers/webhookReceiver';

/**
 * Signed webhooks through the durable outbox, end to end: a real app on
 * PostgreSQL POSTs to a real HTTP receiver that checks every signature itself.
 */
const silent = pino({ level: 'silent' });
const keys = [Buffer.from(SECRET.slice('whsec_'.length), 'base64')];

describe('webhooks: delivery (PostgreSQL)', () => {
  let fullCallId = '';
  const receiver = new Receiver(SECRET);
  beforeAll(() => receiver.start());
  const app = useSignalingApp('postgres', () => ({ WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: SECRET, WEBHOOK_MAX_ATTEMPTS: '4' }), {
    deps: { webhookTuning: FAST },
  });
  afterAll(() => receiver.stop());
  const client = (token: string) => app.client({ token });
  beforeEach(() => {
    receiver.failFirst = 0;
    receiver.answer = () => null;
    receiver.delayMs = 0;
  });

  const get = (path: string, headers: Record<string, string> = admin) => app.t.app.inject({ method: 'GET', url: path, headers });
  const post = (path: string, headers: Record<string, string> = admin) => app.t.app.inject({ method: 'POST', url: path, headers });

  /** Host and participant join, a mute, the participant leaves, the host ends the call. */
  async function runCall(room: string): Promise<{ callId: string; hostId: string; partId: string }> {
    const H = client(await issueToken(app.t, { user_id: `${room}-host`, room, role: 'host', display_name: 'Hana' }));
    const P = client(await issueToken(app.t, { user_id: `${room}-pia`, room }));
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
    const events = await receiver.waitForEvents(callId, 6, { atLeast: true });
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
    const requests = receiver.requests.filter((r) => r.body.data.call_id === callId);
    // Every request verified by standardwebhooks and svix (0 rejections), once each, with the spec's headers and envelope.
    expect(requests).toHaveLength(6);
    for (const r of requests) {
      expect(r.rejectedBy).toEqual({});
      expect(r.valid).toBe(true);
      expect(JSON.parse(r.raw)).toEqual({
        type: expect.any(String),
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        data: expect.objectContaining({ call_id: callId, at: expect.any(String) }),
      });
      expect(Object.keys(JSON.parse(r.raw) as object)).toEqual(['type', 'timestamp', 'data']);
      expect(r.webhookId).toMatch(/^msg_[0-9a-f-]{36}$/);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['user-agent']).toBe('Switchboard-Webhooks/1');
      expect(r.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
      expect(r.timestamp).toMatch(/^\d{10}$/);
      expect(Math.abs(Number(r.timestamp) - Date.now() / 1000)).toBeLessThan(60);
    }
    // The outbox rows: delivered at the first attempt; webhook-id is msg_<event_id>.
    const rows = await deliveredRows(app.t, callId, 6);
    for (const d of rows)
      expect(d).toMatchObject({ endpoint: receiver.url, attempts: 1, last_status: 200, last_error: null, delivered_at: expect.any(String) });
    expect(requests.map((r) => r.webhookId).sort()).toEqual(rows.map((d) => `msg_${d.event_id}`).sort());
    expect(rows.map((d) => d.event_type).reverse()).toEqual(EXPECTED_TYPES);
  });

  it('retries while the receiver answers 503, keeping the call in order; the retries show in the admin endpoint', async () => {
    receiver.failFirst = 3;
    const { callId } = await runCall('wh-down');
    const events = await receiver.waitForEvents(callId, 6, { atLeast: true });
    expect(events.map((e) => e.type)).toEqual(EXPECTED_TYPES);
    // The three refused requests were all the call's first event: the rest waited behind it.
    const refused = receiver.requests.filter((r) => r.status === 503);
    expect(refused.slice(-3).map((r) => r.body.type)).toEqual(['call.started', 'call.started', 'call.started']);
    expect(new Set(refused.slice(-3).map((r) => r.webhookId)).size).toBe(1);
    const rows = await deliveredRows(app.t, callId, 6);
    const started = rows.find((d) => d.event_type === 'call.started')!;
    expect(started).toMatchObject({ attempts: 4, last_status: 200, last_error: null });
    expect(rows.filter((d) => d.attempts > 1)).toEqual([started]);
  });

  it('delivers other calls while one call waits on its oldest event', async () => {
    const blocked = randomUUID();
    const free = randomUUID();
    // The blocked call's first request hangs until released; its second event waits behind it.
    const { released, release } = gate(null); // the receiver's answer, once released: 200
    let hanging = 0;
    receiver.answer = (b) => {
      if (b.data.call_id !== blocked) return null;
      hanging++;
      return released;
    };
    const at = new Date().toISOString();
    app.t.events.emit('call.started', { call_id: blocked, room: 'wh-b', at });
    app.t.events.emit('call.ended', { call_id: blocked, room: 'wh-b', at });
    app.t.events.emit('call.started', { call_id: free, room: 'wh-f', at });
    app.t.events.emit('call.ended', { call_id: free, room: 'wh-f', at });
    await receiver.waitForEvents(free, 2);
    await until('the blocked request', () => hanging === 1, PATIENT);
    expect(receiver.eventsFor(blocked)).toEqual([]);
    release();
    const events = await receiver.waitForEvents(blocked, 2);
    expect(events.map((e) => e.type)).toEqual(['call.started', 'call.ended']);
    expect(hanging).toBe(2);
  });

  it('on stop, aborts a request in flight and gives its row back without counting the attempt', async () => {
    const callId = randomUUID();
    const { released, release } = gate(null); // the receiver's answer, once released: 200
    let hanging = 0;
    receiver.answer = (b) => {
      if (b.data.call_id !== callId || hanging++ > 0) return null;
      return released;
    };
    app.t.events.emit('call.started', { call_id: callId, room: 'wh-stop', at: new Date().toISOString() });
    await until('the hanging request', () => hanging === 1, PATIENT);
    const dispatcher = app.t.webhooks.dispatcher!;
    await dispatcher.stop();
    const row = await app.t.db.prisma.webhookDelivery.findFirstOrThrow({ where: { callId } });
    expect(row).toMatchObject({ status: 'pending', attempts: 0, lastError: 'interrupted: the server shut down during the request' });
    expect(row.nextAttemptAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    release();
    dispatcher.start();
    await receiver.waitForEvents(callId, 1);
    const done = await until(
      'the row delivered',
      async () => {
        const r = await app.t.db.prisma.webhookDelivery.findFirstOrThrow({ where: { callId } });
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
    app.t.events.emit('call.started', { call_id: callId, room: 'wh-fail', at });
    app.t.events.emit('call.ended', { call_id: callId, room: 'wh-fail', at });
    // The group moves on once the head has failed for good.
    await receiver.waitForEvents(callId, 1);
    expect(receiver.eventsFor(callId).map((e) => e.type)).toEqual(['call.ended']);
    const failed = (await deliveriesOf(app.t, callId)).find((d) => d.event_type === 'call.started')!;
    expect(failed).toMatchObject({ status: 'failed', attempts: 4, last_status: 500, last_error: 'HTTP 500: nope 500', delivered_at: null });
    expect((await get(`/admin/webhooks/deliveries?status=failed&call_id=${callId}`)).json().items).toHaveLength(1);

    // Only a failed delivery can be retried.
    const ended = (await deliveriesOf(app.t, callId)).find((d) => d.event_type === 'call.ended')!;
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
    await receiver.waitForEvents(callId, 2);
    const again = await until(
      'the retried row delivered',
      async () => {
        const d = (await deliveriesOf(app.t, callId)).find((x) => x.id === failed.id)!;
        return d.status === 'delivered' ? d : null;
      },
      PATIENT,
    );
    expect(again).toMatchObject({ attempts: 1, last_status: 200, last_error: null });
    // Same event, same webhook-id: receivers dedupe on it.
    expect(receiver.eventsFor(callId)[1]!.webhookId).toBe(`msg_${failed.event_id}`);
  });

  it('claims each row once with several dispatchers on one database, keeping every call in order', async () => {
    receiver.delayMs = 15;
    const others = [1, 2].map(
      () =>
        new WebhookDispatcher({ prisma: app.t.db.prisma, log: silent, keys, maxAttempts: 4, timeoutMs: 5000, concurrencyPerEndpoint: 4, pollIntervalMs: 10 }),
    );
    others.forEach((d) => d.start());
    try {
      const callIds: string[] = Array.from({ length: 6 }, () => randomUUID());
      const at = new Date().toISOString();
      for (let seq = 0; seq < 8; seq++) {
        for (const call_id of callIds)
          app.t.events.emit('participant.joined', {
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
      app.t.db.prisma.webhookDelivery.create({
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
    const d = new WebhookDispatcher({ prisma: app.t.db.prisma, log: silent, keys, maxAttempts: 4, timeoutMs: 5000 });
    expect(await d.prune()).toBeGreaterThanOrEqual(1);
    const left = await app.t.db.prisma.webhookDelivery.findMany({ where: { callId }, select: { id: true } });
    expect(left.map((r) => r.id).sort()).toEqual([recent.id, failedOld.id].sort());
    expect(left.some((r) => r.id === old.id)).toBe(false);
  });

  it('admin endpoint: API key only, filters, pagination, JSON errors', async () => {
    const noKey = await get('/admin/webhooks/deliveries', {});
    expect(noKey.statusCode).toBe(401);
    expect(noKey.json().error.code).toBe('AUTH_REQUIRED');
    const badKey = await get('/admin/webhooks/deliveries', { 'x-api-key': 'wrong-key-0123456789' });
    expect(badKey.statusCode).toBe(401);
    const userToken = await issueToken(app.t, { user_id: 'hana', room: 'wh-full', role: 'host' });
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
