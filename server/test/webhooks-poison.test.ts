import { randomUUID } from 'node:crypto';
import { admin, issueToken } from './helpers/app';
import { useSignalingApp } from './helpers/signaling';
import { until } from './helpers/wait';
import { FAST, PATIENT, Receiver, SECRET, deliveriesOf } from './helpers/webhookReceiver';

/**
 * Poison input (issue 17 item 4), on a real PostgreSQL: a lone surrogate
 * ("x\ud800y", legal JSON, no UTF-8 form) is refused at every entry point with
 * 400 INVALID_TEXT (REST) or an INVALID_TEXT ack (signaling), so it never reaches
 * jsonb; and a row the database refuses anyway is set aside (`failed`, with its
 * error) while the outbox goes on delivering the others.
 */
const BAD = 'x\ud800y';

describe('webhooks: poison rows (PostgreSQL)', () => {
  const receiver = new Receiver(SECRET);
  beforeAll(() => receiver.start());
  const app = useSignalingApp('postgres', () => ({ WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: SECRET }), { deps: { webhookTuning: FAST } });
  afterAll(() => receiver.stop());

  const post = (url: string, payload: object, headers: Record<string, string> = admin) => app.t.app.inject({ method: 'POST', url, headers, payload });
  const expectInvalidText = (res: { statusCode: number; json(): unknown }, field: RegExp) => {
    expect(res.statusCode).toBe(400);
    const { error } = res.json() as { error: { code: string; message: string } };
    expect(error.code).toBe('INVALID_TEXT');
    expect(error.message).toMatch(field);
    expect(error.message).not.toMatch(/[\ud800-\udfff]/); // the answer itself is well-formed
  };

  it('refuses a lone surrogate over REST: tokens, call metadata (values and keys), inbox messages', async () => {
    expectInvalidText(await post('/auth/token', { user_id: 'ada', room: 'poison', display_name: BAD }), /body\/display_name/);
    expectInvalidText(await post('/auth/token', { user_id: BAD, room: 'poison' }), /body\/user_id/);
    expectInvalidText(await post('/dev/token', { display_name: BAD, room: 'poison' }, {}), /body\/display_name/);
    expectInvalidText(await post('/calls', { room_id: 'poison-meta', metadata: { topic: BAD } }), /body\/metadata\.topic/);
    expectInvalidText(await post('/calls', { room_id: 'poison-meta', metadata: { list: ['ok', { deep: BAD }] } }), /body\/metadata\.list\[1\]\.deep/);
    expectInvalidText(await post('/calls', { room_id: 'poison-meta', metadata: { [`k${BAD}`]: 1 } }), /body\/metadata\.\(a key\)/);
    expectInvalidText(await post('/users/bob/messages', { text: BAD }), /body\/text/);
    // A URL cannot carry one (percent-encoding is UTF-8): a bad byte sequence is a 4xx, never a 500.
    expect((await app.t.app.inject({ method: 'GET', url: '/calls?room_id=%ED%A0%80', headers: admin })).statusCode).toBeLessThan(500);
    // A well-formed astral character (a surrogate pair) is fine.
    expect((await post('/calls', { room_id: 'poison-meta', metadata: { topic: 'ok 🎉' } })).statusCode).toBe(201);
    expect((await post('/users/bob/messages', { text: 'hello 🎉' })).statusCode).toBe(201);
    expect(await app.t.db.prisma.call.count({ where: { roomId: 'poison-meta' } })).toBe(1);
  });

  it('refuses a lone surrogate over signaling: display name, capabilities (values and keys), chat; the socket goes on', async () => {
    const room = 'poison-sock';
    const H = await app.connect(await issueToken(app.t, { user_id: 'hana', room, role: 'host' }));
    const nameAck = await H.request('join', { room, display_name: BAD });
    expect(nameAck.error).toEqual({ code: 'INVALID_TEXT', message: expect.stringMatching(/join payload: display_name/) });
    const capAck = await H.request('join', { room, capabilities: { tags: ['ok', BAD] } });
    expect(capAck.error).toEqual({ code: 'INVALID_TEXT', message: expect.stringMatching(/capabilities\.tags\[1\]/) });
    const keyAck = await H.request('join', { room, capabilities: { [BAD]: true } });
    expect(keyAck.error?.code).toBe('INVALID_TEXT');
    // Nothing was stored; the same socket joins with good text.
    expect(await app.t.db.prisma.participant.count({ where: { userId: 'hana' } })).toBe(0);
    await H.join(room, 'Hana 🎉');
    const chatAck = await H.request('message', { call_id: H.callId, text: BAD });
    expect(chatAck.error?.code).toBe('INVALID_TEXT');
    expect((await H.request('message', { call_id: H.callId, text: 'fine' })).ok).toBe(true);
    const events = await receiver.waitForEvents(H.callId, 2, { atLeast: true });
    expect(events.map((e) => e.type)).toEqual(['call.started', 'participant.joined']);
    expect(events[1]!.data.display_name).toBe('Hana 🎉');
    H.close();
  });

  it('delivers an event that reached the outbox with a lone surrogate, made well-formed, and the next ones', async () => {
    const callId = randomUUID();
    const at = new Date().toISOString();
    const joined = { call_id: callId, room: 'poison-direct', participant_id: randomUUID(), user_id: 'u', role: 'participant', at };
    app.t.events.emit('participant.joined', { ...joined, display_name: BAD });
    app.t.events.emit('call.ended', { call_id: callId, room: 'poison-direct', at });
    const events = await receiver.waitForEvents(callId, 2);
    expect(events.map((e) => e.type)).toEqual(['participant.joined', 'call.ended']);
    expect(events[0]!.data.display_name).toBe('x\ufffdy');
    expect(receiver.requests.filter((r) => r.body.data.call_id === callId).every((r) => r.valid)).toBe(true);
  });

  it('sets aside an event that cannot be serialised (a cycle) without throwing into its emitter', async () => {
    const callId = randomUUID();
    const at = new Date().toISOString();
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    expect(() => app.t.events.emit('recording.finished', { call_id: callId, room: 'poison-cycle', recording: cyclic, at })).not.toThrow();
    app.t.events.emit('call.ended', { call_id: callId, room: 'poison-cycle', at });
    expect((await receiver.waitForEvents(callId, 1)).map((e) => e.type)).toEqual(['call.ended']);
    const rows = await until('both rows', async () => ((await deliveriesOf(app.t, callId)).length === 2 ? deliveriesOf(app.t, callId) : null), PATIENT);
    expect(rows.find((d) => d.event_type === 'recording.finished')).toMatchObject({
      status: 'failed',
      last_error: expect.stringMatching(/^not stored: .*circular/i),
    });
  });

  it('sets aside a row the database refuses (failed, with its error) and goes on delivering the others', async () => {
    // A rule of this test's own database that refuses one room's rows: a stand-in for any row PostgreSQL rejects.
    await app.t.db.prisma.$executeRawUnsafe(
      `ALTER TABLE webhook_deliveries ADD CONSTRAINT no_poison CHECK (payload->'data'->>'room' IS DISTINCT FROM 'poison-room')`,
    );
    try {
      const callId = randomUUID();
      const other = randomUUID();
      const at = new Date().toISOString();
      app.t.events.emit('call.started', { call_id: callId, room: 'fine-room', at });
      app.t.events.emit('recording.started', { call_id: callId, room: 'poison-room', recording_id: randomUUID(), mode: 'participant', by: null, at });
      app.t.events.emit('call.started', { call_id: other, room: 'fine-room', at });
      app.t.events.emit('call.ended', { call_id: callId, room: 'fine-room', at });
      const events = await receiver.waitForEvents(callId, 2);
      expect(events.map((e) => e.type)).toEqual(['call.started', 'call.ended']);
      await receiver.waitForEvents(other, 1);

      const rows = await until(
        'the set-aside row',
        async () => {
          const d = await deliveriesOf(app.t, callId);
          return d.length === 3 && d.every((x) => x.status !== 'pending') && d;
        },
        PATIENT,
      );
      const poison = rows.find((d) => d.event_type === 'recording.started')!;
      expect(poison).toMatchObject({
        status: 'failed',
        attempts: 0,
        delivered_at: null,
        last_error: expect.stringMatching(/^not stored: Raw query failed\. Code: `23514`\. .*"no_poison"/),
      });
      expect(poison.last_error).toContain('"room":"poison-room"'); // the start of what was refused
      const row = await app.t.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: BigInt(poison.id) } });
      expect(row.payload).toEqual({ type: 'recording.started', timestamp: expect.any(String), data: null });
      // Listed as failed for an operator, and nothing is retried in a loop.
      const failed = (await app.t.app.inject({ method: 'GET', url: `/admin/webhooks/deliveries?status=failed&call_id=${callId}`, headers: admin })).json();
      expect(failed.items.map((d: { id: string }) => d.id)).toEqual([poison.id]);
    } finally {
      await app.t.db.prisma.$executeRawUnsafe('ALTER TABLE webhook_deliveries DROP CONSTRAINT no_poison');
    }
    // Later events go on.
    const after = randomUUID();
    app.t.events.emit('call.started', { call_id: after, room: 'poison-room', at: new Date().toISOString() });
    expect((await receiver.waitForEvents(after, 1))[0]!.data.room).toBe('poison-room');
  });
});
