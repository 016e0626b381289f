import pg from 'pg';
import { startCluster, type Node, type TestCluster } from './helpers/cluster';
import { frames, killAllPeers, spawnPeer } from './helpers/mediaPeers';
import { Client } from './helpers/signaling';
import { until } from './helpers/wait';

/**
 * Three real server processes on different ports sharing the machine's Redis
 * and one PostgreSQL database: clients on different nodes share rooms, media
 * flows between a publisher and a subscriber on different nodes (the room's
 * media node being at most one of them), a SIGKILLed node's participants are
 * announced as left within 10 s and its media moves, and a SIGTERMed node
 * drains: its media and its sessions move to the others.
 */
jest.setTimeout(120_000);

describe('three nodes sharing Redis and PostgreSQL', () => {
  let c: TestCluster;
  let n: Node[];
  const clients: Client[] = [];
  const client = (node: Node, token: string) => {
    const cl = new Client(node.url, { token });
    clients.push(cl);
    return cl;
  };

  beforeAll(async () => {
    // The SIGKILL test uses the default heartbeat (2 s) and TTL (6 s): the bound is theirs.
    c = await startCluster(3, { RECONNECT_GRACE_SECONDS: '15', DRAIN_TIMEOUT_MS: '15000' });
    n = c.nodes;
  });
  afterAll(async () => {
    for (const cl of clients) cl.close();
    await killAllPeers();
    await c?.close();
  });

  it('registers every node with its address and load', async () => {
    const nodes = await c.redis.hgetall(`${c.prefix}nodes`);
    expect(Object.keys(nodes).sort()).toEqual(['node-0', 'node-1', 'node-2']);
    const info = JSON.parse(nodes['node-1']!) as { address: string; draining: boolean; load: { workers: number } };
    expect(info).toMatchObject({ address: `127.0.0.1:${n[1]!.port}`, draining: false, load: { workers: 1 } });
  });

  it('runs the signaling flow with the participants on three nodes', async () => {
    const room = 'cluster-signaling';
    const A = client(n[0]!, await c.token({ user_id: 'ana', room, role: 'host', display_name: 'Ana' }));
    const B = client(n[1]!, await c.token({ user_id: 'ben', room }));
    const C = client(n[2]!, await c.token({ user_id: 'cy', room }));
    await Promise.all([A, B, C].map((x) => x.connected()));
    await A.join(room);
    await B.join(room);
    expect((await A.next('peer-joined')).participant.participant_id).toBe(B.participantId);
    const joinedC = await C.ok('join', { room });
    C.participantId = joinedC.participant_id as string;
    const state = joinedC.room_state as { call_id: string; participants: Array<{ user_id: string }> };
    expect(state.participants.map((p) => p.user_id).sort()).toEqual(['ana', 'ben', 'cy']);
    expect(state.call_id).toBe(A.callId);
    await A.next('peer-joined');
    await B.next('peer-joined');
    const callId = A.callId;

    // Relay across nodes: offer A(node 0) → B(node 1), answer back, a candidate to C (node 2).
    await A.ok('offer', { call_id: callId, to: B.participantId, sdp: 'v=0 offer' });
    expect(await B.next('offer')).toMatchObject({ from: A.participantId, sdp: 'v=0 offer', call_id: callId });
    await B.ok('answer', { call_id: callId, to: A.participantId, sdp: 'v=0 answer' });
    expect(await A.next('answer')).toMatchObject({ from: B.participantId, sdp: 'v=0 answer' });
    await A.ok('ice-candidate', { call_id: callId, to: C.participantId, candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host' });
    expect((await C.next('ice-candidate')).from).toBe(A.participantId);

    // The host (node 0) mutes Ben (node 1): everyone sees it; Ben cannot lift a moderator's mute.
    await A.ok('mute', { call_id: callId, track: 'audio', participant_id: B.participantId });
    for (const x of [A, B, C]) expect(await x.next('mute-changed')).toMatchObject({ participant_id: B.participantId, muted: true, locked: true });
    expect((await B.request('unmute', { call_id: callId, track: 'audio' })).error?.code).toBe('MUTED_BY_MODERATOR');
    // A participant on node 2 may not mute others, whichever node the target is on.
    expect((await C.request('mute', { call_id: callId, track: 'audio', participant_id: A.participantId })).error?.code).toBe('FORBIDDEN');

    // DTMF from node 2 reaches nodes 0 and 1.
    await C.ok('dtmf', { call_id: callId, tones: '12#' });
    expect((await A.next('dtmf')).tones).toBe('12#');
    expect((await B.next('dtmf')).tones).toBe('12#');

    // The host ends the call: everyone is told; the database has the call ended and every participant left.
    await A.ok('end-call', { call_id: callId });
    for (const x of [A, B, C]) expect(await x.next('call-state-changed')).toMatchObject({ call_id: callId, status: 'ended' });
    const db = new pg.Client({ connectionString: c.databaseUrl });
    await db.connect();
    try {
      const rows = await until(
        'three participant rows, all left',
        async () => {
          const found: Array<{ user_id: string; left_at: Date | null }> = (
            await db.query('SELECT user_id, left_at FROM participants WHERE call_id = $1', [callId])
          ).rows;
          return found.length === 3 && found.every((r) => r.left_at) ? found : null;
        },
        { timeoutMs: 5000, intervalMs: 100 },
      );
      expect(rows.map((r) => r.user_id).sort()).toEqual(['ana', 'ben', 'cy']);
      expect(rows.every((r) => r.left_at !== null)).toBe(true);
      expect((await db.query('SELECT status FROM calls WHERE id = $1', [callId])).rows[0].status).toBe('ended');
    } finally {
      await db.end();
    }
    expect(await c.room(room)).toBeNull();
  });

  it('rings a user connected to another node, and delivers a missed call to one that connects to a third', async () => {
    const room = 'cluster-invite';
    const H = client(n[0]!, await c.token({ user_id: 'hosta', room, role: 'host', display_name: 'Hosta' }));
    const I = client(n[2]!, await c.token({ user_id: 'ivy' }));
    await Promise.all([H.connected(), I.connected()]);
    await H.join(room);
    const ack = await H.ok('invite', { call_id: H.callId, user_ids: ['ivy', 'olga'] });
    expect(ack.invitations).toEqual([
      expect.objectContaining({ user_id: 'ivy', status: 'ringing' }),
      expect.objectContaining({ user_id: 'olga', status: 'offline' }),
    ]);
    const ring = await I.next('incoming-call');
    expect(ring).toMatchObject({ call_id: H.callId, room, from: { user_id: 'hosta' } });
    expect(await I.ok('accept', { invitation_id: ring.invitation_id })).toMatchObject({ call_id: H.callId, room });
    expect(await H.next('invitation-accepted')).toMatchObject({ user_id: 'ivy' });
    const O = client(n[1]!, await c.token({ user_id: 'olga' }));
    const missed = await O.next('missed-call');
    expect(missed).toMatchObject({ call_id: H.callId, room, from: { user_id: 'hosta' } });
    expect(await O.ok('ack-inbox', { ids: [missed.id] })).toMatchObject({ acked: 1 });
    await H.ok('end-call', { call_id: H.callId });
  });

  it('carries media between a publisher and a subscriber on different nodes', async () => {
    const room = 'cluster-media';
    const pub = spawnPeer({ name: 'pub' });
    const sub = spawnPeer({ name: 'sub' });
    const p = await pub.start({ url: n[0]!.url, token: await c.token({ user_id: 'pub', room, role: 'host' }), room, publish: { audio: true, video: true } });
    await sub.start({ url: n[2]!.url, token: await c.token({ user_id: 'sub', room }), room, publish: { audio: false, video: false } });
    const media = (await c.room(room))!.mediaNode;
    // The room's routers live on one node: at least one of the two reaches them through another node.
    expect(['node-0', 'node-1', 'node-2']).toContain(media);
    const s = await sub.waitFor((st) => frames(st, p.participant_id) > 30, 20_000);
    expect(frames(s, p.participant_id)).toBeGreaterThan(30);
    // Leave (rather than drop, which would hold their places for the grace period and delay a later drain).
    await sub.ok('leave', {});
    await pub.ok('leave', {});
    await pub.stop();
    await sub.stop();
  });

  it("announces a SIGKILLed node's participants as left within 10 s, and moves the media it carried", async () => {
    const room = 'cluster-kill';
    const A = client(n[0]!, await c.token({ user_id: 'kay', room, role: 'host' }));
    await A.connected();
    await A.join(room);
    const mediaNode = (await c.room(room))!.mediaNode!;
    const victim = n.find((x) => x.id === mediaNode && x !== n[0]) ?? n[1]!;
    const others = n.filter((x) => x !== victim);
    // One participant on the victim, one on each other node (A is on node 0).
    const V = client(victim, await c.token({ user_id: 'vic', room }));
    await V.connected();
    await V.join(room);
    const third = others.find((x) => x !== n[0]) ?? n[0]!;
    const T = client(third, await c.token({ user_id: 'tom', room }));
    await T.connected();
    await T.join(room);
    await A.next('peer-joined');
    await A.next('peer-joined');

    const killedAt = Date.now();
    victim.child.kill('SIGKILL');
    const left = await A.next('peer-left', 12_000);
    const elapsed = Date.now() - killedAt;
    expect(left).toMatchObject({ participant_id: V.participantId, reason: 'disconnected' });
    expect(elapsed).toBeLessThan(10_000);
    console.log(`peer-left ${elapsed} ms after SIGKILL`);
    expect((await T.next('peer-left', 5000)).participant_id).toBe(V.participantId);
    if (mediaNode === victim.id) {
      // Its media moved to a live node, and the room was told to negotiate again.
      expect(await A.next('media-reset', 5000)).toMatchObject({ reason: 'node-lost' });
      const moved = (await c.room(room))!.mediaNode;
      expect(moved).not.toBe(victim.id);
      expect(others.map((x) => x.id)).toContain(moved);
    }
    // The survivors forgot the dead node.
    await until('the dead node to be forgotten', async () => (await c.redis.hexists(`${c.prefix}nodes`, victim.id)) === 0, {
      timeoutMs: 5000,
      intervalMs: 100,
    });
    expect(await c.redis.hexists(`${c.prefix}nodes`, victim.id)).toBe(0);
    // The call goes on between the survivors.
    await A.ok('dtmf', { call_id: A.callId, tones: '5' });
    expect((await T.next('dtmf')).tones).toBe('5');
    await A.ok('leave', { call_id: A.callId });
    await T.ok('leave', { call_id: T.callId });
    (c as { survivors?: Node[] } & TestCluster).survivors = others;
  });

  it('drains a SIGTERMed node: no new connections, its media and its sessions move, it exits', async () => {
    const survivors = (c as { survivors?: Node[] } & TestCluster).survivors!;
    const staying = n[0]!;
    const draining = survivors.find((x) => x !== staying)!;
    // Everyone leaves the earlier room; then a room whose media lands on the node to drain.
    for (const x of clients) x.close();
    let room = '';
    let W: Client | undefined;
    for (let i = 0; i < 8 && !room; i++) {
      const name = `cluster-drain-${i}`;
      const w = client(staying, await c.token({ user_id: 'wes', room: name, role: 'host' }));
      await w.connected();
      await w.join(name);
      if ((await c.room(name))!.mediaNode === draining.id) {
        room = name;
        W = w;
      }
    }
    expect(room).not.toBe('');
    const watcher = W!;
    const tokenD = await c.token({ user_id: 'dee', room });
    const D = client(draining, tokenD);
    await D.connected();
    await D.join(room);
    await watcher.next('peer-joined');

    draining.child.kill('SIGTERM');
    expect(await D.next('server-draining', 5000)).toEqual({ reconnect: true });
    expect(await D.next('disconnect', 5000)).toBe('transport close');
    // It takes no new connections and reports not ready.
    expect((await fetch(`${draining.url}/ready`)).status).toBe(503);
    const refused = client(draining, tokenD);
    expect((await refused.next('connect_error', 5000)).data?.code).toBe('SERVER_DRAINING');
    // Its media moved to the other node; the room renegotiates.
    expect(await watcher.next('media-reset', 5000)).toMatchObject({ reason: 'node-draining' });
    expect((await c.room(room))!.mediaNode).toBe(staying.id);
    // Dee reconnects (as through the load balancer) to the other node and resumes her place: nobody sees her leave.
    const D2 = client(staying, tokenD);
    await D2.connected();
    const resumed = await D2.ok('join', { room });
    expect(resumed).toMatchObject({ participant_id: D.participantId, resumed: true });
    // With nobody left on it, the draining node exits cleanly, well before DRAIN_TIMEOUT_MS.
    const started = Date.now();
    expect(await draining.exited).toBe(0);
    if (Date.now() - started >= 10_000) throw new Error(`the drain took ${Date.now() - started} ms:\n${draining.out().slice(-6000)}`);
    expect(draining.out()).toContain('"msg":"drained"');
    await watcher.none('peer-left', 300).catch((err: Error) => {
      throw new Error(`${err.message}\n--- draining node's log ---\n${draining.out().slice(-6000)}\n--- staying node's log ---\n${staying.out().slice(-4000)}`);
    });
    // The media works on its new node.
    expect((await D2.ok('create-transport', { direction: 'recv' })).transport_id).toEqual(expect.any(String));
  });
});
