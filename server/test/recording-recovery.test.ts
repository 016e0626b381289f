import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { openDatabase, type Database } from '../db/database';
import { resolveFfmpeg } from '../recording/ffmpeg';
import { crashTime, recoveredFile, sessionStatus } from '../recording/outcome';
import { ofNode, ofOrphanedCall, orphanedAtStartup, RecordingRecovery } from '../recording/recovery';
import { startTestApp, type TestApp } from './helpers/app';
import { probe } from './helpers/crash';
import { createPostgresDatabase, tempDir } from './helpers/env';

/**
 * The parts of crash recovery below the server (crash-recovery*.test.ts run
 * the whole): what a recovered file becomes, when a crashed call ended, which
 * rows are orphaned (against PostgreSQL, for its NULL rules), the repair of
 * real files (a truncated WebM, an empty one, a missing one), once only, and
 * which calls an app's start-up recovery ends, when, with which events.
 */
const at = (iso: string) => new Date(iso);

describe('what a recovered file becomes', () => {
  const crashed = { reason: 'server-crashed' as const, nodeId: 'n1' };
  it('interrupted with its size and duration when it holds media, empty when not, failed when gone', () => {
    expect(recoveredFile({ exists: true, size: 1000, durationMs: 2500 }, crashed)).toEqual({
      status: 'interrupted',
      sizeBytes: 1000n,
      durationMs: 2500,
      error: 'recovered after a crash: the server stopped (crashed or was killed) while recording; the file holds what was written until then',
    });
    expect(recoveredFile({ exists: true, size: 300, durationMs: null }, crashed)).toMatchObject({ status: 'empty', sizeBytes: 300n, durationMs: null });
    expect(recoveredFile({ exists: true, size: 0, durationMs: null }, crashed)).toMatchObject({ status: 'empty', sizeBytes: null });
    expect(recoveredFile({ exists: false }, { reason: 'node-lost', nodeId: 'n2' })).toEqual({
      status: 'failed',
      sizeBytes: null,
      durationMs: null,
      error: 'recovered after a crash: node n2 was lost while recording, and the file is missing',
    });
    expect(sessionStatus([{ status: 'interrupted' }, { status: 'failed' }])).toBe('completed');
    expect(sessionStatus([{ status: 'empty' }])).toBe('empty');
  });

  it('a crashed call ends at its last recording write (or, empty, its last leave), never before what is known of it nor after now', () => {
    const now = at('2026-01-01T12:00:00Z');
    const joined = at('2026-01-01T11:00:00Z');
    // Someone in, no recording: nothing tells when the process died.
    expect(crashTime({ now, lastWrite: null, seen: [joined], someoneIn: true })).toEqual(now);
    expect(crashTime({ now, lastWrite: at('2026-01-01T11:30:00Z'), seen: [joined], someoneIn: true })).toEqual(at('2026-01-01T11:30:00Z'));
    // Someone joined (or left) after the last write: the process lived until then at least.
    expect(crashTime({ now, lastWrite: at('2026-01-01T11:30:00Z'), seen: [joined, at('2026-01-01T11:40:00Z')], someoneIn: true })).toEqual(
      at('2026-01-01T11:40:00Z'),
    );
    // Everyone had left (a clean shutdown leaves such calls): the last leave.
    expect(crashTime({ now, lastWrite: null, seen: [joined, at('2026-01-01T11:50:00Z')], someoneIn: false })).toEqual(at('2026-01-01T11:50:00Z'));
    expect(crashTime({ now, lastWrite: at('2026-01-01T12:30:00Z'), seen: [], someoneIn: true })).toEqual(now);
  });
});

