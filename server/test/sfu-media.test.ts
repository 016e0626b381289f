import { issueToken } from './helpers/app';
import { audible, frames, spawnPeer, useMediaApp, type MediaPeer } from './helpers/mediaPeers';
import { sleep } from './helpers/wait';

/**
 * Real media through the real server: three WebRTC peers (mediasoup-client on
 * @roamhq/wrtc, each in its own process) join one room over Socket.IO, publish
 * synthetic audio and video, and decode each other's.
 */
jest.setTimeout(120_000);

describe('SFU media with real WebRTC peers', () => {
  const app = useMediaApp('postgres', { MEDIASOUP_WORKERS: '1' });

  it('three peers exchange audio and video; a moderator mute stops one for the others; leaving closes everything', async () => {
    const room = 'sfu-three';
    const names = ['hana', 'pia', 'quinn'] as const;
    const peers: Record<string, MediaPeer> = {};
    const ids: Record<string, string> = {};
    for (const name of names) {
      peers[name] = spawnPeer({ name });
      const token = await issueToken(app.t, { user_id: name, room, role: name === 'hana' ? 'host' : 'participant' });
      const started = await peers[name]!.start({ url: app.url, token, room, displayName: name, publish: { audio: true, video: true } });
      ids[name] = started.participant_id;
    }
    const [H, P, Q] = [peers.hana!, peers.pia!, peers.quinn!];

    // Everyone decodes the other two's video and hears their audio.
    for (const me of names) {
      const others = names.filter((n) => n !== me);
      await peers[me]!.waitFor((s) => others.every((o) => frames(s, ids[o]!) > 15 && audible(s, ids[o]!) > 20), 20_000);
    }

    // The host mutes Pia's video: her frames stop at Hana and Quinn, Quinn's keep coming.
    const callId = (await H.stats()).call_id!;
    await H.ok('mute', { call_id: callId, track: 'video', participant_id: ids.pia });
    await sleep(600); // frames already in flight
    const [h1, q1] = [await H.stats(), await Q.stats()];
    await sleep(1500);
    const [h2, q2] = [await H.stats(), await Q.stats()];
    expect(frames(h2, ids.pia!) - frames(h1, ids.pia!)).toBeLessThanOrEqual(1);
    expect(frames(q2, ids.pia!) - frames(q1, ids.pia!)).toBeLessThanOrEqual(1);
    expect(frames(h2, ids.quinn!) - frames(h1, ids.quinn!)).toBeGreaterThan(10);
    // Pia cannot unmute a moderator's mute; after the host lifts it, she can, and her video flows again.
    expect((await P.emit('unmute', { call_id: callId, track: 'video' })).error?.code).toBe('MUTED_BY_MODERATOR');
    await H.ok('unmute', { call_id: callId, track: 'video', participant_id: ids.pia });
    await P.ok('unmute', { call_id: callId, track: 'video' });
    const resumedAt = frames(await Q.stats(), ids.pia!);
    await Q.waitFor((s) => frames(s, ids.pia!) > resumedAt + 10, 10_000);
    await H.waitFor((s) => frames(s, ids.pia!) > frames(h2, ids.pia!) + 10, 10_000);

    // Hold pauses media both ways: Pia's video stops at Hana, and Pia stops receiving video.
    await P.ok('hold', { call_id: callId, track: 'video' });
    await sleep(600);
    const [hh1, ph1] = [await H.stats(), await P.stats()];
    await sleep(1500);
    const [hh2, ph2] = [await H.stats(), await P.stats()];
    expect(frames(hh2, ids.pia!) - frames(hh1, ids.pia!)).toBeLessThanOrEqual(1);
    expect(frames(ph2, ids.quinn!) - frames(ph1, ids.quinn!)).toBeLessThanOrEqual(1);
    expect(frames(hh2, ids.quinn!) - frames(hh1, ids.quinn!)).toBeGreaterThan(10);
    await P.ok('unhold', { call_id: callId, track: 'video' });
    await P.waitFor((s) => frames(s, ids.quinn!) > frames(ph2, ids.quinn!) + 10, 10_000);
    await H.waitFor((s) => frames(s, ids.pia!) > frames(hh2, ids.pia!) + 10, 10_000);

    // The server reported transport states and an active speaker.
    expect(H.events.some((e) => e.event === 'transport-state' && (e.payload as { state: string }).state === 'dtls-connected')).toBe(true);
    const speaker = (await H.waitEvent('active-speaker', 10_000)) as { participant_id: string };
    expect(Object.values(ids)).toContain(speaker.participant_id);

    // Quinn leaves: the others are told, and the worker holds nothing of his.
    const quinn = await Q.stats();
    const quinnIds = [
      quinn.transports.sendId!,
      quinn.transports.recvId!,
      ...quinn.producers.map((p) => p.producer_id),
      ...quinn.consumers.map((c) => c.consumer_id),
    ];
    expect(quinnIds.filter(Boolean)).toHaveLength(2 + 2 + 4);
    await Q.ok('leave', {});
    await H.waitFor((s) => s.consumers.filter((c) => c.participant_id === ids.quinn).every((c) => c.closed), 5000);
    await Q.stop();
    const media = app.t.sfu.get(room)!;
    const dump = JSON.stringify(await media.primary.dump());
    const transportDumps = JSON.stringify(await Promise.all([...media.peers.values()].flatMap((p) => [...p.transports.values()].map((tr) => tr.dump()))));
    for (const id of quinnIds) {
      expect(dump).not.toContain(id);
      expect(transportDumps).not.toContain(id);
    }
    expect(media.peers.has(ids.quinn!)).toBe(false);
    // Hana and Pia still see each other.
    const before = frames(await H.stats(), ids.pia!);
    await H.waitFor((s) => frames(s, ids.pia!) > before + 10, 5000);
    await H.stop();
    await P.stop();
  });

  it('accepts simulcast and preferred layers', async () => {
    const room = 'sfu-simulcast';
    const pub = spawnPeer({ name: 'sim' });
    const sub = spawnPeer({ name: 'sub' });
    const p = await pub.start({
      url: app.url,
      token: await issueToken(app.t, { user_id: 'sim', room }),
      room,
      publish: { video: true, width: 640, height: 360, simulcast: true },
    });
    await sub.start({ url: app.url, token: await issueToken(app.t, { user_id: 'sub', room }), room, publish: {} });
    await sub.waitFor((s) => frames(s, p.participant_id) > 10, 15_000);
    const media = app.t.sfu.get(room)!;
    const producer = media.findProducer(p.producers.camera!)!.producer;
    expect(producer.rtpParameters.encodings!.length).toBeGreaterThan(1);
    expect(producer.type).toBe('simulcast');
    const consumer = (await sub.stats()).consumers.find((c) => c.kind === 'video')!;
    await sub.ok('set-preferred-layers', { consumer_id: consumer.consumer_id, spatial_layer: 0, temporal_layer: 0 });
    const before = frames(await sub.stats(), p.participant_id);
    await sub.waitFor((s) => frames(s, p.participant_id) > before + 5, 10_000);
    await pub.stop();
    await sub.stop();
  });

  it('after its worker is killed, the room renegotiates and media flows again', async () => {
    const room = 'sfu-phoenix';
    const A = spawnPeer({ name: 'ann' });
    const B = spawnPeer({ name: 'ben' });
    const a = await A.start({ url: app.url, token: await issueToken(app.t, { user_id: 'ann', room }), room, publish: { audio: true, video: true } });
    const b = await B.start({ url: app.url, token: await issueToken(app.t, { user_id: 'ben', room }), room, publish: { audio: true, video: true } });
    await A.waitFor((s) => frames(s, b.participant_id) > 10, 15_000);
    await B.waitFor((s) => frames(s, a.participant_id) > 10, 15_000);
    process.kill(app.t.workers.workers()[0]!.pid, 'SIGKILL');
    expect(await A.waitEvent('media-reset', 10_000)).toMatchObject({ reason: 'worker-died' });
    await A.waitEvent('peer:recovered', 15_000);
    await B.waitEvent('peer:recovered', 15_000);
    // New consumers after the reset: their frames count from zero again.
    await A.waitFor((s) => s.consumers.some((c) => !c.closed && c.participant_id === b.participant_id && c.kind === 'video' && c.videoFrames > 10), 15_000);
    await B.waitFor((s) => s.consumers.some((c) => !c.closed && c.participant_id === a.participant_id && c.kind === 'video' && c.videoFrames > 10), 15_000);
    await A.stop();
    await B.stop();
  });
});
