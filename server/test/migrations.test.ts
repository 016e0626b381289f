import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { migrate, readMigrations, type Migration } from '../db/migrate';
import { pgliteExecutor, runPostgresMigrations, openDatabase } from '../db/database';
import { BACKENDS, createPostgresDatabase, tempDir, type Backend } from './helpers/env';

/** Runs SQL on a fresh database of the given backend. */
interface Fresh {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  migrate(migrations?: Migration[]): Promise<string[]>;
  url?: string;
  dataDir: string;
  close(): Promise<void>;
}

async function fresh(backend: Backend): Promise<Fresh> {
  const data = tempDir();
  if (backend === 'postgres') {
    const db = await createPostgresDatabase();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    return {
      query: async (sql, params) => (await client.query(sql, params)).rows,
      migrate: (m) =>
        m
          ? migrate({ exec: async (s) => void (await client.query(s)), query: async (s, p) => (await client.query(s, p)).rows, withLock: (fn) => fn() }, m)
          : runPostgresMigrations(db.url),
      url: db.url,
      dataDir: data.dir,
      close: async () => {
        await client.end();
        await db.drop();
        data.remove();
      },
    };
  }
  const lite = await PGlite.create();
  const ex = pgliteExecutor(lite);
  return {
    query: async (sql, params) => ex.query(sql, params),
    migrate: (m) => migrate(ex, m),
    dataDir: data.dir,
    close: async () => {
      await lite.close();
      data.remove();
    },
  };
}

describe.each(BACKENDS)('migrations on %s', (backend) => {
  let db: Fresh;
  beforeEach(async () => {
    db = await fresh(backend);
  });
  afterEach(async () => {
    await db.close();
  });

  it('applies every migration to an empty database, then nothing on a second run', async () => {
    const all = readMigrations().map((m) => m.name);
    expect(all.length).toBeGreaterThan(0);
    expect(await db.migrate()).toEqual(all);
    expect(await db.migrate()).toEqual([]);
    const rows = await db.query<{ migration_name: string; finished_at: Date | null }>(
      'SELECT migration_name, finished_at FROM _prisma_migrations ORDER BY migration_name',
    );
    expect(rows.map((r) => r.migration_name)).toEqual(all);
    expect(rows.every((r) => r.finished_at !== null)).toBe(true);
  });

  it("creates the design's tables with its column types", async () => {
    await db.migrate();
    const cols = await db.query<{ table_name: string; column_name: string; data_type: string; column_default: string | null }>(
      `SELECT table_name, column_name, data_type, column_default FROM information_schema.columns
       WHERE table_schema = 'public' AND table_name IN ('calls','participants','recordings') ORDER BY table_name, ordinal_position`,
    );
    const type = (t: string, c: string) => cols.find((x) => x.table_name === t && x.column_name === c)?.data_type;
    const dflt = (t: string, c: string) => cols.find((x) => x.table_name === t && x.column_name === c)?.column_default ?? '';
    expect(type('calls', 'id')).toBe('uuid');
    expect(type('calls', 'room_id')).toBe('character varying');
    for (const c of ['created_at', 'started_at', 'ended_at']) expect(type('calls', c)).toBe('timestamp without time zone');
    expect(type('calls', 'status')).toBe('character varying');
    expect(dflt('calls', 'status')).toContain("'active'");
    expect(type('calls', 'recording')).toBe('boolean');
    expect(type('calls', 'metadata')).toBe('jsonb');
    expect(dflt('calls', 'metadata')).toContain("'{}'");
    expect(type('participants', 'call_id')).toBe('uuid');
    expect(type('participants', 'user_id')).toBe('character varying');
    expect(type('participants', 'display_name')).toBe('character varying');
    expect(dflt('participants', 'role')).toContain("'participant'");
    expect(type('participants', 'joined_at')).toBe('timestamp without time zone');
    expect(type('participants', 'left_at')).toBe('timestamp without time zone');
    expect(type('participants', 'client_ip')).toBe('inet');
    expect(type('participants', 'metadata')).toBe('jsonb');
    for (const c of [
      'id',
      'call_id',
      'participant_id',
      'kind',
      'file_path',
      'codec',
      'size_bytes',
      'duration_ms',
      'status',
      'error',
      'started_at',
      'ended_at',
    ]) {
      expect(type('recordings', c)).toBeDefined();
    }
    const idx = await db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'");
    const names = idx.map((i) => i.indexname);
    expect(names).toEqual(expect.arrayContaining(['calls_room_id_idx', 'calls_status_created_at_idx', 'calls_room_id_open_key', 'participants_call_id_idx']));
  });

  it('cascades participant and recording rows when a call is deleted, and keeps one open call per room', async () => {
    await db.migrate();
    const [call] = await db.query<{ id: string }>("INSERT INTO calls (id, room_id) VALUES (gen_random_uuid(), 'r1') RETURNING id");
    await db.query("INSERT INTO participants (id, call_id, user_id, client_ip) VALUES (gen_random_uuid(), $1, 'u1', '127.0.0.1')", [call!.id]);
    await db.query(
      "INSERT INTO recordings (id, call_id, session_id, kind, file_path) VALUES (gen_random_uuid(), $1, gen_random_uuid(), 'participant', 'x/a.webm')",
      [call!.id],
    );
    await expect(db.query("INSERT INTO calls (id, room_id) VALUES (gen_random_uuid(), 'r1')")).rejects.toThrow(/unique|duplicate/i);
    await db.query('DELETE FROM calls WHERE id = $1', [call!.id]);
    expect(await db.query('SELECT * FROM participants')).toHaveLength(0);
    expect(await db.query('SELECT * FROM recordings')).toHaveLength(0);
  });

  it('refuses to continue when an applied migration was edited', async () => {
    const ms = readMigrations();
    await db.migrate(ms);
    const edited = ms.map((m, i) => (i === 0 ? { ...m, checksum: 'f'.repeat(64) } : m));
    await expect(db.migrate(edited)).rejects.toThrow(/modified after it was applied/);
  });

  it('rolls back a failing migration as a whole and records nothing', async () => {
    const ms = readMigrations();
    const bad: Migration = { name: '99999999999999_bad', sql: 'CREATE TABLE half_done (id int); SELECT * FROM no_such_table;', checksum: 'a'.repeat(64) };
    await expect(db.migrate([...ms, bad])).rejects.toThrow(/99999999999999_bad failed/);
    expect(await db.query("SELECT to_regclass('public.half_done') AS t")).toEqual([{ t: null }]);
    expect(await db.query("SELECT 1 FROM _prisma_migrations WHERE migration_name = '99999999999999_bad'")).toHaveLength(0);
  });

  it('opens through openDatabase with migrations applied and the Prisma client working', async () => {
    const handle = await openDatabase({ databaseUrl: db.url, dataDir: db.dataDir });
    try {
      expect(handle.kind).toBe(backend);
      const call = await handle.prisma.call.create({ data: { roomId: 'prisma-room', metadata: { a: 1 } } });
      await handle.prisma.participant.create({ data: { callId: call.id, userId: 'u', clientIp: '::1', displayName: 'U' } });
      const back = await handle.prisma.call.findUniqueOrThrow({ where: { id: call.id }, include: { participants: true } });
      expect(back.metadata).toEqual({ a: 1 });
      expect(back.participants[0]?.clientIp).toBe('::1');
      await handle.ping();
    } finally {
      await handle.close();
    }
  });
});