describe('recording recovery on PostgreSQL', () => {
  let pg: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let db: Database;
  const data = tempDir();
  const recordings = tempDir('sb-rec-');
  const log = pino({ level: 'silent' });
  const boot = at('2026-06-01T00:00:00Z');
  beforeAll(async () => {
    pg = await createPostgresDatabase();
    db = await openDatabase({ databaseUrl: pg.url, dataDir: data.dir });
  });
  afterAll(async () => {
    await db?.close();
    await pg?.drop();
    data.remove();
    recordings.remove();
  });

  const newCall = async () => (await db.prisma.call.create({ data: { roomId: `r-${randomUUID()}`, status: 'active' } })).id;
  const row = (callId: string, o: { nodeId?: string | null; startedAt?: Date; sessionId?: string; file?: string }) =>
    db.prisma.recording.create({
      data: {
        callId,
        sessionId: o.sessionId ?? randomUUID(),
        kind: 'participant',
        participantId: null,
        filePath: o.file ?? `${callId}/${randomUUID()}.webm`,
        status: 'recording',
        nodeId: o.nodeId ?? null,
        startedAt: o.startedAt ?? at('2026-05-01T00:00:00Z'),
      },
    });

  it('selects the rows no live process writes: one node, everything but its own; a cluster, unknown nodes and orphaned calls', async () => {
    const call = await newCall();
    const orphan = await newCall();
    const r = {
      legacy: await row(call, { nodeId: null }),
      selfBefore: await row(call, { nodeId: 'self' }),
      selfNow: await row(call, { nodeId: 'self', startedAt: at('2026-06-01T00:00:01Z') }),
      live: await row(call, { nodeId: 'live' }),
      unknown: await row(call, { nodeId: 'gone' }),
      deadKnown: await row(call, { nodeId: 'dead' }),
      ofOrphanCall: await row(orphan, { nodeId: 'live' }),
    };
    const name = new Map(Object.entries(r).map(([k, v]) => [v.id, k]));
    const select = async (where: object) =>
      (await db.prisma.recording.findMany({ where: { AND: [where, { callId: { in: [call, orphan] } }] } })).map((x) => name.get(x.id)).sort();

    expect(await select(orphanedAtStartup({ clustered: false, self: 'self', bootedAt: boot, known: [], calls: [] }))).toEqual(
      ['deadKnown', 'legacy', 'live', 'ofOrphanCall', 'selfBefore', 'unknown'].sort(),
    );
    expect(await select(orphanedAtStartup({ clustered: true, self: 'self', bootedAt: boot, known: ['live', 'dead'], calls: [orphan] }))).toEqual([
      'ofOrphanCall',
      'unknown',
    ]);
    expect(await select(orphanedAtStartup({ clustered: true, self: 'self', bootedAt: boot, known: ['live', 'dead'], calls: [] }))).toEqual(['unknown']);
    // A call without a live room: its rows, but a live node's.
    expect(await select(ofOrphanedCall(call, ['live', 'self']))).toEqual(['deadKnown', 'legacy', 'unknown']);
    expect(await select(ofOrphanedCall(orphan, ['live']))).toEqual([]);
    expect(await select(ofOrphanedCall(orphan, []))).toEqual(['ofOrphanCall']);
    expect(await select(ofNode('dead', 'self', boot))).toEqual(['deadKnown']);
    expect(await select(ofNode('self', 'self', boot))).toEqual(['selfBefore']);
  });

  it('repairs a truncated WebM, marks an empty and a missing file, announces the session, and closes each row once', async () => {
    const ffmpeg = resolveFfmpeg(undefined)!;
    const call = await newCall();
    const sessionId = randomUUID();
    mkdirSync(path.join(recordings.dir, call), { recursive: true });
    // A WebM cut off mid-cluster, as a killed ffmpeg leaves it (no cues, no duration).
    const whole = path.join(recordings.dir, call, 'whole.webm');
    execFileSync(ffmpeg.ffmpeg, [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=15', '-f', 'lavfi', '-i', 'sine=frequency=440'],
      ...['-t', '4', '-c:v', 'libvpx', '-c:a', 'libopus', '-cluster_time_limit', '1000', '-f', 'webm', '-y', whole],
    ]);
    const bytes = readFileSync(whole);
    writeFileSync(path.join(recordings.dir, call, 'partial.webm'), bytes.subarray(0, Math.floor(bytes.length * 0.7)));
    writeFileSync(path.join(recordings.dir, call, 'partial.sdp'), 'v=0\n');
    writeFileSync(path.join(recordings.dir, call, 'empty.webm'), '');
    const partial = await row(call, { sessionId, nodeId: 'node-9', file: `${call}/partial.webm` });
    const empty = await row(call, { sessionId, nodeId: 'node-9', file: `${call}/empty.webm` });
    const missing = await row(call, { sessionId, nodeId: 'node-9', file: `${call}/missing.webm` });

    const recovery = new RecordingRecovery({ prisma: db.prisma, recordingsDir: recordings.dir, ffmpeg, log });
    // Two recoverers at once (a reaper and a restarting node): each row is closed once, the file stays valid.
    const [a, b] = await Promise.all([
      recovery.recover(ofNode('node-9', 'self', boot), 'node-lost'),
      recovery.recover(ofNode('node-9', 'self', boot), 'node-lost'),
    ]);
    const sum = (k: 'interrupted' | 'empty' | 'failed') => a.files[k] + b.files[k];
    expect([sum('interrupted'), sum('empty'), sum('failed')]).toEqual([1, 1, 1]);

    const rows = new Map((await db.prisma.recording.findMany({ where: { callId: call } })).map((x) => [x.id, x]));
    const fixed = rows.get(partial.id)!;
    expect(fixed).toMatchObject({ status: 'interrupted', error: expect.stringContaining('node node-9 was lost') });
    const info = probe(path.join(recordings.dir, fixed.filePath));
    expect(info.streams).toEqual(['audio:opus', 'video:vp8']);
    expect(info.duration).toBeGreaterThan(1.5);
    expect(Math.abs(info.duration * 1000 - fixed.durationMs!)).toBeLessThan(50);
    expect(Number(fixed.sizeBytes)).toBe(readFileSync(path.join(recordings.dir, fixed.filePath)).length);
    expect(fixed.endedAt).not.toBeNull();
    expect(existsSync(path.join(recordings.dir, call, 'partial.sdp'))).toBe(false);
    expect(rows.get(empty.id)).toMatchObject({ status: 'empty', sizeBytes: null });
    expect(rows.get(missing.id)).toMatchObject({ status: 'failed', error: expect.stringContaining('the file is missing') });

    const sessions = [...a.sessions, ...b.sessions];
    expect(sessions.length).toBeGreaterThan(0);
    expect(sessions[0]!.finished).toMatchObject({ recording_id: sessionId, call_id: call, status: 'completed', reason: 'node-lost', mode: 'participant' });
    // Nothing left to do a second time.
    expect((await recovery.recover(ofNode('node-9', 'self', boot), 'node-lost')).sessions).toEqual([]);
  });
});

