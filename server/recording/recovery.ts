import type { Stats } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { Prisma, PrismaClient } from '../generated/prisma/client';
import type { RecordingFinished } from '../protocol';
import { probeDuration, remux, type FfmpegBinaries } from './ffmpeg';
import { resolveRecordingPath, UnsafePathError } from './files';
import { finishedRecording, recoveredFile, type FileFacts, type RecoveryReason } from './outcome';

/**
 * Crash recovery of recorded files: rows left in status `recording` by a
 * process that is gone (this server before a restart, or a dead node of a
 * cluster). For each file: an ffmpeg of that process still writing it on this
 * machine (orphaned when its parent was killed) is killed; the partial file
 * (no cues, no duration) is remuxed into a playable one and replaced
 * atomically; it is measured like a normal finish; and its row becomes
 * `interrupted` (or `empty`, or `failed` when the file is gone), with an error
 * saying it was recovered after a crash. Then downloads and deletes work.
 *
 * Which rows are orphaned is the caller's to say (server/rooms/recovery.ts);
 * each row is closed by a conditional update, so two nodes recovering the same
 * row (a reaper and a restarting node) close it once.
 */
export interface RecordingRecoveryDeps {
  prisma: PrismaClient;
  /** Absolute; file_path values are relative to it. */
  recordingsDir: string;
  ffmpeg: FfmpegBinaries | undefined;
  log: FastifyBaseLogger;
}

export interface RecoveredSession {
  room: string;
  finished: RecordingFinished;
}

export interface RecoveredRecordings {
  /** Files closed, by the status they got. */
  files: { interrupted: number; empty: number; failed: number };
  /** One per recording session with a file closed here: its recording-finished payload and its call's room. */
  sessions: RecoveredSession[];
  /** Per call: the newest write to its files before recovery touched them (when its media last flowed). */
  lastWrites: Map<string, Date>;
  /** ffmpeg processes of the dead process found still running on this machine, and killed. */
  orphans: number;
}

/** How long to wait for killed orphaned ffmpeg processes to be gone (their files closed). */
const ORPHAN_EXIT_MS = 2000;

/**
 * The rows no live process is writing, at start-up. On one node (no shared
 * room state) that is every row but this process's own; in a cluster, rows of
 * nodes the cluster no longer knows (a dead node still known is left to its
 * reaper, this node's previous life to its own reaping at start), and every
 * row of a call that has no live room (`calls`).
 */
export function orphanedAtStartup(o: { clustered: boolean; self: string; bootedAt: Date; known: string[]; calls: string[] }): Prisma.RecordingWhereInput {
  if (!o.clustered) return { OR: [{ nodeId: null }, { nodeId: { not: o.self } }, { startedAt: { lt: o.bootedAt } }] };
  return { OR: [{ nodeId: { not: null, notIn: [...new Set([o.self, ...o.known])] } }, ...(o.calls.length > 0 ? [{ callId: { in: o.calls } }] : [])] };
}

/** The rows of a call no live room holds, but those of a live node (it may still be writing them). */
export function ofOrphanedCall(callId: string, live: string[]): Prisma.RecordingWhereInput {
  return live.length === 0 ? { callId } : { callId, OR: [{ nodeId: null }, { nodeId: { notIn: live } }] };
}

/** The rows of a dead node (this node's own previous life: only rows from before this process started). */
export function ofNode(nodeId: string, self: string, bootedAt: Date): Prisma.RecordingWhereInput {
  return nodeId === self ? { nodeId, startedAt: { lt: bootedAt } } : { nodeId };
}

export class RecordingRecovery {
  constructor(private readonly deps: RecordingRecoveryDeps) {}

