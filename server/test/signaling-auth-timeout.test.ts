import { issueToken } from './helpers/app';
import { useSignalingApp } from './helpers/signaling';

/** Sockets that do not authenticate within AUTH_TIMEOUT_MS are told so and disconnected (PostgreSQL). */
describe('signaling: AUTH_TIMEOUT (PostgreSQL)', () => {
  const app = useSignalingApp('postgres', { AUTH_TIMEOUT_MS: '300' });

  it('disconnects a socket that has not authenticated in time, after telling it why', async () => {
    const U = app.client();
    await U.connected();
    const started = Date.now();
    expect(await U.next('signaling-error', 3000)).toEqual({ code: 'AUTH_TIMEOUT', message: expect.any(String) });
    expect(await U.next('disconnect', 3000)).toBe('io server disconnect');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('keeps sockets that authenticated in the handshake or by message, and not a failed auth', async () => {
    const A = app.client({ token: await issueToken(app.t, { user_id: 'a' }) });
    const B = app.client();
    const C = app.client();
    await Promise.all([A.connected(), B.connected(), C.connected()]);
    await B.ok('auth', { token: await issueToken(app.t, { user_id: 'b' }) });
    expect((await C.request('auth', { token: 'garbage' })).error?.code).toBe('TOKEN_MALFORMED');
    expect(await C.next('signaling-error', 3000)).toMatchObject({ code: 'AUTH_TIMEOUT' });
    await C.next('disconnect');
    await A.none('signaling-error', 100);
    await B.none('signaling-error', 0);
    expect(A.socket.connected && B.socket.connected).toBe(true);
  });
});
