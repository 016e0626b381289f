import { randomUUID } from 'node:crypto';
import { admin, bearer, issueToken } from './helpers/app';
import { isIso, useInvitationsApp, type Invitation } from './helpers/invitations';

/** Invitations, inbox and chat requests refused, over signaling and REST (PostgreSQL). */
describe('invitations: bad input (PostgreSQL)', () => {
  const app = useInvitationsApp();
  const { online, joined, invite, code } = app;

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
        app.t.app.inject({ method: 'POST', url: `/calls/${callId}/invitations`, headers, payload: payload as object });

      const asPart = await post(H.callId, bearer(await issueToken(app.t, { user_id: 'rest-part', room })), { user_ids: ['rest-callee'] });
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

      const asHost = await post(H.callId, bearer(await issueToken(app.t, { user_id: 'rest-host', room, role: 'host' })), { user_ids: ['rest-offline'] });
      expect(asHost.statusCode).toBe(201);
      expect(asHost.json().invitations).toEqual([expect.objectContaining({ user_id: 'rest-offline', status: 'offline' })]);

      const created = await app.t.app.inject({ method: 'POST', url: '/calls', headers: admin, payload: { room_id: 'inv-rest-ended' } });
      expect(created.statusCode).toBe(201);
      const endedId = (created.json() as { id: string }).id;
      expect((await app.t.app.inject({ method: 'POST', url: `/calls/${endedId}/end`, headers: admin })).statusCode).toBe(200);
      const ended = await post(endedId, admin, { user_ids: ['rest-callee'] });
      expect(ended.statusCode).toBe(409);
      expect(ended.json().error.code).toBe('CALL_ALREADY_ENDED');
    });

    it('REST user messages need the API key', async () => {
      const none = await app.t.app.inject({ method: 'POST', url: '/users/msg-x/messages', payload: { text: 'hi' } });
      expect(none.statusCode).toBe(401);
      const asUser = await app.t.app.inject({
        method: 'POST',
        url: '/users/msg-x/messages',
        headers: bearer(await issueToken(app.t, { user_id: 'msg-x' })),
        payload: { text: 'hi' },
      });
      expect([401, 403]).toContain(asUser.statusCode);
      const empty = await app.t.app.inject({ method: 'POST', url: '/users/msg-x/messages', headers: admin, payload: { text: '' } });
      expect(empty.statusCode).toBe(400);
      const U = await online('msg-x');
      await U.none('inbox-message', 500);
    });
  });
});
