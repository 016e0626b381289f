import { useInvitationsApp, isIso } from './helpers/invitations';
import { sleep } from './helpers/wait';

/** Ringing an invited user's devices, and how it stops: accepted, declined, expired, or the call ended (PostgreSQL). */
describe('invitations: ringing (PostgreSQL)', () => {
  const app = useInvitationsApp();
  const { online, joined, invite, code } = app;

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
});