  /** Closes the rows in status `recording` that `where` selects. */
  async recover(where: Prisma.RecordingWhereInput, reason: RecoveryReason): Promise<RecoveredRecordings> {
    const { prisma, log } = this.deps;
    const out: RecoveredRecordings = { files: { interrupted: 0, empty: 0, failed: 0 }, sessions: [], lastWrites: new Map(), orphans: 0 };
    const rows = await prisma.recording.findMany({
      where: { AND: [where, { status: 'recording' }] },
      include: { call: { select: { roomId: true } } },
      orderBy: [{ startedAt: 'asc' }, { segment: 'asc' }],
    });
    if (rows.length === 0) return out;
    const files = new Map(rows.map((r) => [r.id, this.pathOf(r.filePath)]));
    // As the dead process left them (their last write is when its media stopped), before anything here touches them.
    const before = new Map(await Promise.all(rows.map(async (r) => [r.id, await statOrNull(files.get(r.id) ?? null)] as const)));
    out.orphans = await stopWriters(
      [...files.values()].filter((f): f is string => f !== null),
      log,
    );

    const rooms = new Map<string, { room: string; callId: string }>();
    for (const row of rows) {
      const file = files.get(row.id) ?? null;
      const last = before.get(row.id) ?? null;
      let facts: FileFacts = { exists: false };
      const current = await statOrNull(file);
      if (file && current?.isFile()) {
        if (current.size > 0 && !(await remux(this.deps.ffmpeg, file)))
          log.warn({ recordingId: row.id, file }, 'could not remux a recovered recording; kept as it was');
        const size = await stat(file).then(
          (s) => s.size,
          () => 0,
        );
        facts = { exists: true, size, durationMs: size > 0 ? await probeDuration(this.deps.ffmpeg, file) : null };
      }
      if (file && row.kind === 'participant') await rm(file.replace(/\.[^./]+$/, '.sdp'), { force: true }).catch(() => undefined);
      const outcome = recoveredFile(facts, { reason, nodeId: row.nodeId });
      // The file ended when it was last written (the process died then); a missing one, now.
      const endedAt = last?.mtime ?? new Date();
      const { count } = await prisma.recording.updateMany({ where: { id: row.id, status: 'recording' }, data: { ...outcome, endedAt } });
      if (count === 0) continue; // closed meanwhile by another node
      out.files[outcome.status as keyof RecoveredRecordings['files']]++;
      rooms.set(row.sessionId, { room: row.call.roomId, callId: row.callId });
      const newest = out.lastWrites.get(row.callId);
      if (last && (!newest || last.mtime > newest)) out.lastWrites.set(row.callId, last.mtime);
    }
    for (const [sessionId, { room, callId }] of rooms) out.sessions.push({ room, finished: await this.summarise(sessionId, callId, reason) });
    return out;
  }

  /** The recording-finished payload of a recovered session: all its files (those finished before the crash too). */
  private async summarise(sessionId: string, callId: string, reason: RecoveryReason): Promise<RecordingFinished> {
    const rows = await this.deps.prisma.recording.findMany({
      where: { sessionId },
      orderBy: [{ kind: 'desc' }, { startedAt: 'asc' }, { segment: 'asc' }],
    });
    const start = Math.min(...rows.map((r) => r.startedAt.getTime()));
    const end = Math.max(...rows.map((r) => (r.endedAt ?? r.startedAt).getTime()));
    // The mode is not stored: a composite session that crashed before its render has only participant files.
    const mode = rows.some((r) => r.kind === 'composite') ? 'composite' : 'participant';
    return finishedRecording({ id: sessionId, callId, mode }, rows, Math.max(0, end - start) / 1000, reason);
  }

  private pathOf(rel: string): string | null {
    try {
      return resolveRecordingPath(this.deps.recordingsDir, rel);
    } catch (err) {
      if (err instanceof UnsafePathError) {
        this.deps.log.error({ filePath: rel, reason: err.message }, 'recovered recording has a path outside RECORDINGS_DIR; its file is not touched');
        return null;
      }
      throw err;
    }
  }
}

const statOrNull = (file: string | null): Promise<Stats | null> => (file ? stat(file).catch(() => null) : Promise.resolve(null));

/**
 * Kills the processes on this machine writing any of `files`: an ffmpeg whose
 * server was SIGKILLed lives on, reparented, waiting for RTP that never comes.
 * SIGKILL, because a signal to stop gently does not work there: ffmpeg notices
 * one SIGINT only at its next packet, and two make it abandon the trailer (the
 * remux rebuilds it either way). Found by their command lines in /proc (Linux;
 * elsewhere there is nothing to find). The paths are a dead process's own
 * output files, so nothing else names them.
 */
async function stopWriters(files: string[], log: FastifyBaseLogger): Promise<number> {
  const wanted = new Set(files);
  const pids: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').some((arg) => wanted.has(arg))) pids.push(Number(entry));
  }
  if (pids.length === 0) return 0;
  log.warn({ pids }, 'killing ffmpeg processes a crashed server left writing recordings');
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  const deadline = Date.now() + ORPHAN_EXIT_MS;
  while (Date.now() < deadline && (await Promise.all(pids.map(alive))).some(Boolean)) await sleep(20);
  return pids.length;
}

/** Whether a process runs (a zombie, exited but not yet reaped by its new parent, does not). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return false;
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}
