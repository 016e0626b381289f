import type { ChildProcess } from 'node:child_process';
import type { Consumer, PlainTransport } from 'mediasoup/types';
import type { RecordingMode } from '../protocol';

/**
 * A room's recording (Session) and one ffmpeg writing one participant's segment
 * (Run), and the timings the recorder keeps (each explained where it is set).
 */
export interface Run {
  participantId: string;
  segment: number;
  rowId: string;
  fileAbs: string;
  sdpPath: string;
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: string[];
  transports: PlainTransport[];
  consumers: Consumer[];
  ports: number[];
  producerIds: string[];
  startedAt: number;
  stopping: boolean;
}

export interface Session {
  id: string;
  mode: RecordingMode;
  room: string;
  callId: string;
  startedAt: number;
  by: string | null;
  runs: Map<string, Run>;
  segments: Map<string, number>;
  restarts: Map<string, number[]>;
  stopping: boolean;
}

/**
 * ffmpeg must bind its ports within this time after start. It takes ~100 ms
 * on an idle machine, but several seconds on a saturated one (seen at load 20
 * on 2 cores), and a recording refused then is lost for good.
 */
export const FFMPEG_LISTEN_TIMEOUT_MS = 15_000;
/** How long to wait for the first key frame to leave before resuming audio anyway (a muted camera sends none). */
export const KEY_FRAME_WAIT_MS = 1500;
/** After one SIGINT, ffmpeg finalises in ~35 ms (seconds on a saturated machine); past this it is killed and the file marked failed. */
export const FFMPEG_STOP_TIMEOUT_MS = 10_000;
/** Longest cluster (WebM/Matroska): what a killed ffmpeg can lose at most. */
export const CLUSTER_MS = 1000;
/**
 * A run younger than this is not stopped before ffmpeg has started writing (see stopRun): 2.5 s
 * was enough idle, but a 3 s recording on a saturated machine came out empty.
 */
export const MIN_RUN_MS = 5000;
/** New producers of one participant within this window start one segment. */
export const PRODUCER_SETTLE_MS = 300;
/** ffmpeg's stream probing before it writes: short, since the SDP names the codecs and a key frame comes first. */
export const ANALYZE_DURATION_US = 1_000_000;
/** More restarts than this within a minute: ffmpeg keeps dying, stop retrying. */
export const MAX_RESTARTS_PER_MINUTE = 3;
