import { issueToken, TEST_API_KEY } from './helpers/app';
import { OPUS_RTP } from './helpers/rtp';
import { useSignalingApp } from './helpers/signaling';
import { until } from './helpers/wait';

/**
 * Limits on what one user can create (issue 17 item 8): connections per client
 * address, rooms a user opens by joining, consumers per participant. Each is
 * refused with its code, and the limit frees up again when the thing goes away.
 */
describe('quotas', () => {
  const app = useSignalingApp('pglite', { MAX_CONNECTIONS_PER_IP: '4', MAX_ROOMS_PER_USER: '2', MAX_CONSUMERS_PER_PARTICIPANT: '2' });
  const connect = async (user: string, room?: string, role?: string) =>
    app.connect(await issueToken(app.t, { user_id: user, ...(room ? { room } : {}), ...(role ? { role } : {}) }));
  const admin = { 'x-api-key': TEST_API_KEY };

  it('refuses a client address past MAX_CONNECTIONS_PER_IP, and takes it again once one closes', async () => {
    const token = await issueToken(app.t, { user_id: 'many' });
    const open = await Promise.all([1, 2, 3, 4].map(() => app.connect(token)));
    const fifth = app.client({ token });
    await expect(fifth.connected()).rejects.toMatchObject({ data: { code: 'TOO_MANY_CONNECTIONS' } });
    // The others are unaffected.
    expect((await open[0]!.request('server-time', {})).ok).toBe(true);
    open[0]!.close();
    const again = await until('a connection from the address again', async () => {
      const c = app.client({ token });
      try {
        await c.connected();
        return c;
      } catch {
        c.close();
        return undefined;
      }
    });
    expect(again.socket.connected).toBe(true);
    open.forEach((c) => c.close());
    again.close();
  });

  it('lets a user open MAX_ROOMS_PER_USER rooms by joining, then only join calls in progress', async () => {
    const a = await connect('opener');
    const b = await connect('opener');
    await a.join('quota-a');
    await b.join('quota-b');
    const c = await connect('opener');
    const refused = await c.request('join', { room: 'quota-c' });
    expect(refused.error?.code).toBe('ROOM_QUOTA_EXCEEDED');
    // A call the backend created is not the user's to count: it may be joined.
    const created = await app.t.app.inject({ method: 'POST', url: '/calls', headers: admin, payload: { room_id: 'quota-rest' } });
    expect(created.statusCode).toBe(201);
    await c.join('quota-rest');

    // Once a room the user opened has ended, it may open another.
    const ended = await app.t.app.inject({ method: 'POST', url: `/calls/${a.callId}/end`, headers: admin });
    expect(ended.statusCode).toBe(200);
    const d = await connect('opener');
    await until('a new room after one ended', async () => ((await d.request('join', { room: 'quota-d' })).ok ? true : undefined));
    [a, b, c, d].forEach((x) => x.close());
  });

  it('refuses a consumer past MAX_CONSUMERS_PER_PARTICIPANT', async () => {
    const room = 'quota-media';
    const host = await connect('pub', room, 'host');
    const viewer = await connect('sub', room);
    await host.join(room);
    await viewer.join(room);
    const caps = (await viewer.ok('get-router-rtp-capabilities', {})).rtp_capabilities as object;
    const send = await host.ok('create-transport', { direction: 'send' });
    const mic = await host.ok('produce', { transport_id: send.transport_id, kind: 'audio', rtp_parameters: OPUS_RTP(7001), source: 'mic' });
    const recv = await viewer.ok('create-transport', { direction: 'recv' });
    const consume = () => viewer.request('consume', { transport_id: recv.transport_id, producer_id: mic.producer_id, rtp_capabilities: caps });
    expect((await consume()).ok).toBe(true);
    expect((await consume()).ok).toBe(true);
    expect((await consume()).error?.code).toBe('TOO_MANY_CONSUMERS');
    // The publisher and the room are unaffected.
    expect((await host.request('mute', { call_id: host.callId, track: 'audio' })).ok).toBe(true);
  });
});
