import { randomUUID } from 'node:crypto';
import { issueToken, TEST_API_KEY } from './helpers/app';
import { signRs256 } from './helpers/jwt';
import { useSignalingApp } from './helpers/signaling';
import { sleep } from './helpers/wait';

/**
 * Rights come from the room's current state, not only the token's claim
 * (issue 17 item 5): a host demoted in the call loses host rights over REST
 * too, also after leaving and coming back; a removed moderator cannot end the
 * call over REST; a connection's rights end when its token expires, and `auth`
 * with a fresh token of the same user restores them.
 */
describe('authorisation from room state (PostgreSQL)', () => {
  const s = useSignalingApp('postgres');
  const rest = (method: 'GET' | 'POST', url: string, token: string, payload?: object) =>
    s.t.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
  const code = (res: { json(): unknown }) => (res.json() as { error?: { code: string } }).error?.code;

  it('a host demoted to participant loses host rights over REST, and keeps the demotion when rejoining', async () => {
    const room = `demote-${randomUUID().slice(0, 8)}`;
    const a = await s.join({ user_id: 'ann', room, role: 'host' }, room);
    const bToken = await issueToken(s.t, { user_id: 'ben', room, role: 'host' });
    const b = await s.connect(bToken);
    await b.join(room);
    const callId = a.callId;

    // Before: Ben's host token may list recordings.
    expect((await rest('GET', '/recordings', bToken)).statusCode).toBe(200);

    await a.ok('set-role', { call_id: callId, participant_id: b.participantId, role: 'participant' });
    const started = await rest('POST', `/calls/${callId}/recordings`, bToken);
    expect(started.statusCode).toBe(403);
    expect(code(started)).toBe('FORBIDDEN');
    expect((await rest('GET', '/recordings', bToken)).statusCode).toBe(403);
    expect((await rest('POST', `/calls/${callId}/end`, bToken)).statusCode).toBe(403);
    // Reading stays a participant's right.
    expect((await rest('GET', `/calls/${callId}`, bToken)).statusCode).toBe(200);

    // Leaving and rejoining with the same host token does not restore the role.
    await b.ok('leave', { call_id: callId });
    expect((await rest('POST', `/calls/${callId}/end`, bToken)).statusCode).toBe(403);
    const again = await s.connect(bToken);
    const joined = await again.join(room);
    const me = (joined.room_state as { participants: Array<{ participant_id: string; role: string }> }).participants.find(
      (p) => p.participant_id === joined.participant_id,
    );
    expect(me?.role).toBe('participant');
    const refused = await again.request('end-call', { call_id: callId });
    expect(refused.error?.code).toBe('FORBIDDEN');

    // The other host, and the API key, still may.
    const aToken = await issueToken(s.t, { user_id: 'ann', room, role: 'host' });
    expect((await rest('GET', '/recordings', aToken)).statusCode).toBe(200);
    const ended = await s.t.app.inject({ method: 'POST', url: `/calls/${callId}/end`, headers: { 'x-api-key': TEST_API_KEY } });
    expect(ended.statusCode).toBe(200);
  });

  it('a removed moderator cannot end the call or invite over REST', async () => {
    const room = `remove-${randomUUID().slice(0, 8)}`;
    const host = await s.join({ user_id: 'hana', room, role: 'host' }, room);
    const modToken = await issueToken(s.t, { user_id: 'moe', room, role: 'moderator' });
    const mod = await s.connect(modToken);
    await mod.join(room);
    await host.ok('remove-participant', { call_id: host.callId, participant_id: mod.participantId });

    const end = await rest('POST', `/calls/${host.callId}/end`, modToken);
    expect(end.statusCode).toBe(403);
    expect(code(end)).toBe('REMOVED_FROM_CALL');
    const invite = await rest('POST', `/calls/${host.callId}/invitations`, modToken, { user_ids: ['zed'] });
    expect(code(invite)).toBe('REMOVED_FROM_CALL');
    expect((await rest('GET', `/calls/${host.callId}`, modToken)).statusCode).toBe(403);
    // The call goes on.
    const call = await rest('GET', `/calls/${host.callId}`, await issueToken(s.t, { user_id: 'hana', room, role: 'host' }));
    expect((call.json() as { status: string }).status).toBe('active');
  });

  it("a connection's rights end when its token expires; auth with a fresh token restores them", async () => {
    const room = `expiry-${randomUUID().slice(0, 8)}`;
    const now = Math.floor(Date.now() / 1000);
    const shortLived = (sub: string) =>
      signRs256(
        { kid: s.t.keys.kid },
        { sub, room, role: 'host', iat: now, exp: now + 2, jti: randomUUID(), iss: s.t.config.jwt.issuer, aud: s.t.config.jwt.audience },
        s.t.keys.privateKeyPem,
      );
    const eve = await s.connect(shortLived('eve'));
    await eve.join(room);
    const eli = await s.connect(shortLived('eli'));
    await eli.join(room);
    expect((await eve.request('server-time', {})).ok).toBe(true);
    await sleep((now + 2) * 1000 - Date.now() + 300);

    const refused = await eve.request('mute', { call_id: eve.callId, track: 'audio' });
    expect(refused.error?.code).toBe('TOKEN_EXPIRED');
    const endRefused = await eve.request('end-call', { call_id: eve.callId });
    expect(endRefused.error?.code).toBe('TOKEN_EXPIRED');
    expect(eve.socket.connected).toBe(true);
    // Leaving never needs a fresh token.
    expect((await eli.request('leave', { call_id: eli.callId })).ok).toBe(true);

    // Another room's token cannot refresh a joined connection; the same user's token of this room can.
    const other = await eve.request('auth', { token: await issueToken(s.t, { user_id: 'eve', room: `${room}-b`, role: 'host' }) });
    expect(other.error?.code).toBe('ROOM_SCOPE_MISMATCH');
    expect((await eve.request('auth', { token: await issueToken(s.t, { user_id: 'eve', room, role: 'host' }) })).ok).toBe(true);
    expect((await eve.request('mute', { call_id: eve.callId, track: 'audio' })).ok).toBe(true);
  });
});
