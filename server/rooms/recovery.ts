import { AppError } from '../errors';
import { crashTime, type RecoveryReason } from '../recording/outcome';
import { ofNode, ofOrphanedCall, orphanedAtStartup, type RecordingRecovery, type RecoveredRecordings } from '../recording/recovery';
import type { RoomContext } from './context';

/**
 * What a dead process leaves open, closed: at start-up (before the server
 * takes traffic) and when a cluster reaps a dead node.
 *
 * - Calls active in the database with no live room state are ended like any
 *   other call (CallService.end: status ended, ended_at, recording false, every
 *   participant's left_at), under the room's lock so a join meanwhile either
 *   comes first (the room lives) or opens a new call. On one node room state
 *   is in memory, so every active call at start-up is one; in a cluster, one
 *   whose room Redis no longer has. Events as for a normal end: the recording's
 *   `recording.finished`, `call.ended`, and `participant.left` (reason
 *   `call-ended`) for everyone still in.
 * - Their time is the last write of the call's recording files, else, with
 *   nobody left in, the last leave, else now (crashTime, recording/outcome.ts).
 *   A call ended here may also be one a clean shutdown left active (its
 *   participants all gone, its recordings finalised): it ends at its last leave.
 * - Recording files no live process writes are repaired and closed
 *   (recording/recovery.ts), and announced: `recording.finished` with reason
 *   `server-crashed` (or `node-lost` for a reaped node), also to the room.
 *
 * A dead node's room state (media, participants, empty rooms) is the
 * cluster's Failover.reapNode, which calls nodeLost for its recordings.
 */
export interface CrashRecoveryDeps {
  recordings: RecordingRecovery;
  /** Room state shared with other nodes (REDIS_URL): only what no live node owns is recovered. */
  clustered: boolean;
  /** The nodes the cluster knows: heartbeating, or dead and to be reaped (one node: none). */
  nodes(): Promise<{ live: string[]; dead: string[] }>;
  /** When this process started: rows of this node from before are its previous life's. */
  bootedAt: Date;
}

export interface StartupRecovery {
  calls: number;
  participants: number;
  recordings: RecoveredRecordings['files'];
  orphanedFfmpeg: number;
  ms: number;
}

export class CrashRecovery {
  constructor(
    private readonly ctx: RoomContext,
    private readonly deps: CrashRecoveryDeps,
  ) {}

  /** At start-up, before taking traffic: calls without live rooms, and recordings nobody writes. Logs one line. */
  async atStartup(): Promise<StartupRecovery> {
    const t0 = performance.now();
    const { log } = this.ctx.deps;
    const total: StartupRecovery = { calls: 0, participants: 0, recordings: { interrupted: 0, empty: 0, failed: 0 }, orphanedFfmpeg: 0, ms: 0 };
    const add = (r: RecoveredRecordings): void => {
      for (const k of ['interrupted', 'empty', 'failed'] as const) total.recordings[k] += r.files[k];
      total.orphanedFfmpeg += r.orphans;
    };
    const { clustered, bootedAt } = this.deps;
    const nodes = clustered ? await this.deps.nodes() : { live: [], dead: [] };
    const orphanCalls: string[] = [];
    for (const call of await this.ctx.deps.calls.activeCalls()) {
      const ended = await this.endIfOrphaned(call, nodes.live).catch((err: unknown) => {
        log.error({ err, callId: call.id }, 'recovering a call after a crash failed');
        return null;
      });
      if (!ended) continue;
      orphanCalls.push(call.id);
      add(ended.recordings);
      if (ended.participants === null) continue; // ended meanwhile, by someone else
      total.calls++;
      total.participants += ended.participants;
    }
    const known = [...nodes.live, ...nodes.dead];
    add(await this.recordings(orphanedAtStartup({ clustered, self: this.ctx.nodeId, bootedAt, known, calls: orphanCalls }), 'server-crashed'));
    total.ms = Math.round(performance.now() - t0);
    const found = total.calls + total.recordings.interrupted + total.recordings.empty + total.recordings.failed > 0;
    if (found) log.warn(total, 'crash recovery: closed what the previous run left open (calls ended, recordings repaired)');
    else log.info(total, 'crash recovery: nothing was left open');
    return total;
  }

  /** A dead node's recordings (the cluster's reaper; this node's own previous life at start). */
  async nodeLost(nodeId: string): Promise<{ recordings: number; orphanedFfmpeg: number }> {
    const self = this.ctx.nodeId;
    const r = await this.recordings(ofNode(nodeId, self, this.deps.bootedAt), nodeId === self ? 'server-crashed' : 'node-lost');
    return { recordings: r.files.interrupted + r.files.empty + r.files.failed, orphanedFfmpeg: r.orphans };
  }

  /**
   * Under the room's lock: ends the call if no live room holds it (`live`: nodes
   * whose recordings are left alone). Null when a live room holds it;
   * `participants` null when it was ended meanwhile by someone else.
   */
  private endIfOrphaned(
    call: { id: string; roomId: string },
    live: string[],
  ): Promise<{ recordings: RecoveredRecordings; participants: number | null } | null> {
    const { store, locks, deps } = this.ctx;
    return locks.run(call.roomId, async () => {
      if ((await store.getRoom(call.roomId))?.callId === call.id) return null;
      if ((await deps.calls.get(call.id)).status !== 'active') return null;
      // Its recording first: the call's end is then announced with its files playable.
      const recordings = await this.recordings(ofOrphanedCall(call.id, live), 'server-crashed');
      const current = await deps.calls.get(call.id);
      const open = current.participants.filter((p) => p.leftAt === null);
      const seen = [current.startedAt, ...current.participants.flatMap((p) => [p.joinedAt, p.leftAt])].filter((d): d is Date => d !== null);
      const at = crashTime({ now: new Date(), lastWrite: recordings.lastWrites.get(call.id) ?? null, seen, someoneIn: open.length > 0 });
      try {
        await deps.calls.end(call.id, at);
      } catch (err) {
        if (err instanceof AppError && err.code === 'CALL_ALREADY_ENDED') return { recordings, participants: null };
        throw err;
      }
      for (const p of open) {
        deps.events.emit('participant.left', {
          call_id: call.id,
          room: call.roomId,
          participant_id: p.id,
          user_id: p.userId,
          reason: 'call-ended',
          at: at.toISOString(),
        });
      }
      return { recordings, participants: open.length };
    });
  }

  /** Recovers the selected recordings and announces each session as a finished recording (to its room, if its call is still there). */
  private async recordings(where: Parameters<RecordingRecovery['recover']>[0], reason: RecoveryReason): Promise<RecoveredRecordings> {
    const { deps, clients, store } = this.ctx;
    const r = await this.deps.recordings.recover(where, reason);
    for (const { room, finished } of r.sessions) {
      deps.metrics.recordingFinished(finished);
      if ((await store.getRoom(room).catch(() => undefined))?.callId === finished.call_id) clients.send({ room }, 'recording-finished', finished);
      deps.events.emit('recording.finished', { call_id: finished.call_id, room, recording: finished, at: new Date().toISOString() });
    }
    return r;
  }
}
