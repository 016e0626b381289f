import type { RecordingFile, RecordingFileStatus, RecordingFinished, RecordingMode } from '../protocol';

/**
 * What a recording came to, from its rows: the files of a session and its
 * overall status (the recording-finished payload). Pure: the recorder
 * measures the files, these decide.
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
