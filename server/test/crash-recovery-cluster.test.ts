import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { CLUSTER_API_KEY, startCluster, type TestCluster } from './helpers/cluster';
import {
  api,
  expectRecovered,
  keyFileIn,
  logLine,
  recordingUnderWay,
  serve,
  twoPublishers,
  writersUnder,
  API_KEY,
  type RecordingJson,
  type Server,
} from './helpers/crash';
import { createPostgresDatabase, tempDir } from './helpers/env';
import { killAllPeers } from './helpers/mediaPeers';
import { requireBuiltMain } from './helpers/process';
import { deleteKeysWith, REDIS_URL } from './helpers/redis';
import { Client } from './helpers/signaling';
import { until } from './helpers/wait';

/**
 * Crash recovery in a cluster (real server processes sharing Redis and
 * PostgreSQL, real peers, real recordings): the survivor that reaps a
 * SIGKILLed media node repairs the files it was recording while the call goes
 * on; a node restarted with the same NODE_ID repairs its previous life's.
 */
jest.setTimeout(180_000);
beforeAll(() => requireBuiltMain());
afterAll(() => killAllPeers());

describe('a lost media node', () => {
  let c: TestCluster | undefined;
  const shared = tempDir('sb-rec-');
  afterAll(async () => {
    await killAllPeers();
    await c?.close();
    for (const pid of writersUnder(shared.dir)) process.kill(pid, 'SIGKILL');
    shared.remove();
  });

  it('the survivor that reaps it repairs the files it was recording, and the call goes on', async () => {
    // One RECORDINGS_DIR for both nodes, as deployments share it; a short TTL to be quick.
    c = await startCluster(2, { RECORDINGS_DIR: shared.dir, NODE_HEARTBEAT_MS: '500', NODE_TTL_MS: '1500', LOG_LEVEL: 'info' });
    const cl = c;
    const [survivor, victim] = cl.nodes as [TestCluster['nodes'][number], TestCluster['nodes'][number]];
    // A room whose media lands on the node to kill, its participants signaling through the other.
    let room = '';
    for (let i = 0; i < 10 && !room; i++) {
      const name = `crash-node-${i}`;
      const placer = new Client(survivor.url, { token: await cl.token({ user_id: 'placer', room: name, role: 'host' }) });
      await placer.connected();
      await placer.join(name);
      if ((await cl.room(name))!.mediaNode === victim.id) room = name;
      await placer.ok('leave', {});
      placer.close();
    }
    expect(room).not.toBe('');
    const { H, h, p, callId } = await twoPublishers(survivor.url, room, (user_id, role) => cl.token({ user_id, room, role }));
    expect((await cl.room(room))!.mediaNode).toBe(victim.id);
    await recordingUnderWay(survivor, callId, shared.dir, CLUSTER_API_KEY);

    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    const finished = (await H.waitEvent('recording-finished', 20_000)) as { status: string; reason: string; files: Array<{ status: string }> };
    const recoveredMs = Date.now() - killedAt;
    expect(finished).toMatchObject({ status: 'completed', reason: 'node-lost' });
    expect(finished.files.map((f) => f.status)).toEqual(['interrupted', 'interrupted']);
    const rows = (await api<{ items: RecordingJson[] }>(survivor, 'GET', `/recordings?call_id=${callId}`, undefined, CLUSTER_API_KEY)).json.items;
    expect(rows).toHaveLength(2);
    for (const r of rows) await expectRecovered(survivor, r, shared.dir, `node ${victim.id} was lost`, CLUSTER_API_KEY);
    expect(writersUnder(shared.dir)).toEqual([]);
    expect(logLine(survivor.out(), 'cleaned up after a dead node')).toMatchObject({ node: victim.id, recordings: 2 });
    console.log(`cluster: SIGKILL of the media node → its recordings repaired and announced in ${recoveredMs} ms (NODE_TTL_MS 1500)`);

    // The call goes on, on the survivor's media, no longer recording; its participants are still in.
    const call = (await api(survivor, 'GET', `/calls/${callId}`, undefined, CLUSTER_API_KEY)).json;
    expect(call).toMatchObject({ status: 'active', recording: false });
    const still = (call.participants as Array<{ id: string; left_at: string | null }>).filter((x) => [h, p].includes(x.id));
    expect(still.map((x) => x.left_at)).toEqual([null, null]);
    expect((await cl.room(room))!.mediaNode).toBe(survivor.id);
    for (const r of rows) expect((await api(survivor, 'DELETE', `/recordings/${r.id}`, undefined, CLUSTER_API_KEY)).status).toBe(204);
  });
});

