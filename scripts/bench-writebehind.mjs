#!/usr/bin/env node
/**
 * Write-behind benchmark (a benchmark, not a test): how fast the writes queued behind
 * signaling during a PostgreSQL outage drain once it is back, and whether any is lost.
 *
 * On a PostgreSQL of its own (scripts/lib/ownPostgres.mjs, a free port; the shared one on
 * 5432 is never touched), migrated with the build's runPostgresMigrations and opened with its
 * openDatabase (the same Prisma client, pg adapter and pool the server uses), one call row
 * and --keys participants of it per measurement, then per round:
 *
 *   outage        PostgreSQL stopped (fast shutdown); --writes call-event writes enqueued
 *                 through the build's WriteBehind (dist/server/rooms/writeBehind.js), keyed by
 *                 participant as the server does (CallService.recordEvent behind the actor's
 *                 other writes); --down seconds later PostgreSQL starts again. Measured from its
 *                 return (it answers again) until the backlog is 0: ms, writes/s drained (rows
 *                 landed / ms), the time to the first write that lands; then the rows are
 *                 counted (lost = writes - rows);
 *   write-behind  the same writes through the same WriteBehind with the database up (no
 *                 outage), from the first enqueue until the backlog is 0;
 *   bare          the same writes straight through the same Prisma client (CallService.recordEvent),
 *                 --keys sequences in parallel, as the write-behind runs them, no queue.
 *
 * Medians over --rounds are reported; every round is in the JSON. --dist DIR measures another
 * build (e.g. an older checkout's dist; a WriteBehind before the retries had the constructor
 * (log, onFailure) and dropped what failed, which this script handles).
 *
 * Bounded: --writes at most 100,000, every wait has a timeout, and the whole run a watchdog;
 * the PostgreSQL is removed on every exit path.
 *
 *   node scripts/bench-writebehind.mjs [--writes 10000] [--keys 100] [--down 5] [--rounds 3]
 *        [--dist dist] [--out FILE]   (--help describes them all)
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OUT_OPTION, parseOptions } from './lib/options.mjs';
import { postgresVersion, startOwnPostgres } from './lib/ownPostgres.mjs';
import { BenchRun } from './lib/runner.mjs';
import { median, r1, table, verdict } from './lib/stats.mjs';
import { ROOT, loadavg, machineMeta, packageVersion } from './lib/system.mjs';

const require = createRequire(path.join(ROOT, 'package.json'));

const { values: o } = parseOptions(
  'node scripts/bench-writebehind.mjs',
  {
    writes: { type: 'integer', default: 10_000, min: 1, max: 100_000, arg: 'N', help: 'call-event writes per measurement' },
    keys: { type: 'integer', default: 100, min: 1, max: 10_000, arg: 'K', help: 'participants the writes are keyed by (sequences in parallel)' },
    down: { type: 'integer', default: 5, min: 1, max: 120, arg: 'S', help: 'seconds PostgreSQL stays down after the writes are enqueued' },
    rounds: { type: 'integer', default: 3, min: 1, max: 5, help: 'rounds of the three measurements (medians reported)' },
    'drain-timeout': { type: 'integer', default: 120, min: 1, max: 600, arg: 'S', help: 'seconds a backlog may take to drain (then recorded as a timeout)' },
    dist: { type: 'string', default: 'dist', arg: 'DIR', help: 'the build to measure (its server/db/database.js and server/rooms/writeBehind.js)' },
    'log-level': { type: 'string', default: 'info', arg: 'LEVEL', help: "the write-behind's log level (the server's default; written to a temporary file)" },
    out: OUT_OPTION,
  },
  'Backlog of writes behind signaling drained per second after a PostgreSQL outage; rows lost.',
);
const DIST = path.resolve(o.dist);

/**
 * The parts of the build used here (it is CommonJS).
 * @typedef {{ callEvent: { create(args: object): Promise<unknown> }, participant: { createMany(args: object): Promise<unknown> }, $disconnect(): Promise<void> }} Prisma
 * @typedef {{ prisma: Prisma, close(): Promise<void> }} Database
 * @typedef {{ create(input: { roomId?: string }): Promise<{ id: string }>, recordEvent(callId: string, participantId: string | null, type: string, payload: Record<string, unknown>, at: Date): Promise<void> }} CallService
 * @typedef {{ enqueue(key: string, what: string, write: () => Promise<unknown>): void, flush(timeoutMs?: number): Promise<boolean | void>, readonly pending?: number }} WriteBehind
 * @typedef {{ openDatabase(o: { databaseUrl: string, dataDir: string, migrate?: boolean }): Promise<Database>, runPostgresMigrations(url: string): Promise<string[]> }} DatabaseModule
 * @typedef {new (log: unknown, opts?: unknown) => WriteBehind} WriteBehindClass
 */

