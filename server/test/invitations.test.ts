import { randomUUID } from 'node:crypto';
import { admin, bearer, issueToken, startTestApp, type TestApp } from './helpers/app';
import { Client, listen, type AnyAck } from './helpers/signaling';
import { sleep } from './helpers/wait';

/**
 * Invitations, the offline inbox and in-call chat (issue 8), over real sockets on one
 * app (PostgreSQL). INVITATION_TIMEOUT_SECONDS is 2 so that ringing runs out quickly.
 * Every test has its own rooms and user ids: the inbox is per user.
 */
describe('invitations, inbox and chat (PostgreSQL)', () => {
  let t: TestApp;
  let url: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    t = await startTestApp('postgres', { INVITATION_TIMEOUT_SECONDS: '2' });
    url = await listen(t);
  });
  afterAll(async () => {
    clients.forEach((c) => c.close());
    await t.close();
  });

  // ---- helpers ----------------------------------------------------------------

  const client = (opts: ConstructorParameters<typeof Client>[1]) => {
    const c = new Client(url, opts);
    clients.push(c);
    return c;
  };

  /** A device of `userId` online but in no room (a participant token without a room). */
  async function online(userId: string, display_name?: string): Promise<Client> {
    const c = client({ token: await issueToken(t, { user_id: userId, ...(display_name ? { display_name } : {}) }) });
    await c.connected();
    return c;
  }

  /** A connection of `userId` in `room` with `role`, joined. */
  async function joined(room: string, userId: string, role: 'host' | 'moderator' | 'participant' = 'host', display_name?: string): Promise<Client> {
    const c = client({ token: await issueToken(t, { user_id: userId, room, role, ...(display_name ? { display_name } : {}) }) });
    await c.connected();
    await c.join(room, display_name);
    return c;
  }

  type Invitation = { invitation_id: string; user_id: string; status: 'ringing' | 'offline' | 'in-call' };
  type InviteAck = AnyAck & { invitations: Invitation[]; expires_at: string };

  async function invite(host: Client, user_ids: unknown, extra: Record<string, unknown> = {}): Promise<InviteAck> {
    return (await host.ok('invite', { call_id: host.callId, user_ids, ...extra })) as InviteAck;
  }

  const code = async (c: Client, event: string, payload: unknown) => (await c.request(event, payload)).error?.code;

  const isIso = (s: unknown) => typeof s === 'string' && !Number.isNaN(Date.parse(s));

  /** Records the order of inbox events on a client (across event names). */
  function inboxOrder(c: Client): Array<[string, string]> {
    const seen: Array<[string, string]> = [];
    c.socket.onAny((event: string, payload: { id: string }) => {
      if (event === 'missed-call' || event === 'inbox-message') seen.push([event, payload.id]);
    });
    return seen;
  }

  // ---- ringing -------------------------------------------------------------------

  describe('ringing an online user', () => {
    it('rings every device; the first accept wins, every device stops ringing, the host is told, the invitee joins', async () => {
      const room = 'inv-ring';
      const H = await joined(room, 'ring-host', 'host', 'Hana');
      const D1 = await online('ring-callee');
      const D2 = await online('ring-callee');

      const before = Date.now();
      const ack = await invite(H, ['ring-callee']);
      expect(ack.invitations).toEqual([{ invitation_id: expect.any(String), user_id: 'ring-callee', status: 'ringing' }]);
      const invitationId = ack.invitations[0]!.invitation_id;
      expect(invitationId).toMatch(/^[0-9a-f-]{36}$/);
      expect(isIso(ack.expires_at)).toBe(true);
      const expiresAt = Date.parse(ack.expires_at);
      expect(expiresAt).toBeGreaterThanOrEqual(before + 1000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 3000);

      for (const d of [D1, D2]) {
        const ring = await d.next('incoming-call');
        expect(ring).toEqual({
          invitation_id: invitationId,
          call_id: H.callId,
          room,
          from: { user_id: 'ring-host', display_name: 'Hana' },
          expires_at: ack.expires_at,
        });
      }

      const acc = await D1.ok('accept', { invitation_id: invitationId });
      expect(acc).toMatchObject({ ok: true, invitation_id: invitationId, call_id: H.callId, room });

      for (const d of [D1, D2]) {
        expect(await d.next('incoming-call-ended')).toEqual({ invitation_id: invitationId, call_id: H.callId, reason: 'accepted' });
      }
      expect(await H.next('invitation-accepted')).toMatchObject({ invitation_id: invitationId, call_id: H.callId, user_id: 'ring-callee' });

      expect(await code(D2, 'accept', { invitation_id: invitationId })).toBe('INVITATION_NOT_PENDING');
      expect(await code(D2, 'decline', { invitation_id: invitationId })).toBe('INVITATION_NOT_PENDING');

      // The token has no room: it may join the room it was invited to, as a participant.
      const j = await D1.join(room);
      expect(D1.callId).toBe(H.callId);
      const me = (j.room_state as { participants: Array<{ participant_id: string; role: string }> }).participants.find(
        (p) => p.participant_id === D1.participantId,
      );
      expect(me?.role).toBe('participant');
      expect((await H.next('peer-joined')).participant).toMatchObject({ participant_id: D1.participantId, user_id: 'ring-callee' });

      // The host (in the room and the inviter's device) is told once; no more ringing anywhere.
      await H.none('invitation-accepted', 200);
      await D1.none('incoming-call', 0);
      await D2.none('incoming-call', 0);
      await D2.none('incoming-call-ended', 0);
    });

    it('inviting a user again while the invitation rings returns it and does not ring twice', async () => {
      const room = 'inv-again';
      const H = await joined(room, 'again-host');
      const D = await online('again-callee');
      const first = await invite(H, ['again-callee']);
      await D.next('incoming-call');
      const second = await invite(H, ['again-callee']);
      expect(second.invitations).toEqual([{ invitation_id: first.invitations[0]!.invitation_id, user_id: 'again-callee', status: 'ringing' }]);
      await D.none('incoming-call', 300);
      await D.ok('decline', { invitation_id: first.invitations[0]!.invitation_id });
    });

    it('a user already in the call is in-call and is not rung; several users are answered one entry each', async () => {
      const room = 'inv-incall';
      const H = await joined(room, 'incall-host');
      const P = await joined(room, 'incall-member', 'participant');
      await H.next('peer-joined');
      const O = await online('incall-online');
      const ack = await invite(H, ['incall-member', 'incall-online', 'incall-nobody']);
      const byUser = Object.fromEntries(ack.invitations.map((i) => [i.user_id, i.status]));
      expect(byUser).toEqual({ 'incall-member': 'in-call', 'incall-online': 'ringing', 'incall-nobody': 'offline' });
      await O.next('incoming-call');
      await P.none('incoming-call', 300);
      await P.none('missed-call', 0);
      await O.ok('decline', { invitation_id: ack.invitations.find((i) => i.user_id === 'incall-online')!.invitation_id });
    });
  });

  // ---- decline -----------------------------------------------------------------------

  describe('declining', () => {
    it('tells the host with the reason and stops every device ringing', async () => {
      const room = 'inv-decline';
      const H = await joined(room, 'decl-host');
      const D1 = await online('decl-callee');
      const D2 = await online('decl-callee');
      const id = (await invite(H, ['decl-callee'])).invitations[0]!.invitation_id;
      await D1.next('incoming-call');
      await D2.next('incoming-call');

      expect(await D2.ok('decline', { invitation_id: id, reason: 'in a meeting' })).toMatchObject({ ok: true });
      expect(await H.next('invitation-declined')).toMatchObject({ invitation_id: id, call_id: H.callId, user_id: 'decl-callee', reason: 'in a meeting' });
      for (const d of [D1, D2]) expect(await d.next('incoming-call-ended')).toEqual({ invitation_id: id, call_id: H.callId, reason: 'declined' });

      expect(await code(D1, 'accept', { invitation_id: id })).toBe('INVITATION_NOT_PENDING');
      // A declined invitation is not a missed call, even after its timeout.
      await sleep(2300);
      await H.none('invitation-expired', 0);
      await D1.none('missed-call', 0);
    });
  });

  // ---- expiry --------------------------------------------------------------------------

  describe('expiry', () => {
    it('nobody answers: the host gets invitation-expired, the devices stop ringing and get a missed call, acked once', async () => {
      const room = 'inv-expire';
      const H = await joined(room, 'exp-host', 'host', 'Xavier');
      const D1 = await online('exp-callee');
      const D2 = await online('exp-callee');
      const ack = await invite(H, ['exp-callee']);
      const id = ack.invitations[0]!.invitation_id;
      await D1.next('incoming-call');
      await D2.next('incoming-call');

      expect(await H.next('invitation-expired', 6000)).toMatchObject({ invitation_id: id, call_id: H.callId, user_id: 'exp-callee' });
      expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(ack.expires_at) - 250);
      const items = [];
      for (const d of [D1, D2]) {
        expect(await d.next('incoming-call-ended')).toEqual({ invitation_id: id, call_id: H.callId, reason: 'expired' });
        const item = await d.next('missed-call');
        expect(item).toEqual({
          id: expect.any(String),
          invitation_id: id,
          call_id: H.callId,
          room,
          from: { user_id: 'exp-host', display_name: 'Xavier' },
          invited_at: expect.any(String),
        });
        expect(isIso(item.invited_at)).toBe(true);
        items.push(item);
      }
      expect(items[1].id).toBe(items[0].id);

      expect(await code(D1, 'accept', { invitation_id: id })).toBe('INVITATION_NOT_PENDING');
      expect(await D1.ok('ack-inbox', { ids: [items[0].id] })).toMatchObject({ ok: true, acked: 1 });

      const D3 = await online('exp-callee');
      await D3.none('missed-call', 500);
      await H.none('invitation-expired', 0);
    });

    it('timeout_seconds in the payload overrides the default timeout', async () => {
      const room = 'inv-timeout';
      const H = await joined(room, 'tmo-host');
      const D = await online('tmo-callee');
      const before = Date.now();
      const ack = await invite(H, ['tmo-callee'], { timeout_seconds: 5 });
      const expiresAt = Date.parse(ack.expires_at);
      expect(expiresAt).toBeGreaterThanOrEqual(before + 4000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 6000);
      expect((await D.next('incoming-call')).expires_at).toBe(ack.expires_at);
      // Past the 2 s default it still rings.
      await H.none('invitation-expired', 2600);
      await D.none('incoming-call-ended', 0);
      await D.ok('accept', { invitation_id: ack.invitations[0]!.invitation_id });
    });

    it('ending the call stops the ringing with reason call-ended; the invitation can no longer be answered', async () => {
      const room = 'inv-callend';
      const H = await joined(room, 'ce-host');
      const D = await online('ce-callee');
      const id = (await invite(H, ['ce-callee'])).invitations[0]!.invitation_id;
      await D.next('incoming-call');
      await H.ok('end-call', { call_id: H.callId });
      expect(await D.next('incoming-call-ended')).toEqual({ invitation_id: id, call_id: H.callId, reason: 'call-ended' });
      expect(await code(D, 'accept', { invitation_id: id })).toBe('INVITATION_NOT_PENDING');
    });
  });

  // ---- offline and the inbox ----------------------------------------------------------

  describe('offline users and the inbox', () => {
    it('an offline user gets exactly one missed call on connecting, again on every connection until acknowledged', async () => {
      const room = 'inv-offline';
      const H = await joined(room, 'off-host', 'host', 'Olga');
      const ack = await invite(H, ['off-callee']);
      expect(ack.invitations).toEqual([{ invitation_id: expect.any(String), user_id: 'off-callee', status: 'offline' }]);
      const invitationId = ack.invitations[0]!.invitation_id;

      const A = await online('off-callee');
      const item = await A.next('missed-call');
      expect(item).toEqual({
        id: expect.any(String),
        invitation_id: invitationId,
        call_id: H.callId,
        room,
        from: { user_id: 'off-host', display_name: 'Olga' },
        invited_at: expect.any(String),
      });
      await A.none('missed-call', 500);
      await A.none('incoming-call', 0);
      A.close();

      // Not acknowledged: delivered again, the same item (also to a connection that authenticates with `auth`).
      const B = client({});
      await B.connected();
      await B.ok('auth', { token: await issueToken(t, { user_id: 'off-callee' }) });
      expect((await B.next('missed-call')).id).toBe(item.id);
      await B.none('missed-call', 300);

      expect(await B.ok('ack-inbox', { ids: [item.id] })).toMatchObject({ ok: true, acked: 1 });
      B.close();

      const C = await online('off-callee');
      await C.none('missed-call', 500);
    });

    it('messages queued while offline arrive once, oldest first, then never again once acknowledged', async () => {
      const room = 'inv-queue';
      const H = await joined(room, 'q-host', 'host', 'Quentin');
      const inv = await invite(H, ['q-callee']);
      expect(inv.invitations[0]!.status).toBe('offline');

      const ids: string[] = [];
      const texts = ['one', 'two', 'three'];
      for (const [i, text] of texts.entries()) {
        const res = await t.app.inject({
          method: 'POST',
          url: '/users/q-callee/messages',
          headers: admin,
          payload: i === 1 ? { text, call_id: H.callId } : { text },
        });
        expect(res.statusCode).toBe(201);
        const body = res.json() as { id: string };
        expect(typeof body.id).toBe('string');
        ids.push(body.id);
      }
      const priv = await H.ok('message', { call_id: H.callId, text: 'four', to_user_id: 'q-callee' });
      expect(priv).toMatchObject({ ok: true, message_id: expect.any(String), sent_at: expect.any(String) });

      const U = client({ token: await issueToken(t, { user_id: 'q-callee' }) });
      const order = inboxOrder(U);
      await U.connected();
      const missed = await U.next('missed-call');
      const got = [];
      for (let i = 0; i < 4; i++) got.push(await U.next('inbox-message'));
      await U.none('inbox-message', 500);
      await U.none('missed-call', 0);

      expect(got.map((m) => m.text)).toEqual(['one', 'two', 'three', 'four']);
      expect(got.slice(0, 3).map((m) => m.id)).toEqual(ids);
      expect(got[0]).toEqual({ id: ids[0], from: null, call_id: null, text: 'one', sent_at: expect.any(String) });
      expect(got[1]).toMatchObject({ from: null, call_id: H.callId, text: 'two' });
      expect(got[3]).toEqual({
        id: expect.any(String),
        from: { user_id: 'q-host', display_name: 'Quentin' },
        call_id: H.callId,
        text: 'four',
        sent_at: expect.any(String),
      });
      // Oldest first across kinds: the missed call came first.
      expect(order.map(([e]) => e)).toEqual(['missed-call', 'inbox-message', 'inbox-message', 'inbox-message', 'inbox-message']);
      expect(new Set([missed.id, ...got.map((m) => m.id)]).size).toBe(5);

      expect(await U.ok('ack-inbox', { ids: [missed.id, ...got.map((m) => m.id)] })).toMatchObject({ ok: true, acked: 5 });
      U.close();
      const V = await online('q-callee');
      await V.none('inbox-message', 500);
      await V.none('missed-call', 0);
    });

    it('an item for an online user goes out at once to every device', async () => {
      const A = await online('live-user');
      const B = await online('live-user');
      const res = await t.app.inject({ method: 'POST', url: '/users/live-user/messages', headers: admin, payload: { text: 'ping' } });
      expect(res.statusCode).toBe(201);
      const { id } = res.json() as { id: string };
      for (const d of [A, B]) expect(await d.next('inbox-message')).toMatchObject({ id, from: null, text: 'ping' });
      await A.ok('ack-inbox', { ids: [id] });
      const C = await online('live-user');
      await C.none('inbox-message', 500);
    });
  });

  // ---- chat and history -------------------------------------------------------------

  describe('in-call chat and the call history', () => {
    it('broadcasts room messages to everyone (sender included) and lists messages, participants, events and invitations', async () => {
      const room = 'inv-chat';
      const H = await joined(room, 'chat-host', 'host', 'Chen');
      const I = await online('chat-invitee', 'Ivy');
      const Dcl = await online('chat-decliner');
      const ack = await invite(H, ['chat-invitee', 'chat-decliner']);
      const invId = (u: string) => ack.invitations.find((i) => i.user_id === u)!.invitation_id;
      await I.next('incoming-call');
      await Dcl.next('incoming-call');
      await I.ok('accept', { invitation_id: invId('chat-invitee') });
      await Dcl.ok('decline', { invitation_id: invId('chat-decliner'), reason: 'busy' });
      await I.join(room, 'Ivy');
      await H.next('peer-joined');
      const viewerToken = await issueToken(t, { user_id: 'chat-viewer', room });
      const P = client({ token: viewerToken });
      await P.connected();
      await P.join(room, 'Pat');
      await H.next('peer-joined');
      await I.next('peer-joined');

      await H.ok('dtmf', { call_id: H.callId, tones: '12#' });

      const sent = await H.ok('message', { call_id: H.callId, text: 'hello all' });
      expect(sent).toMatchObject({ ok: true, message_id: expect.any(String) });
      expect(isIso(sent.sent_at)).toBe(true);
      for (const c of [H, I, P]) {
        expect(await c.next('message')).toEqual({
          message_id: sent.message_id,
          call_id: H.callId,
          from: H.participantId,
          from_user_id: 'chat-host',
          display_name: 'Chen',
          text: 'hello all',
          sent_at: sent.sent_at,
        });
      }
      const reply = await I.ok('message', { call_id: I.callId, text: 'hi' });
      for (const c of [H, I, P])
        expect(await c.next('message')).toMatchObject({ message_id: reply.message_id, from: I.participantId, from_user_id: 'chat-invitee', text: 'hi' });

      // A private message: to the addressee's inbox, not to the room.
      const priv = await H.ok('message', { call_id: H.callId, text: 'psst', to_user_id: 'chat-invitee' });
      expect(await I.next('inbox-message')).toMatchObject({ from: { user_id: 'chat-host', display_name: 'Chen' }, call_id: H.callId, text: 'psst' });
      await P.none('message', 300);
      await P.none('inbox-message', 0);

      await t.rooms.flushWrites();
      const history = async (headers: Record<string, string>) => t.app.inject({ method: 'GET', url: `/calls/${H.callId}/history`, headers });

      const res = await history(admin);
      expect(res.statusCode).toBe(200);
      const h = res.json();
      expect(h.call).toMatchObject({ id: H.callId });
      expect(h.participants).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ user_id: 'chat-host' }),
          expect.objectContaining({ user_id: 'chat-invitee' }),
          expect.objectContaining({ user_id: 'chat-viewer' }),
        ]),
      );
      const dtmf = h.events.find((e: { type: string }) => e.type === 'dtmf');
      expect(dtmf).toMatchObject({ type: 'dtmf', participant_id: H.participantId, payload: { tones: '12#' } });
      expect(isIso(dtmf.at)).toBe(true);
      expect(h.messages).toEqual([
        expect.objectContaining({
          message_id: sent.message_id,
          from: H.participantId,
          from_user_id: 'chat-host',
          display_name: 'Chen',
          text: 'hello all',
          sent_at: sent.sent_at,
          to_user_id: null,
        }),
        expect.objectContaining({ message_id: reply.message_id, from: I.participantId, from_user_id: 'chat-invitee', text: 'hi', to_user_id: null }),
        expect.objectContaining({ message_id: priv.message_id, from_user_id: 'chat-host', text: 'psst', to_user_id: 'chat-invitee' }),
      ]);
      const invs = Object.fromEntries(h.invitations.map((i: { user_id: string }) => [i.user_id, i]));
      expect(invs['chat-invitee']).toMatchObject({
        invitation_id: invId('chat-invitee'),
        status: 'accepted',
        invited_at: expect.any(String),
        answered_at: expect.any(String),
      });
      expect(invs['chat-decliner']).toMatchObject({ invitation_id: invId('chat-decliner'), status: 'declined', answered_at: expect.any(String) });

      // Any token of the room reads it, without private messages.
      const asViewer = await history(bearer(viewerToken));
      expect(asViewer.statusCode).toBe(200);
      expect(asViewer.json().messages.map((m: { text: string }) => m.text)).toEqual(['hello all', 'hi']);
      expect(asViewer.json().invitations).toHaveLength(2);

      // A token of another room may not.
      const other = await history(bearer(await issueToken(t, { user_id: 'chat-viewer', room: 'inv-chat-elsewhere' })));
      expect(other.statusCode).toBe(403);
    });
  });

  // ---- bad input ---------------------------------------------------------------------

  describe('bad input', () => {
    it('invite: joined hosts and moderators only, valid user lists, not oneself', async () => {
      const room = 'inv-bad-invite';
      const H = await joined(room, 'bi-host');
      const P = await joined(room, 'bi-part', 'participant');
      const M = await joined(room, 'bi-mod', 'moderator');
      const Out = await online('bi-outsider');

      expect(await code(P, 'invite', { call_id: P.callId, user_ids: ['bi-x'] })).toBe('FORBIDDEN');
      expect(await code(Out, 'invite', { call_id: H.callId, user_ids: ['bi-x'] })).toBe('NOT_JOINED');
      expect(await code(H, 'invite', { call_id: randomUUID(), user_ids: ['bi-x'] })).toBe('CALL_ID_MISMATCH');
      expect(await code(H, 'invite', { call_id: H.callId, user_ids: [] })).toBe('VALIDATION_FAILED');
      expect(await code(H, 'invite', { call_id: H.callId, user_ids: Array.from({ length: 51 }, (_, i) => `bi-u${i}`) })).toBe('VALIDATION_FAILED');
      expect(await code(H, 'invite', { call_id: H.callId, user_ids: [42] })).toBe('VALIDATION_FAILED');
      expect(await code(H, 'invite', { call_id: H.callId, user_ids: 'bi-x' })).toBe('VALIDATION_FAILED');
      expect(await code(H, 'invite', { call_id: H.callId, user_ids: ['bi-x'], timeout_seconds: 4 })).toBe('VALIDATION_FAILED');
      expect(await code(H, 'invite', { call_id: H.callId, user_ids: ['bi-x'], timeout_seconds: 601 })).toBe('VALIDATION_FAILED');
      expect(await code(H, 'invite', { call_id: H.callId, user_ids: ['bi-x'], extra: 1 })).toBe('VALIDATION_FAILED');
      expect(await code(H, 'invite', { call_id: H.callId, user_ids: ['bi-host'] })).toBe('CANNOT_TARGET_SELF');

      // Nothing of the refused invites rang or reached an inbox.
      const X = await online('bi-x');
      await X.none('incoming-call', 300);
      await X.none('missed-call', 0);

      // A moderator may invite; 50 ids is the maximum.
      const fifty = Array.from({ length: 50 }, (_, i) => `bi-many-${i}`);
      const ack = await invite(M, fifty);
      expect(ack.invitations).toHaveLength(50);
      expect(new Set(ack.invitations.map((i) => i.user_id))).toEqual(new Set(fifty));
    });

    it("accept and decline: unknown or someone else's invitation is INVITATION_NOT_FOUND", async () => {
      const room = 'inv-bad-accept';
      const H = await joined(room, 'ba-host');
      const X = await online('ba-callee');
      const Y = await online('ba-other');
      const id = (await invite(H, ['ba-callee'])).invitations[0]!.invitation_id;
      await X.next('incoming-call');

      expect(await code(X, 'accept', { invitation_id: randomUUID() })).toBe('INVITATION_NOT_FOUND');
      expect(await code(X, 'decline', { invitation_id: randomUUID() })).toBe('INVITATION_NOT_FOUND');
      expect(await code(Y, 'accept', { invitation_id: id })).toBe('INVITATION_NOT_FOUND');
      expect(await code(Y, 'decline', { invitation_id: id })).toBe('INVITATION_NOT_FOUND');
      expect(await code(H, 'accept', { invitation_id: id })).toBe('INVITATION_NOT_FOUND');
      expect(await code(X, 'accept', {})).toBe('VALIDATION_FAILED');
      expect(await code(X, 'decline', { invitation_id: id, reason: 'x'.repeat(201) })).toBe('VALIDATION_FAILED');
      await X.none('incoming-call-ended', 100);

      // Still ringing: the invitee can answer it.
      await X.ok('accept', { invitation_id: id });
      expect((await X.next('incoming-call-ended')).reason).toBe('accepted');
    });

    it('message: text of 1..2000 chars, joined only, private only to someone in the call or invited', async () => {
      const room = 'inv-bad-message';
      const H = await joined(room, 'bm-host');
      const Out = await online('bm-outsider');

      expect(await code(H, 'message', { call_id: H.callId, text: '' })).toBe('VALIDATION_FAILED');
      expect(await code(H, 'message', { call_id: H.callId, text: 'x'.repeat(2001) })).toBe('VALIDATION_FAILED');
      expect(await code(H, 'message', { call_id: H.callId })).toBe('VALIDATION_FAILED');
      expect(await code(H, 'message', { call_id: randomUUID(), text: 'hi' })).toBe('CALL_ID_MISMATCH');
      expect(await code(H, 'message', { call_id: H.callId, text: 'hi', to_user_id: 'bm-stranger' })).toBe('USER_NOT_IN_CALL');
      expect(await code(Out, 'message', { call_id: H.callId, text: 'hi' })).toBe('NOT_JOINED');
      await H.none('message', 200);
      await Out.none('inbox-message', 0);

      const ok = await H.ok('message', { call_id: H.callId, text: 'x'.repeat(2000) });
      expect(ok.message_id).toEqual(expect.any(String));
      expect((await H.next('message')).text).toHaveLength(2000);
    });

    it('ack-inbox: 1..500 string ids', async () => {
      const U = await online('bk-user');
      expect(await code(U, 'ack-inbox', { ids: [] })).toBe('VALIDATION_FAILED');
      expect(await code(U, 'ack-inbox', {})).toBe('VALIDATION_FAILED');
      expect(await code(U, 'ack-inbox', { ids: Array.from({ length: 501 }, (_, i) => String(i + 1)) })).toBe('VALIDATION_FAILED');
    });

    it('REST invitations: API key or a host token of the room; 409 on an ended call', async () => {
      const room = 'inv-rest';
      const H = await joined(room, 'rest-host', 'host');
      const D = await online('rest-callee');
      const post = (callId: string, headers: Record<string, string>, payload: unknown) =>
        t.app.inject({ method: 'POST', url: `/calls/${callId}/invitations`, headers, payload: payload as object });

      const asPart = await post(H.callId, bearer(await issueToken(t, { user_id: 'rest-part', room })), { user_ids: ['rest-callee'] });
      expect(asPart.statusCode).toBe(403);
      expect(asPart.json().error.code).toBe('FORBIDDEN');
      const noAuth = await post(H.callId, {}, { user_ids: ['rest-callee'] });
      expect(noAuth.statusCode).toBe(401);
      expect((await post(H.callId, admin, { user_ids: [] })).statusCode).toBe(400);
      await D.none('incoming-call', 200);

      const res = await post(H.callId, admin, { user_ids: ['rest-callee'] });
      expect(res.statusCode).toBe(201);
      const body = res.json() as { invitations: Invitation[]; expires_at: string };
      expect(body.invitations).toEqual([{ invitation_id: expect.any(String), user_id: 'rest-callee', status: 'ringing' }]);
      expect(isIso(body.expires_at)).toBe(true);
      expect(await D.next('incoming-call')).toEqual({
        invitation_id: body.invitations[0]!.invitation_id,
        call_id: H.callId,
        room,
        from: null,
        expires_at: body.expires_at,
      });
      await D.ok('decline', { invitation_id: body.invitations[0]!.invitation_id });
      expect(await H.next('invitation-declined')).toMatchObject({ invitation_id: body.invitations[0]!.invitation_id, user_id: 'rest-callee' });

      const asHost = await post(H.callId, bearer(await issueToken(t, { user_id: 'rest-host', room, role: 'host' })), { user_ids: ['rest-offline'] });
      expect(asHost.statusCode).toBe(201);
      expect(asHost.json().invitations).toEqual([expect.objectContaining({ user_id: 'rest-offline', status: 'offline' })]);

      const created = await t.app.inject({ method: 'POST', url: '/calls', headers: admin, payload: { room_id: 'inv-rest-ended' } });
      expect(created.statusCode).toBe(201);
      const endedId = (created.json() as { id: string }).id;
      expect((await t.app.inject({ method: 'POST', url: `/calls/${endedId}/end`, headers: admin })).statusCode).toBe(200);
      const ended = await post(endedId, admin, { user_ids: ['rest-callee'] });
      expect(ended.statusCode).toBe(409);
      expect(ended.json().error.code).toBe('CALL_ALREADY_ENDED');
    });

    it('REST user messages need the API key', async () => {
      const none = await t.app.inject({ method: 'POST', url: '/users/msg-x/messages', payload: { text: 'hi' } });
      expect(none.statusCode).toBe(401);
      const asUser = await t.app.inject({
        method: 'POST',
        url: '/users/msg-x/messages',
        headers: bearer(await issueToken(t, { user_id: 'msg-x' })),
        payload: { text: 'hi' },
      });
      expect([401, 403]).toContain(asUser.statusCode);
      const empty = await t.app.inject({ method: 'POST', url: '/users/msg-x/messages', headers: admin, payload: { text: '' } });
      expect(empty.statusCode).toBe(400);
      const U = await online('msg-x');
      await U.none('inbox-message', 500);
    });
  });
});
