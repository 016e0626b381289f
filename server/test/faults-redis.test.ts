import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { CLUSTER_API_KEY, startCluster, type Node, type TestCluster } from './helpers/cluster';
import { startOwnRedis, type OwnService } from './helpers/ownServices';
import { Client, type AnyAck } from './helpers/signaling';
import { sleep, until } from './helpers/wait';

/**
 * Redis outages, on a Redis of this file's own (stopped, restarted EMPTY and
 * paused here; the shared one on 6379 is never touched), under two real server
 * processes sharing it and one PostgreSQL database. While Redis is away /ready
 * answers 503 on every node, requests that need it answer CLUSTER_UNAVAILABLE
 * and no process exits; once it is back, empty, each node restores the room
 * state it owns: the call goes on with the same call_id and participants, a
 * newcomer joins that call and sees them, and the database still has it active.
 * A participant whose connection closed meanwhile gets its grace period and its
 * left_at; a call ended over REST meanwhile is not brought back; a stall longer
 * than NODE_TTL_MS (SIGSTOP) declares no node dead. FAULT_OUTAGE_MS sets how
 * long Redis stays down; FAULT_NODE_LOGS=<dir> keeps each node's output there.
 */
const OUTAGE_MS = Number(process.env.FAULT_OUTAGE_MS ?? 8000);
/** From Redis answering again to every node ready, with the room state restored. */
const RECOVERY_BOUND_MS = 10_000;
const GRACE_S = 4;
jest.setTimeout(OUTAGE_MS + 120_000);

let redis: OwnService;
let c: TestCluster;
let n: Node[];
const clients: Client[] = [];
const client = (node: Node, token: string): Client => {
  const cl = new Client(node.url, { token });
  clients.push(cl);
  return cl;
};

beforeAll(async () => {
  redis = await startOwnRedis();
  c = await startCluster(2, { RECONNECT_GRACE_SECONDS: String(GRACE_S) }, { redisUrl: redis.url });
  n = c.nodes;
}, 60_000);
afterAll(async () => {
  const logs = process.env.FAULT_NODE_LOGS;
  if (logs) for (const node of n ?? []) writeFileSync(path.join(logs, `faults-redis-${node.id}.log`), node.out());
  for (const cl of clients) cl.close();
  await c?.close();
  await redis?.remove();
});

const ready = async (node: Node): Promise<{ status: number; body: { checks: Record<string, { ok: boolean; detail?: string }> } }> => {
  const res = await fetch(`${node.url}/ready`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: (await res.json()) as { checks: Record<string, { ok: boolean; detail?: string }> } };
};

async function sql<T>(text: string, params: unknown[] = []): Promise<T[]> {
  const db = new pg.Client({ connectionString: c.databaseUrl });
  await db.connect();
  try {
    return (await db.query(text, params)).rows as T[];
  } finally {
    await db.end();
  }
}

const alive = (node: Node): boolean => node.child.exitCode === null && node.child.signalCode === null;

/** Every node answers /ready 503 with its redis check failing; resolves with how long each took from `since`. */
function allNotReady(since: number, timeoutMs: number): Promise<number[]> {
  return Promise.all(
    n.map((node) =>
      until(
        `${node.id} /ready to answer 503 with the redis check failing`,
        async () => {
          const r = await ready(node).catch(() => null);
          return r?.status === 503 && r.body.checks.redis?.ok === false ? Date.now() - since : null;
        },
        { timeoutMs, intervalMs: 100 },
      ),
    ),
  );
}

/** Every node answers /ready 200 again; resolves with the longest time from `since`. */
async function allReady(since: number): Promise<number> {
  const took = await Promise.all(
    n.map((node) =>
      until(
        () => `${node.id} /ready to answer 200 again: ${node.out().slice(-3000)}`,
        async () => ((await ready(node).catch(() => null))?.status === 200 ? Date.now() - since : null),
        { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 100 },
      ),
    ),
  );
  return Math.max(...took);
}