const run = new BenchRun({ doing: 'stopping PostgreSQL and cleaning up...' });
/** @param {string} msg */
const log = (msg) => console.error(msg);

/**
 * @typedef {object} OutageRow
 * @property {number} round
 * @property {number} enqueue_ms enqueueing every write (the database down)
 * @property {number} heap_delta_mb heap used after the enqueue minus before (rough: no forced GC)
 * @property {number} restart_ms PostgreSQL's start until it answered
 * @property {number | null} first_write_ms its return to the first write that landed (null: none, or not known)
 * @property {number | null} drain_ms its return to a backlog of 0; null on a timeout
 * @property {number | null} writes_per_s rows / drain_ms (the writes that landed)
 * @property {number} rows
 * @property {number} lost writes - rows
 * @property {number} failed_writes writes the WriteBehind gave up on (its onFailure: logged as not written)
 * @property {string} loadavg
 */
/**
 * @typedef {object} UpRow
 * @property {number} round
 * @property {number | null} ms first write (or enqueue) to the last done; null on a timeout
 * @property {number | null} writes_per_s
 * @property {number} rows
 * @property {number} lost
 * @property {string} loadavg
 */

const results = {
  /** @type {Record<string, unknown>} */
  meta: {},
  options: { ...o, dist: DIST },
  /** @type {OutageRow[]} */
  outage: [],
  /** @type {UpRow[]} */
  write_behind_up: [],
  /** @type {UpRow[]} */
  bare: [],
  /** @type {Record<string, { ms: number | null, writes_per_s: number | null, lost: number | null, first_write_ms?: number | null }>} */
  summary: {},
  /** @type {Record<string, number>} the write-behind's log lines by level */
  log_lines: {},
  /** @type {string[]} */
  notes: [],
  /** @type {string[]} */
  failures: [],
  ok: false,
};

/** The build's modules. */
function loadBuild() {
  const file = (/** @type {string} */ rel) => path.join(DIST, 'server', rel);
  try {
    return {
      /** @type {DatabaseModule} */
      database: require(file('db/database.js')),
      /** @type {{ CallService: new (prisma: Prisma) => CallService }} */
      calls: require(file('calls/service.js')),
      /** @type {{ WriteBehind: WriteBehindClass }} */
      writeBehind: require(file('rooms/writeBehind.js')),
    };
  } catch (err) {
    throw new Error(`${DIST} has no server build (npm run build): ${err instanceof Error ? err.message : err}`);
  }
}

/**
 * A fresh call and `keys` participants of it: where one measurement writes.
 * @param {Prisma} prisma
 * @param {CallService} calls
 * @param {string} label
 */
async function freshCall(prisma, calls, label) {
  const call = await calls.create({ roomId: `bench-wb-${label}` });
  const ids = Array.from({ length: o.keys }, () => crypto.randomUUID());
  await prisma.participant.createMany({ data: ids.map((id, i) => ({ id, callId: call.id, userId: `bench-wb-${i}`, role: 'participant' })) });
  return { callId: call.id, participantIds: ids };
}

/**
 * The server's call event (a DTMF tone, as RoomContext.recordEvent writes it), number i.
 * @param {CallService} calls
 * @param {{ callId: string, participantIds: string[] }} target
 * @param {number} i
 */