describe('crash recovery of calls, in an app (PostgreSQL)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('postgres');
  });
  afterAll(async () => {
    await t?.close();
  });

  it('ends the active calls no live room holds, at their last leave or now, with the events of a normal end', async () => {
    const { prisma } = t.db;
    const t0 = Date.now() - 60_000;
    const ms = (n: number) => new Date(t0 + n * 1000);
    const call = (roomId: string) => prisma.call.create({ data: { roomId, status: 'active', createdAt: ms(0), startedAt: ms(0) } });
    const participant = (callId: string, userId: string, joined: number, left: number | null) =>
      prisma.participant.create({ data: { callId, userId, joinedAt: ms(joined), leftAt: left === null ? null : ms(left) } });
    // Everyone had left (as a clean stop leaves it); someone still in; a call whose room is live.
    const emptied = await call('rec-emptied');
    await participant(emptied.id, 'a', 1, 5);
    await participant(emptied.id, 'b', 2, 9);
    const busy = await call('rec-busy');
    await participant(busy.id, 'c', 1, 3);
    const stillIn = await participant(busy.id, 'd', 2, null);
    const live = await call('rec-live');
    await participant(live.id, 'e', 1, null);
    await t.rooms.ctx.store.putRoom({
      room: 'rec-live',
      callId: live.id,
      status: 'active',
      recording: false,
      mode: 'sfu',
      createdAt: t0,
      removedUsers: [],
      mediaNode: null,
      emptySince: null,
    });
    const events: Array<[string, { call_id: string; at: string; participant_id?: string; reason?: string }]> = [];
    t.events.on('call.ended', (e) => events.push(['call.ended', e]));
    t.events.on('participant.left', (e) => events.push(['participant.left', e]));

    const before = Date.now();
    const summary = await t.recover();
    expect(summary).toMatchObject({ calls: 2, participants: 1 });

    const get = (id: string) => prisma.call.findUniqueOrThrow({ where: { id }, include: { participants: true } });
    const e = await get(emptied.id);
    expect(e).toMatchObject({ status: 'ended', recording: false, endedAt: ms(9) });
    expect(e.participants.map((p) => p.leftAt!.getTime()).sort()).toEqual([ms(5).getTime(), ms(9).getTime()]);
    const b = await get(busy.id);
    expect(b.status).toBe('ended');
    expect(b.endedAt!.getTime()).toBeGreaterThanOrEqual(before - 1);
    expect(b.participants.find((p) => p.id === stillIn.id)!.leftAt).toEqual(b.endedAt);
    expect((await get(live.id)).status).toBe('active');

    expect(events.filter(([type]) => type === 'call.ended').map(([, x]) => [x.call_id, x.at])).toEqual(
      expect.arrayContaining([
        [emptied.id, ms(9).toISOString()],
        [busy.id, b.endedAt!.toISOString()],
      ]),
    );
    expect(events.filter(([type, x]) => type === 'call.ended' && x.call_id === live.id)).toEqual([]);
    // participant.left only for whoever was still in, as when a call is ended.
    expect(events.filter(([type]) => type === 'participant.left').map(([, x]) => [x.participant_id, x.reason, x.at])).toEqual([
      [stillIn.id, 'call-ended', b.endedAt!.toISOString()],
    ]);
    // A second run finds nothing.
    expect(await t.recover()).toMatchObject({ calls: 0, participants: 0, recordings: { interrupted: 0, empty: 0, failed: 0 } });
  });
});
