import type { RecordingFile, RecordingFileStatus, RecordingFinished, RecordingMode } from '../protocol';

/**
 * What a recording came to, from its rows: the files of a session and its
 * overall status (the recording-finished payload), and what crash recovery
 * makes of a file its ffmpeg left open. Pure: the recorder and the recovery
 * measure the files, these decide.
 */
export interface RecordingRow {
  id: string;
  participantId: string | null;
  segment: number;
  status: string;
  filePath: string;
  sizeBytes: bigint | null;
  durationMs: number | null;
  error: string | null;
}

export function fileOf(r: RecordingRow): RecordingFile {
  return {
    id: r.id,
    participant_id: r.participantId,
    segment: r.segment,
    status: r.status as RecordingFileStatus,
    file_path: r.filePath,
    size_bytes: r.sizeBytes === null ? null : Number(r.sizeBytes),
    duration_ms: r.durationMs,
    error: r.error,
  };
}

/** completed: at least one file has media (interrupted ones too); empty: nothing was recorded; else failed. */
export function sessionStatus(files: ReadonlyArray<Pick<RecordingFile, 'status'>>): RecordingFinished['status'] {
  if (files.some((f) => f.status === 'completed' || f.status === 'interrupted')) return 'completed';
  return files.length === 0 || files.every((f) => f.status === 'empty') ? 'empty' : 'failed';
}

/** The recording-finished payload of a session from its rows (composite first, then by start and segment). */
export function finishedRecording(
  session: { id: string; callId: string; mode: RecordingMode },
  rows: RecordingRow[],
  durationSeconds: number,
  reason: string,
): RecordingFinished {
  const files = rows.map(fileOf);
  return {
    recording_id: session.id,
    call_id: session.callId,
    status: sessionStatus(files),
    duration: Math.round(durationSeconds * 10) / 10,
    files,
    reason,
    mode: session.mode,
  };
}

/** Why recovery closed a recording: after this node restarted, or after another node was found dead. */
export type RecoveryReason = 'server-crashed' | 'node-lost';

/** What crash recovery found of a file: absent, or its size and (ffprobe's) duration after the remux. */
export type FileFacts = { exists: false } | { exists: true; size: number; durationMs: number | null };

/**
 * The row of a file whose ffmpeg died with its server: interrupted (repaired,
 * playable) when it holds media, empty when it holds none (as a normal finish
 * says of a file without duration), failed when the file is gone. The error
 * says it was recovered and why.
 */
export function recoveredFile(
  facts: FileFacts,
  cause: { reason: RecoveryReason; nodeId: string | null },
): { status: RecordingFileStatus; sizeBytes: bigint | null; durationMs: number | null; error: string } {
  const who = cause.reason === 'node-lost' ? `node ${cause.nodeId ?? '?'} was lost` : 'the server stopped (crashed or was killed)';
  if (!facts.exists)
    return { status: 'failed', sizeBytes: null, durationMs: null, error: `recovered after a crash: ${who} while recording, and the file is missing` };
  if (facts.size > 0 && facts.durationMs !== null && facts.durationMs > 0) {
    return {
      status: 'interrupted',
      sizeBytes: BigInt(facts.size),
      durationMs: facts.durationMs,
      error: `recovered after a crash: ${who} while recording; the file holds what was written until then`,
    };
  }
  return {
    status: 'empty',
    sizeBytes: facts.size > 0 ? BigInt(facts.size) : null,
    durationMs: null,
    error: `recovered after a crash: ${who} before any playable media was written`,
  };
}

/**
 * When a call its process left open ended, for its ended_at and its
 * participants' left_at: the last write of its recording files (ffmpeg
 * flushes a cluster every second while media flows, so that is within about
 * a second of the crash), or, with nobody left in it, when the last
 * participant left; never before anything known of the call (`seen`: its
 * start, joins and leaves), never after now. With people in it and no
 * recording, nothing tells when the process died: the time of recovery, as
 * ending the call by hand would record.
 */
export function crashTime(i: { now: Date; lastWrite: Date | null; seen: Date[]; someoneIn: boolean }): Date {
  const latest = (ds: Date[]) => Math.max(...ds.map((d) => d.getTime()));
  if (i.lastWrite) return new Date(Math.min(latest([i.lastWrite, ...i.seen]), i.now.getTime()));
  if (!i.someoneIn && i.seen.length > 0) return new Date(Math.min(latest(i.seen), i.now.getTime()));
  return i.now;
}