function eventWrite(calls, target, i) {
  const participantId = /** @type {string} */ (target.participantIds[i % target.participantIds.length]);
  const at = new Date();
  return { key: participantId, write: () => calls.recordEvent(target.callId, participantId, 'dtmf', { tones: String(i % 10), seq: i }, at) };
}

/** @param {string} url @param {string} callId */
async function countRows(url, callId) {
  /** @type {typeof import('pg')} */
  const pg = require('pg');
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000, query_timeout: 60_000 });
  await c.connect();
  try {
    return Number((await c.query('SELECT count(*)::int AS n FROM call_events WHERE call_id = $1', [callId])).rows[0].n);
  } finally {
    await c.end();
  }
}

/**
 * A WriteBehind of the build, its backlog followed (0 reached, first decrease). A build
 * before the retries had (log, onFailure) and no backlog: then `pending` stays unknown.
 * @param {WriteBehindClass} WriteBehind
 * @param {unknown} logger
 */
function newWriteBehind(WriteBehind, logger) {
  const watch = { failures: 0, lastZeroAt: /** @type {number | null} */ (null), firstDropAt: /** @type {number | null} */ (null), max: 0, known: true };
  const onFailure = () => watch.failures++;
  const onBacklog = (/** @type {number} */ n) => {
    if (n > watch.max) watch.max = n;
    else if (watch.firstDropAt === null) watch.firstDropAt = performance.now();
    if (n === 0) watch.lastZeroAt = performance.now();
  };
  const retries = Object.getOwnPropertyDescriptor(WriteBehind.prototype, 'pending') !== undefined;
  const wb = retries ? new WriteBehind(logger, { onFailure, onBacklog }) : new WriteBehind(logger, onFailure);
  watch.known = retries;
  /** Forgets what was seen: from now on, `backlog` writes wait. */
  const reset = (backlog = 0) => {
    watch.lastZeroAt = null;
    watch.firstDropAt = null;
    watch.max = backlog;
  };
  return { wb, watch, reset, retries };
}

/**
 * Waits for the write-behind to drain, drain-timeout at most; true if it did.
 * @param {WriteBehind} wb
 */
