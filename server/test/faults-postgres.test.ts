import pg from 'pg';
import { admin, bearer } from './helpers/app';
import { startOwnPostgres, type OwnService } from './helpers/ownServices';
import { useSignalingApp } from './helpers/signaling';
import { sleep, until } from './helpers/wait';

/**
 * PostgreSQL outages, on a PostgreSQL of this file's own (stopped and paused
 * here; the shared one on 5432 is never touched): signaling carries on, what
 * it writes behind waits and lands once the database is back (rows lost = 0),
 * REST and socket requests that need the database answer 503 /
 * DATABASE_UNAVAILABLE with retry-after, and a stalled server bounds every wait.
 */
const OUTAGE_MS = Number(process.env.FAULT_OUTAGE_MS ?? 60_000);

let pgs: OwnService;
beforeAll(async () => {
  pgs = await startOwnPostgres();
}, 30_000);
afterAll(async () => {
  await pgs?.remove();
});

const s = useSignalingApp('postgres', () => ({ DATABASE_URL: pgs.url }));

async function sql<T>(text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: pgs.url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

describe('a PostgreSQL outage', () => {
  it(
    `loses nothing written behind signaling across ${OUTAGE_MS / 1000} s down, and answers DATABASE_UNAVAILABLE meanwhile`,
    async () => {
      const host = await s.join({ user_id: 'pg-host', room: 'pg-a', role: 'host' }, 'pg-a', 'Host');
      const early = await s.join({ user_id: 'pg-early', room: 'pg-a' }, 'pg-a', 'Early');
      const callId = host.callId!;
      const tokens = {
        late: await s.t.app.inject({ method: 'POST', url: '/auth/token', headers: admin, payload: { user_id: 'pg-late', room: 'pg-a' } }),
        other: await s.t.app.inject({ method: 'POST', url: '/auth/token', headers: admin, payload: { user_id: 'pg-other', room: 'pg-b', role: 'host' } }),
      };
      const hostToken = (
        await s.t.app.inject({ method: 'POST', url: '/auth/token', headers: admin, payload: { user_id: 'pg-host', room: 'pg-a', role: 'host' } })
      ).json<{ token: string }>().token;
      await s.t.rooms.flushWrites();

      await pgs.stop();
      const downAt = Date.now();

      // Signaling goes on: a newcomer joins the running call, tones are sent, a role changes, someone leaves.
      const late = await s.connect(tokens.late.json<{ token: string }>().token);
      await late.join('pg-a', 'Late');
      await host.ok('dtmf', { call_id: callId, tones: '12#' });
      await host.ok('set-role', { call_id: callId, participant_id: late.participantId, role: 'moderator' });
      await early.ok('leave', { call_id: callId });
      const leftAt = Date.now();

      // What needs the database now says so, with a code: opening a new room, chat kept with the call, REST.
      const other = await s.connect(tokens.other.json<{ token: string }>().token);
      expect((await other.request('join', { room: 'pg-b' }, 15_000)).error?.code).toBe('DATABASE_UNAVAILABLE');
      expect((await host.request('message', { call_id: callId, text: 'hello' }, 15_000)).error?.code).toBe('DATABASE_UNAVAILABLE');
      const rest = await s.t.app.inject({ method: 'GET', url: `/calls/${callId}`, headers: bearer(hostToken) });
      expect(rest.statusCode).toBe(503);
      expect(rest.json()).toMatchObject({ error: { code: 'DATABASE_UNAVAILABLE' } });
      expect(rest.headers['retry-after']).toBe('5');
      const ready = await s.t.app.inject({ method: 'GET', url: '/ready' });
      expect(ready.statusCode).toBe(503);
      const metrics = await s.t.app.inject({ method: 'GET', url: '/metrics', headers: admin });
      expect(metrics.body).toMatch(/^switchboard_db_write_backlog [1-9]/m);

      // The call still works for those in it.
      await late.ok('dtmf', { call_id: callId, tones: '9' });
      expect((await host.next('dtmf', 5000)) as { tones: string }).toMatchObject({ tones: '9' });

      await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)));
      await pgs.start();
      const upAt = Date.now();

      // Everything lands, in order, within seconds of the database's return.
      const drained = await until(
        'the write-behind backlog to drain',
        async () => {
          const m = await s.t.app.inject({ method: 'GET', url: '/metrics', headers: admin });
          return /^switchboard_db_write_backlog 0$/m.test(m.body) ? Date.now() - upAt : null;
        },
        { timeoutMs: 15_000, intervalMs: 100 },
      );
      console.log(`outage ${Math.round((upAt - downAt) / 1000)} s; backlog drained ${drained} ms after the database returned`);
      const rows = await sql<{ user_id: string; role: string; left_ms: string | null }>(
        'SELECT user_id, role, (extract(epoch FROM left_at) * 1000)::bigint AS left_ms FROM participants WHERE call_id = $1',
        [callId],
      );
      const byUser = Object.fromEntries(rows.map((r) => [r.user_id, r]));
      expect(Object.keys(byUser).sort()).toEqual(['pg-early', 'pg-host', 'pg-late']);
      // The time they left, not the time the row was written after the outage.
      expect(Math.abs(Number(byUser['pg-early']!.left_ms) - leftAt)).toBeLessThan(2000);
      expect(byUser['pg-late']!.role).toBe('moderator');
      expect(byUser['pg-host']!.left_ms).toBeNull();
      const events = await sql<{ type: string; payload: { tones?: string } }>(
        'SELECT type, payload FROM call_events WHERE call_id = $1 ORDER BY created_at, id',
        [callId],
      );
      expect(events.filter((e) => e.type === 'dtmf').map((e) => e.payload.tones)).toEqual(['12#', '9']);
      expect(events.some((e) => e.type === 'set-role')).toBe(true);
      expect((await sql<{ n: string }>("SELECT count(*) AS n FROM calls WHERE status = 'active'"))[0]!.n).toBe('1');

      // And the rest works again.
      expect((await s.t.app.inject({ method: 'GET', url: `/calls/${callId}`, headers: bearer(hostToken) })).statusCode).toBe(200);
      expect((await host.request('message', { call_id: callId, text: 'back' })).ok).toBe(true);
      expect((await other.request('join', { room: 'pg-b' })).ok).toBe(true);
    },
    OUTAGE_MS + 90_000,
  );

  it('bounds every wait when the server stalls (SIGSTOP): REST and room-opening joins answer within 10 s', async () => {
    const hostToken = (
      await s.t.app.inject({ method: 'POST', url: '/auth/token', headers: admin, payload: { user_id: 'st-host', room: 'st-a', role: 'host' } })
    ).json<{
      token: string;
    }>().token;
    const host = await s.connect(hostToken);
    await host.join('st-a');
    const callId = host.callId!;
    const opener = await s.connect(
      (await s.t.app.inject({ method: 'POST', url: '/auth/token', headers: admin, payload: { user_id: 'st-other', room: 'st-b', role: 'host' } })).json<{
        token: string;
      }>().token,
    );
    pgs.pause();
    try {
      const t0 = Date.now();
      const [rest, join] = await Promise.all([
        s.t.app.inject({ method: 'GET', url: `/calls/${callId}`, headers: bearer(hostToken) }),
        opener.request('join', { room: 'st-b' }, 20_000),
      ]);
      const waited = Date.now() - t0;
      console.log(`stalled database: REST answered ${rest.statusCode}, join ${join.error?.code}, after ${waited} ms`);
      expect(rest.statusCode).toBe(503);
      expect(rest.json()).toMatchObject({ error: { code: 'DATABASE_UNAVAILABLE' } });
      expect(join.error?.code).toBe('DATABASE_UNAVAILABLE');
      expect(waited).toBeLessThan(10_000);
      // The running call is not held up meanwhile.
      const d0 = Date.now();
      await host.ok('dtmf', { call_id: callId, tones: '5' });
      expect(Date.now() - d0).toBeLessThan(1000);
    } finally {
      pgs.resume();
    }
    await until(
      'REST to answer again after the stall',
      async () => ((await s.t.app.inject({ method: 'GET', url: `/calls/${callId}`, headers: bearer(hostToken) })).statusCode === 200 ? true : null),
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    expect((await opener.request('join', { room: 'st-b' })).ok).toBe(true);
  }, 60_000);
});