describe('a Redis restarted empty', () => {
  it(`keeps the calls going after ${OUTAGE_MS / 1000} s down: same call_id, same participants, newcomers in the same call`, async () => {
    const room = 'redis-loss';
    const A = client(n[0]!, await c.token({ user_id: 'rl-host', room, role: 'host', display_name: 'Host' }));
    const B = client(n[1]!, await c.token({ user_id: 'rl-guest', room, display_name: 'Guest' }));
    const D = client(n[0]!, await c.token({ user_id: 'rl-drop', room }));
    await Promise.all([A.connected(), B.connected(), D.connected()]);
    await A.join(room);
    await B.join(room);
    await D.join(room);
    const callId = A.callId;
    expect(B.callId).toBe(callId);
    await A.next('peer-joined');
    await A.next('peer-joined');
    await B.next('peer-joined');
    // State that lives in Redis only: a moderator's mute of the guest (locked).
    await A.ok('mute', { call_id: callId, track: 'audio', participant_id: B.participantId });
    await A.next('mute-changed');
    await B.next('mute-changed');
    // The heartbeat's snapshot of what each node owns (every 2 s) has seen it.
    await sleep(2500);

    await redis.stop();
    const downAt = Date.now();

    // Every node says it is not ready (the redis check), within a few seconds; /health stays 200.
    const notReady = await allNotReady(downAt, 5000);
    for (const node of n) expect((await fetch(`${node.url}/health`)).status).toBe(200);
    console.log(`Redis down: /ready 503 after ${notReady.join(' ms, ')} ms`);

    // What needs Redis says so, quickly, with a code; the connections stay up.
    const t0 = Date.now();
    const during: AnyAck = await A.request('dtmf', { call_id: callId, tones: '1' }, 10_000);
    expect(during.error?.code).toBe('CLUSTER_UNAVAILABLE');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect((await B.request('message', { call_id: callId, text: 'anyone?' }, 10_000)).error?.code).toBe('CLUSTER_UNAVAILABLE');
    // One participant's connection closes while its node cannot record it.
    D.close();

    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)));
    for (const node of n) expect(alive(node)).toBe(true);
    expect(A.socket.connected && B.socket.connected).toBe(true);

    await redis.start();
    const upAt = Date.now();
    const recoveryMs = await allReady(upAt);
    console.log(`Redis back (empty) after ${Math.round((upAt - downAt) / 1000)} s down: every node ready again within ${recoveryMs} ms`);

    // The participants carry on, with the same call_id, on both nodes.
    await A.ok('dtmf', { call_id: callId, tones: '12#' });
    expect((await B.next('dtmf')).tones).toBe('12#');
    await B.ok('dtmf', { call_id: callId, tones: '9' });
    expect((await A.next('dtmf')).tones).toBe('9');
    await B.ok('mute', { call_id: callId, track: 'video' });
    expect(await A.next('mute-changed')).toMatchObject({ participant_id: B.participantId, track: 'video', muted: true });
    // The moderator's mute of the guest survived (restored from node-1's snapshot).
    expect((await B.request('unmute', { call_id: callId, track: 'audio' })).error?.code).toBe('MUTED_BY_MODERATOR');
    await A.ok('message', { call_id: callId, text: 'still here' });
    expect(await B.next('message')).toMatchObject({ call_id: callId, text: 'still here' });

    // A newcomer enters the same call, and sees the others (the one who dropped as disconnected, in its grace period).
    const C = client(n[1]!, await c.token({ user_id: 'rl-late', room }));
    await C.connected();
    const joined = await C.join(room);
    const state = joined.room_state as { call_id: string; participants: Array<{ user_id: string; connected: boolean; muted_tracks: string[] }> };
    expect(state.call_id).toBe(callId);
    expect(state.participants.map((p) => p.user_id).sort()).toEqual(['rl-drop', 'rl-guest', 'rl-host', 'rl-late']);
    expect(state.participants.find((p) => p.user_id === 'rl-drop')?.connected).toBe(false);
    expect(state.participants.find((p) => p.user_id === 'rl-guest')?.muted_tracks.sort()).toEqual(['audio', 'video']);
    expect(await A.next('peer-joined')).toMatchObject({ participant: { user_id: 'rl-late' } });
    expect((await c.room(room))?.callId).toBe(callId);

    // The one whose connection closed during the outage is announced as left once its grace period ends.
    expect(await A.next('peer-left', (GRACE_S + 5) * 1000)).toMatchObject({ call_id: callId, participant_id: D.participantId, reason: 'disconnected' });

    // The database agrees: one active call, the three participants in it, the one who dropped out of it.
    const rows = await until(
      "four participant rows, the dropped one's left",
      async () => {
        const r = await sql<{ user_id: string; left_at: Date | null }>('SELECT user_id, left_at FROM participants WHERE call_id = $1', [callId]);
        return r.length === 4 && r.find((x) => x.user_id === 'rl-drop')?.left_at ? r : null;
      },
      { timeoutMs: 5000, intervalMs: 100 },
    );
    expect(
      rows
        .filter((r) => r.left_at === null)
        .map((r) => r.user_id)
        .sort(),
    ).toEqual(['rl-guest', 'rl-host', 'rl-late']);
    expect(await sql<{ id: string; status: string }>("SELECT id, status FROM calls WHERE status <> 'ended'")).toEqual([{ id: callId, status: 'active' }]);
    for (const node of n) expect(alive(node)).toBe(true);
    await A.ok('end-call', { call_id: callId });
  });

  it('does not bring back a call ended over REST while Redis was away: its participants are told it ended', async () => {
    const room = 'redis-ended';
    const E = client(n[0]!, await c.token({ user_id: 're-host', room, role: 'host' }));
    const F = client(n[1]!, await c.token({ user_id: 're-guest', room }));
    await Promise.all([E.connected(), F.connected()]);
    await E.join(room);
    await F.join(room);
    const callId = E.callId;
    await sleep(2500);

    await redis.stop();
    await allNotReady(Date.now(), 5000);
    const end = await fetch(`${n[1]!.url}/calls/${callId}/end`, { method: 'POST', headers: { 'x-api-key': CLUSTER_API_KEY } });
    expect(end.status).toBe(200);
    await redis.start();
    await allReady(Date.now());

    for (const x of [E, F]) expect(await x.next('call-state-changed', 5000)).toMatchObject({ call_id: callId, status: 'ended' });
    expect(await c.room(room)).toBeNull();
    expect((await E.request('dtmf', { call_id: callId, tones: '1' })).error?.code).toBe('NOT_JOINED');
    const rows = await sql<{ left_at: Date | null }>('SELECT left_at FROM participants WHERE call_id = $1', [callId]);
    expect(rows).toHaveLength(2);
    expect(rows.every((r) => r.left_at !== null)).toBe(true);
    // The room opens a new call afterwards.
    await E.join(room);
    expect(E.callId).not.toBe(callId);
    await E.ok('end-call', { call_id: E.callId });
  });
});

