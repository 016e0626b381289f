import { randomUUID } from 'node:crypto';
import { issueToken, startTestApp, type TestApp } from './helpers/app';
import { createPostgresDatabase } from './helpers/env';
import { Client, listen } from './helpers/signaling';
import { until } from './helpers/wait';
import { PATIENT, Receiver, SECRET, deliveredRows } from './helpers/webhookReceiver';

/** The webhook outbox survives a restart (PostgreSQL), and the embedded database delivers as soon as a row is written (PGlite). */
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
    const events = await receiver.waitForEvents(callId, 4);
    expect(events.map((e) => e.type)).toEqual(['call.started', 'participant.joined', 'call.ended', 'participant.left']);
    expect(events.map((e) => e.webhookId)).toEqual(rows.map((r) => `msg_${r.eventId}`));
    expect(receiver.requests.every((r) => r.valid)).toBe(true);
    const done = await deliveredRows(second, callId, 4);
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
    await receiver.waitForEvents(callId, 1);
    expect(Date.now() - sent).toBeLessThan(900);

    receiver.failFirst = 2;
    t.events.emit('recording.started', { call_id: callId, room: 'wh-pglite', recording_id: randomUUID(), mode: 'participant', by: null, at });
    t.events.emit('recording.finished', { call_id: callId, room: 'wh-pglite', recording: { size_bytes: 10, file: 'a\u0000b' }, at });
    t.events.emit('call.ended', { call_id: callId, room: 'wh-pglite', at });
    const events = await receiver.waitForEvents(callId, 4);
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
