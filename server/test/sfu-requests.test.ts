import { issueToken } from './helpers/app';
import { useSignalingApp, type Client } from './helpers/signaling';
import { OPUS_RTP, VP8_RTP } from './helpers/rtp';

/**
 * SFU media requests over real sockets and a real mediasoup worker, without a
 * WebRTC peer: producers are created from hand-written RTP parameters on a
 * send transport (mediasoup accepts them before DTLS), which is enough to test
 * the control plane's rules. Media flow is tested with real peers in sfu-media.test.ts.
 */

describe('SFU media requests', () => {
  const app = useSignalingApp('pglite', { TURN_URLS: 'turn:127.0.0.1:3478', TURN_SECRET: 'coturn-static-secret' });
  const connect = async (user: string, room: string, extra: Record<string, unknown> = {}) =>
    app.connect(await issueToken(app.t, { user_id: user, room, ...extra } as never));

  it('runs the control plane: capabilities, transports, produce, consume, pause by mute, close, cleanup on leave', async () => {
    const room = 'sfu-control';
    const A = await connect('alice', room, { role: 'host' });
    const B = await connect('bob', room);
    const aj = await A.join(room);
    const state = aj.room_state as { mode: string; producers: unknown[]; ice_servers: Array<{ urls: unknown; username?: string; credential?: string }> };
    expect(state.mode).toBe('sfu');
    expect(state.producers).toEqual([]);
    // Time-limited TURN credentials (coturn REST scheme) for this user.
    const turn = state.ice_servers.find((s) => JSON.stringify(s.urls).includes('turn:'))!;
    expect(turn.username).toMatch(/^\d+:alice$/);
    expect(Number(turn.username!.split(':')[0])).toBeGreaterThan(Date.now() / 1000);
    expect(turn.credential).toMatch(/^[A-Za-z0-9+/]+=*$/);
    await B.join(room);
    await A.next('peer-joined');

    const caps = (await A.ok('get-router-rtp-capabilities', {})).rtp_capabilities as { codecs: Array<{ mimeType: string }> };
    expect(caps.codecs.map((c) => c.mimeType)).toEqual(expect.arrayContaining(['audio/opus', 'video/VP8', 'video/VP9', 'video/H264', 'video/rtx']));

    const send = await A.ok('create-transport', { direction: 'send' });
    expect(send).toMatchObject({ transport_id: expect.any(String), ice_parameters: expect.any(Object), dtls_parameters: expect.any(Object) });
    const candidates = send.ice_candidates as Array<{ ip?: string; address?: string; protocol: string; port: number }>;
    expect(candidates.map((c) => c.protocol).sort()).toEqual(['tcp', 'udp']);
    expect(candidates.every((c) => (c.address ?? c.ip) === '127.0.0.1' && c.port === Number(app.t.config.mediasoup.webRtcBasePort))).toBe(true);

    const audio = await A.ok('produce', { transport_id: send.transport_id, kind: 'audio', rtp_parameters: OPUS_RTP(1111), source: 'mic' });
    expect(await B.next('new-producer')).toEqual({
      producer_id: audio.producer_id,
      participant_id: A.participantId,
      kind: 'audio',
      source: 'mic',
      paused: false,
    });
    await A.none('new-producer', 0);
    expect((await A.request('produce', { transport_id: send.transport_id, kind: 'audio', rtp_parameters: OPUS_RTP(2222), source: 'mic' })).error?.code).toBe(
      'PRODUCER_EXISTS',
    );
    const video = await A.ok('produce', { transport_id: send.transport_id, kind: 'video', rtp_parameters: VP8_RTP(3333), source: 'camera' });
    await B.next('new-producer');

    // A late joiner sees the producers in room_state.
    const C = await connect('carol', room);
    const cj = await C.join(room);
    expect((cj.room_state as { producers: Array<{ producer_id: string }> }).producers.map((p) => p.producer_id).sort()).toEqual(
      [audio.producer_id, video.producer_id].sort(),
    );

    const recv = await B.ok('create-transport', { direction: 'recv' });
    const consumed = await B.ok('consume', { transport_id: recv.transport_id, producer_id: video.producer_id, rtp_capabilities: caps });
    expect(consumed).toMatchObject({
      producer_id: video.producer_id,
      participant_id: A.participantId,
      kind: 'video',
      source: 'camera',
      paused: true,
      producer_paused: false,
    });
    await B.ok('resume-consumer', { consumer_id: consumed.consumer_id });

    // Mute pauses the producer for everyone, and the mute state matches the producer state.
    await A.ok('mute', { call_id: A.callId, track: 'video' });
    expect(await B.next('producer-paused')).toEqual({ producer_id: video.producer_id, participant_id: A.participantId });
    await A.ok('resume-producer', { producer_id: video.producer_id });
    expect(await B.next('producer-resumed')).toEqual({ producer_id: video.producer_id, participant_id: A.participantId });
    const mutes = [await B.next('mute-changed'), await B.next('mute-changed')];
    expect(mutes.map((m) => m.muted)).toEqual([true, false]);
    // A participant may not pause someone else's producer.
    expect((await B.request('pause-producer', { producer_id: audio.producer_id })).error?.code).toBe('FORBIDDEN');

    // Closing a producer closes its consumers and tells the room.
    await A.ok('close-producer', { producer_id: video.producer_id });
    expect(await B.next('producer-closed')).toEqual({ producer_id: video.producer_id, participant_id: A.participantId });
    expect(await B.next('consumer-closed')).toEqual({ consumer_id: consumed.consumer_id, producer_id: video.producer_id });

    // Leaving closes everything of that participant in the worker.
    const worker = app.t.workers.workers()[0]!;
    const before = JSON.stringify(await worker.dump());
    expect(before).toContain(audio.producer_id);
    await A.ok('leave', {});
    expect(await B.next('producer-closed')).toEqual({ producer_id: audio.producer_id, participant_id: A.participantId });
    const media = app.t.sfu.get(room)!;
    expect(media.peers.has(A.participantId)).toBe(false);
    const after = JSON.stringify(await media.primary.dump());
    expect(after).not.toContain(send.transport_id);
    expect(after).not.toContain(audio.producer_id);
    expect(after).toContain(recv.transport_id); // B's own transport stays
  });

  it('answers bad media requests with codes', async () => {
    const room = 'sfu-bad';
    const H = await connect('host', room, { role: 'host' });
    const P = await connect('part', room);
    const V = await connect('viewer', room, { can_publish: false });
    await H.join(room);
    await P.join(room);
    await V.join(room);
    const caps = (await H.ok('get-router-rtp-capabilities', {})).rtp_capabilities;
    const hs = await H.ok('create-transport', { direction: 'send' });
    const hp = await H.ok('produce', { transport_id: hs.transport_id, kind: 'audio', rtp_parameters: OPUS_RTP(4444), source: 'mic' });
    const ps = await P.ok('create-transport', { direction: 'send' });
    const pr = await P.ok('create-transport', { direction: 'recv' });
    const vs = await V.ok('create-transport', { direction: 'send' });

    const cases: Array<[Client, string, Record<string, unknown>, string]> = [
      [P, 'connect-transport', { transport_id: 'nope', dtls_parameters: { fingerprints: [] } }, 'TRANSPORT_NOT_FOUND'],
      [P, 'connect-transport', { transport_id: hs.transport_id, dtls_parameters: { fingerprints: [] } }, 'TRANSPORT_NOT_FOUND'],
      [P, 'connect-transport', { transport_id: ps.transport_id, dtls_parameters: { role: 'nonsense' } }, 'MEDIA_REQUEST_FAILED'],
      [P, 'restart-ice', { transport_id: 'nope' }, 'TRANSPORT_NOT_FOUND'],
      [P, 'consume', { transport_id: pr.transport_id, producer_id: 'nope', rtp_capabilities: caps as object }, 'PRODUCER_NOT_FOUND'],
      [
        P,
        'consume',
        {
          transport_id: pr.transport_id,
          producer_id: hp.producer_id,
          rtp_capabilities: { codecs: [{ kind: 'video', mimeType: 'video/H264', clockRate: 90000, preferredPayloadType: 100 }] },
        },
        'INCOMPATIBLE_CAPABILITIES',
      ],
      [P, 'consume', { transport_id: ps.transport_id, producer_id: hp.producer_id, rtp_capabilities: caps as object }, 'MEDIA_REQUEST_FAILED'],
      [P, 'resume-consumer', { consumer_id: 'nope' }, 'CONSUMER_NOT_FOUND'],
      [P, 'set-preferred-layers', { consumer_id: 'nope', spatial_layer: 1 }, 'CONSUMER_NOT_FOUND'],
      [P, 'pause-producer', { producer_id: hp.producer_id }, 'FORBIDDEN'],
      [P, 'resume-producer', { producer_id: 'nope' }, 'PRODUCER_NOT_FOUND'],
      [P, 'close-producer', { producer_id: hp.producer_id }, 'PRODUCER_NOT_FOUND'],
      [P, 'produce', { transport_id: pr.transport_id, kind: 'audio', rtp_parameters: OPUS_RTP(5555), source: 'mic' }, 'MEDIA_REQUEST_FAILED'],
      [P, 'produce', { transport_id: ps.transport_id, kind: 'audio', rtp_parameters: OPUS_RTP(5556), source: 'camera' }, 'MEDIA_REQUEST_FAILED'],
      [P, 'produce', { transport_id: ps.transport_id, kind: 'audio', rtp_parameters: { codecs: 'bad' }, source: 'mic' }, 'MEDIA_REQUEST_FAILED'],
      [P, 'produce', { transport_id: ps.transport_id, kind: 'audio', source: 'mic' }, 'VALIDATION_FAILED'],
      [V, 'produce', { transport_id: vs.transport_id, kind: 'audio', rtp_parameters: OPUS_RTP(6666), source: 'mic' }, 'PUBLISH_NOT_ALLOWED'],
      [P, 'create-transport', { direction: 'sideways' }, 'VALIDATION_FAILED'],
    ];
    for (const [c, event, payload, code] of cases) {
      const res = await c.request(event, payload);
      expect({ event, payload, code: res.error?.code }).toEqual({ event, payload, code });
    }
    // A participant may not consume their own producer.
    const own = await P.ok('produce', { transport_id: ps.transport_id, kind: 'audio', rtp_parameters: OPUS_RTP(7777), source: 'mic' });
    expect((await P.request('consume', { transport_id: pr.transport_id, producer_id: own.producer_id, rtp_capabilities: caps })).error?.code).toBe(
      'CANNOT_TARGET_SELF',
    );
    // The host's moderator mute (pause-producer on another's producer) is allowed and locks.
    await H.ok('pause-producer', { producer_id: own.producer_id });
    expect((await P.request('resume-producer', { producer_id: own.producer_id })).error?.code).toBe('MUTED_BY_MODERATOR');
    // Transport limit.
    await P.ok('create-transport', { direction: 'recv' });
    await P.ok('create-transport', { direction: 'recv' });
    expect((await P.request('create-transport', { direction: 'recv' })).error?.code).toBe('TOO_MANY_TRANSPORTS');
  });

  it('keeps p2p rooms out of the SFU', async () => {
    const room = 'p2p-room';
    const A = await connect('a', room);
    const j = await A.ok('join', { room, mode: 'p2p' });
    expect((j.room_state as { mode: string }).mode).toBe('p2p');
    expect((await A.request('create-transport', { direction: 'send' })).error?.code).toBe('MODE_MISMATCH');
    expect((await A.request('get-router-rtp-capabilities', {})).error?.code).toBe('MODE_MISMATCH');
    expect(app.t.sfu.get(room)).toBeUndefined();
    const call = await app.t.db.prisma.call.findUniqueOrThrow({ where: { id: (j.room_state as { call_id: string }).call_id } });
    expect(call.mode).toBe('p2p');
  });
});