describe('a stalled Redis (SIGSTOP)', () => {
  it('answers CLUSTER_UNAVAILABLE within the command timeout, and declares no node dead after a stall longer than NODE_TTL_MS', async () => {
    const room = 'redis-stall';
    const G = client(n[0]!, await c.token({ user_id: 'rs-host', room, role: 'host' }));
    const H = client(n[1]!, await c.token({ user_id: 'rs-guest', room }));
    await Promise.all([G.connected(), H.connected()]);
    await G.join(room);
    await H.join(room);
    await G.next('peer-joined');
    const callId = G.callId;

    redis.pause();
    const stalledAt = Date.now();
    let resumed = false;
    try {
      const notReady = await allNotReady(stalledAt, 6000);
      console.log(`Redis stalled: /ready 503 after ${notReady.join(' ms, ')} ms`);
      const t0 = Date.now();
      expect((await G.request('dtmf', { call_id: callId, tones: '1' }, 15_000)).error?.code).toBe('CLUSTER_UNAVAILABLE');
      const waited = Date.now() - t0;
      console.log(`a request against the stalled Redis answered CLUSTER_UNAVAILABLE after ${waited} ms`);
      expect(waited).toBeLessThan(8000);
      // Longer than NODE_TTL_MS (6 s): every node's last heartbeat is old when Redis answers again.
      await sleep(Math.max(0, 9000 - (Date.now() - stalledAt)));
      redis.resume();
      resumed = true;
    } finally {
      if (!resumed) redis.resume();
    }
    const resumedAt = Date.now();
    console.log(`Redis resumed: every node ready within ${await allReady(resumedAt)} ms`);

    await G.ok('dtmf', { call_id: callId, tones: '7' });
    expect((await H.next('dtmf')).tones).toBe('7');
    // Nobody was announced as left, nobody's node was declared dead.
    await sleep(8000);
    expect(G.pending('peer-left')).toEqual([]);
    expect(H.pending('peer-left')).toEqual([]);
    for (const node of n) expect(node.out()).not.toContain('cleaned up after a dead node');
    const rows = await sql<{ left_at: Date | null }>('SELECT left_at FROM participants WHERE call_id = $1', [callId]);
    expect(rows.map((r) => r.left_at)).toEqual([null, null]);
    await H.ok('dtmf', { call_id: callId, tones: '8' });
    expect((await G.next('dtmf')).tones).toBe('8');
    await G.ok('end-call', { call_id: callId });
  });
});