async function drained(wb) {
  const timeoutMs = o['drain-timeout'] * 1000;
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const done = await Promise.race([wb.flush().then(() => true), new Promise((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
  clearTimeout(timer);
  return done === true;
}

async function main() {
  const build = loadBuild();
  results.meta = { ...machineMeta(), dist: DIST, postgres: postgresVersion(), prisma: packageVersion('@prisma/client'), pg: packageVersion('pg') };
  const perRoundMs = (o.down + 3 * o['drain-timeout']) * 1000 + o.writes * 3;
  run.watchdog(120_000 + o.rounds * perRoundMs);

  const dir = run.tempDir('sb-bench-wb-');
  const logFile = path.join(dir, 'write-behind.log');
  /** @type {typeof import('pino')} */
  const pino = require('pino');
  const destination = pino.destination({ dest: logFile, sync: false });
  const logger = pino({ level: o['log-level'] }, destination);

  log(`bench: ${results.meta.postgres ?? 'PostgreSQL'} of its own; build ${DIST}`);
  const pgs = await startOwnPostgres();
  process.on('exit', () => pgs.killNow());
  run.afterStopping(() => pgs.remove());
  log(`  PostgreSQL on ${pgs.url}`);
  const applied = await build.database.runPostgresMigrations(pgs.url);
  log(`  migrated: ${applied.length} migrations`);
  const db = await build.database.openDatabase({ databaseUrl: pgs.url, dataDir: dir, migrate: false });
  run.beforeStopping(() => db.close());
  const calls = new build.calls.CallService(db.prisma);
  const { wb, watch, reset, retries } = newWriteBehind(build.writeBehind.WriteBehind, logger);
  results.meta.write_behind_retries = retries;
  if (!retries) results.notes.push("this build's WriteBehind does not retry (constructor (log, onFailure)): a write that fails is dropped");

  // Warm-up (not measured): the Prisma client's first queries, the pool's connections.
  const warm = await freshCall(db.prisma, calls, 'warmup');
  for (let i = 0; i < Math.min(500, o.writes); i++) {
    const { key, write } = eventWrite(calls, warm, i);
    wb.enqueue(key, 'call event', write);
  }
  await drained(wb);

  const N = o.writes;
  for (let round = 1; round <= o.rounds; round++) {
    log(`\nround ${round}/${o.rounds}: ${N} writes over ${o.keys} keys`);

    // bare: the same writes straight through the client, one sequence per key, all keys at once.
    const bare = async () => {
      const target = await freshCall(db.prisma, calls, `bare-${round}`);
      const load = loadavg();
      const t0 = performance.now();
      const chains = Array.from({ length: o.keys }, async (_, k) => {
        for (let i = k; i < N; i += o.keys) await eventWrite(calls, target, i).write();
      });
      const ok = await Promise.race([Promise.all(chains).then(() => true), sleep(o['drain-timeout'] * 1000).then(() => false)]);
      const ms = performance.now() - t0;
      const rows = await countRows(pgs.url, target.callId);
      results.bare.push({ round, ms: ok ? r1(ms) : null, writes_per_s: ok ? r1(N / (ms / 1000)) : null, rows, lost: N - rows, loadavg: load });
      log(`  bare: ${ok ? `${r1(ms)} ms, ${r1(N / (ms / 1000))} writes/s` : 'TIMEOUT'}; rows ${rows}/${N}`);
    };

    // write-behind, the database up.
    const up = async () => {
      const target = await freshCall(db.prisma, calls, `up-${round}`);
      const load = loadavg();
      reset();
      const t0 = performance.now();
      for (let i = 0; i < N; i++) {
        const { key, write } = eventWrite(calls, target, i);
        wb.enqueue(key, 'call event', write);
      }
      const ok = await drained(wb);
      const ms = (watch.known ? (watch.lastZeroAt ?? performance.now()) : performance.now()) - t0;
      const rows = await countRows(pgs.url, target.callId);
      results.write_behind_up.push({ round, ms: ok ? r1(ms) : null, writes_per_s: ok ? r1(N / (ms / 1000)) : null, rows, lost: N - rows, loadavg: load });
      log(`  write-behind, database up: ${ok ? `${r1(ms)} ms, ${r1(N / (ms / 1000))} writes/s` : 'TIMEOUT'}; rows ${rows}/${N}`);
    };
    // Alternately first: neither always gets the warmer (or the busier) machine.
    for (const measure of round % 2 ? [bare, up] : [up, bare]) await measure();

    // The outage.
    {
      const target = await freshCall(db.prisma, calls, `outage-${round}`);
      const failures0 = watch.failures;
      await pgs.stop();
      const load = loadavg();
      reset();
      const heap0 = process.memoryUsage().heapUsed;
      const t0 = performance.now();
      for (let i = 0; i < N; i++) {
        const { key, write } = eventWrite(calls, target, i);
        wb.enqueue(key, 'call event', write);
      }
      const enqueueMs = performance.now() - t0;
      const heapDelta = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
      await sleep(o.down * 1000);
      const pending = watch.known ? /** @type {number} */ (wb.pending) : null;
      reset(pending ?? 0);
      const tStart = performance.now();
      await pgs.start();
      const back = performance.now();
      const ok = await drained(wb);
      const end = watch.known ? (watch.lastZeroAt ?? (pending === 0 ? back : performance.now())) : performance.now();
      const drainMs = Math.max(0, end - back);
      const rows = await countRows(pgs.url, target.callId);
      /** @type {OutageRow} */
      const row = {
        round,
        enqueue_ms: r1(enqueueMs) ?? 0,
        heap_delta_mb: r1(heapDelta) ?? 0,
        restart_ms: r1(back - tStart) ?? 0,
        first_write_ms: watch.known && watch.firstDropAt !== null ? r1(Math.max(0, watch.firstDropAt - back)) : null,
        drain_ms: ok ? r1(drainMs) : null,
        // Of the writes that landed (a WriteBehind that drops has none to drain).
        writes_per_s: ok ? (rows === 0 ? 0 : r1(rows / (Math.max(drainMs, 1) / 1000))) : null,
        rows,
        lost: N - rows,
        failed_writes: watch.failures - failures0,
        loadavg: load,
      };
      results.outage.push(row);
      log(
        `  outage: ${o.down} s down with ${pending ?? '?'} writes waiting (enqueued in ${row.enqueue_ms} ms, heap +${row.heap_delta_mb} MB); ` +
          `PostgreSQL back after ${row.restart_ms} ms; first write ${row.first_write_ms ?? '-'} ms, backlog 0 ${ok ? `${row.drain_ms} ms after its return (${row.writes_per_s} writes/s)` : 'TIMEOUT'}; rows ${rows}/${N}`,
      );
      if (!ok) results.notes.push(`round ${round}: the backlog did not drain within ${o['drain-timeout']} s`);
      if (row.lost) results.notes.push(`round ${round}: ${row.lost} of ${N} writes made during the outage are lost`);
    }
  }

  /**
   * @param {Array<{ ms?: number | null, drain_ms?: number | null, writes_per_s: number | null, lost: number, first_write_ms?: number | null }>} rows
   */
  const summarise = (rows) => ({
    ms: median(rows.map((r) => r.drain_ms ?? r.ms ?? null)),
    writes_per_s: median(rows.map((r) => r.writes_per_s)),
    lost: median(rows.map((r) => r.lost)),
  });
  results.summary = {
    outage: { ...summarise(results.outage), first_write_ms: median(results.outage.map((r) => r.first_write_ms)) },
    write_behind_up: summarise(results.write_behind_up),
    bare: summarise(results.bare),
  };
  for (const r of [...results.bare, ...results.write_behind_up])
    if (r.lost) results.failures.push(`round ${r.round}: ${r.lost} writes lost with the database up`);

  await db.close();
  try {
    destination.flushSync();
  } catch {
    // nothing written yet
  }
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const level = /"level":(\d+)/.exec(line)?.[1];
    if (level) results.log_lines[pino.levels.labels[Number(level)] ?? level] = (results.log_lines[pino.levels.labels[Number(level)] ?? level] ?? 0) + 1;
  }
  results.ok = results.failures.length === 0;
}

function report() {
  const m = results.meta;
  const s = results.summary;
  console.log(`\nSwitchboard write-behind benchmark  ${m.date}`);
  console.log(
    `build ${m.dist} | Node ${m.node} | ${m.cpu_model} | ${m.cpu_cores} cores | Prisma ${m.prisma}, pg ${m.pg} | ${m.postgres ?? 'PostgreSQL'} of its own`,
  );
  console.log(`${o.writes} call-event writes over ${o.keys} participants; outage: PostgreSQL down ${o.down} s; median of ${o.rounds} round(s)\n`);
  console.log(
    table(
      ['measurement', 'ms', 'writes/s', 'rows lost', 'first write ms'],
      [
        ['after the outage: its return to backlog 0', s.outage?.ms, s.outage?.writes_per_s, s.outage?.lost, s.outage?.first_write_ms],
        ['write-behind, database up', s.write_behind_up?.ms, s.write_behind_up?.writes_per_s, s.write_behind_up?.lost, null],
        ['bare Prisma writes, database up', s.bare?.ms, s.bare?.writes_per_s, s.bare?.lost, null],
      ],
    ),
  );
  console.log(`\nlog lines: ${JSON.stringify(results.log_lines)}`);
  if (results.notes.length) console.log(`\nnotes:\n${results.notes.map((n) => `  - ${n}`).join('\n')}`);
  console.log(`\n${verdict(results.failures, 'OK: every round was measured')}`);
}

await run.finish({ main, results, report, out: o.out ? path.resolve(o.out) : undefined });