describe('a node restarted with the same NODE_ID', () => {
  it("repairs its previous life's files before taking traffic, and its room state ends the call", async () => {
    const data = tempDir();
    const recordings = tempDir('sb-rec-');
    const db = await createPostgresDatabase();
    const prefix = `sbtest-${randomUUID().slice(0, 8)}:`;
    const redis = new Redis(REDIS_URL);
    const env: Record<string, string> = {
      HOST: '127.0.0.1',
      DATA_DIR: data.dir,
      RECORDINGS_DIR: recordings.dir,
      DATABASE_URL: db.url,
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      NODE_ID: 'crash-solo',
      NODE_HEARTBEAT_MS: '500',
      NODE_TTL_MS: '1500',
      EMPTY_ROOM_TIMEOUT_SECONDS: '1',
      JWT_PRIVATE_KEY_FILE: keyFileIn(data.dir),
      API_KEYS: API_KEY,
      MEDIASOUP_WORKERS: '1',
      MEDIASOUP_LISTEN_IP: '127.0.0.1',
      LOG_LEVEL: 'info',
    };
    const servers: Server[] = [];
    try {
      const first = await serve(env);
      servers.push(first);
      const room = 'crash-same-node';
      const token = async (user_id: string, role: string) => (await api<{ token: string }>(first, 'POST', '/auth/token', { user_id, room, role })).json.token;
      const { callId } = await twoPublishers(first.url, room, token);
      await recordingUnderWay(first, callId, recordings.dir);
      first.proc.child.kill('SIGKILL');
      await first.proc.exited;
      await killAllPeers();

      const restartedAt = Date.now();
      const second = await serve(env);
      servers.push(second);
      const readyMs = Date.now() - restartedAt;
      // Its files were repaired before it listened.
      const rows = (await api<{ items: RecordingJson[] }>(second, 'GET', `/recordings?call_id=${callId}`)).json.items;
      expect(rows).toHaveLength(2);
      for (const r of rows) await expectRecovered(second, r, recordings.dir, 'recovered after a crash: the server stopped');
      expect(writersUnder(recordings.dir)).toEqual([]);
      expect(logLine(second.proc.out(), "cleaned up after this node's previous run")).toMatchObject({ node: 'crash-solo', participants: 2, recordings: 2 });
      // Its participants were removed from the room state Redis kept, the empty room ends the call.
      const call = await until(
        'the call to end',
        async () => {
          const c = (await api(second, 'GET', `/calls/${callId}`)).json;
          return c.status === 'ended' && c;
        },
        { timeoutMs: 15_000, intervalMs: 200 },
      );
      expect(call.recording).toBe(false);
      expect(call.participants.map((x: { left_at: string | null }) => x.left_at !== null)).toEqual([true, true]);
      console.log(`same NODE_ID: restart → ready ${readyMs} ms (files repaired by then), → call ended ${Date.now() - restartedAt} ms`);
    } finally {
      await killAllPeers();
      for (const s of servers) s.proc.child.kill('SIGKILL');
      await Promise.all(servers.map((s) => s.proc.exited));
      for (const pid of writersUnder(recordings.dir)) process.kill(pid, 'SIGKILL');
      await deleteKeysWith(redis, prefix);
      redis.disconnect();
      await db.drop();
      data.remove();
      recordings.remove();
    }
  });
});
