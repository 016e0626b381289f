import { admin, bearer, issueToken } from './helpers/app';
import { inboxOrder, isIso, useInvitationsApp } from './helpers/invitations';

/** The offline inbox (missed calls, messages) and in-call chat with the call history (PostgreSQL). */
describe('invitations: the inbox and chat (PostgreSQL)', () => {
  const app = useInvitationsApp();
  const { online, joined, invite } = app;

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
      const B = app.client({});
      await B.connected();
      await B.ok('auth', { token: await issueToken(app.t, { user_id: 'off-callee' }) });
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
        const res = await app.t.app.inject({
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

      const U = app.client({ token: await issueToken(app.t, { user_id: 'q-callee' }) });
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
      const res = await app.t.app.inject({ method: 'POST', url: '/users/live-user/messages', headers: admin, payload: { text: 'ping' } });
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
      const viewerToken = await issueToken(app.t, { user_id: 'chat-viewer', room });
      const P = app.client({ token: viewerToken });
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

      await app.t.rooms.flushWrites();
      const history = async (headers: Record<string, string>) => app.t.app.inject({ method: 'GET', url: `/calls/${H.callId}/history`, headers });

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
      const other = await history(bearer(await issueToken(app.t, { user_id: 'chat-viewer', room: 'inv-chat-elsewhere' })));
      expect(other.statusCode).toBe(403);
    });
  });
});
