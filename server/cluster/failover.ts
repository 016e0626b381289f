import type { Rooms } from '../rooms';
import type { CrashRecovery } from '../rooms/recovery';

/**
 * What happens to rooms when a node goes away: a dead node's media moves to a
 * live one and its participants are announced as left (reapNode, run by the
 * one node that claimed the clean-up); a draining node hands its rooms over
 * (drain). On a single node, drain only waits for calls to finish.
 */
export class Failover {
  constructor(
    private readonly rooms: Rooms,
    /** Tells every connection on this node to come back elsewhere, then closes its transport (the signaling adapter). */
    private readonly handOffConnections: () => void,
    /** Closes the recording files a dead node left open. */
    private readonly recovery?: CrashRecovery,
  ) {}

  private get ctx() {
    return this.rooms.ctx;
  }

  /**
   * A node stopped heartbeating (this node claimed the clean-up): its media
   * rooms move to a live node (media-reset), then its participants are
   * announced as left. Media first, so that closing their media does not wait
   * on the dead node. Last, the recording files it was writing are repaired
   * and closed (interrupted), and announced as finished.
   */
  async reapNode(deadId: string): Promise<{ rooms: number; participants: number; recordings: number; orphanedFfmpeg: number }> {
    const { store, locks, deps } = this.ctx;
    const rooms = await store.roomsWithMediaOn(deadId);
    for (const room of rooms)
      await this.moveMedia(room, deadId, 'node-lost').catch((err: unknown) => deps.log.error({ err, room }, 'moving media off a dead node failed'));
    const participants = await store.participantsOnNode(deadId);
    for (const { room, id } of participants) {
      await locks
        .run(room, async () => {
          const [p, r] = await Promise.all([store.getParticipant(room, id), store.getRoom(room)]);
          if (p && r && p.nodeId === deadId) await this.rooms.presence.removeLocked(r, p, 'disconnected', null);
        })
        .catch((err: unknown) => deps.log.error({ err, room }, "removing a dead node's participant failed"));
    }
    await this.resumeEmptyTimers();
    const recovered = (await this.recovery?.nodeLost(deadId)) ?? { recordings: 0, orphanedFfmpeg: 0 };
    return { rooms: rooms.length, participants: participants.length, ...recovered };
  }

  /** Empty rooms whose end was timed by a node that is gone: time them here. */
  private async resumeEmptyTimers(): Promise<void> {
    const { store, cfg } = this.ctx;
    for (const name of await store.listRooms()) {
      if (this.rooms.presence.hasEmptyTimer(name)) continue;
      const room = await store.getRoom(name);
      if (room?.emptySince != null)
        this.rooms.presence.startEmptyTimer(room, room.emptySince, Math.max(0, room.emptySince + cfg.emptyRoomTimeoutMs - Date.now()));
    }
  }

  /**
   * Moves a room's media off `fromNode` to the least-loaded other node: its
   * recording stops (finalised when the node is draining; lost with a dead
   * one), the new routers open, and the room is told to negotiate again.
   */
  private async moveMedia(roomName: string, fromNode: string, reason: 'node-lost' | 'node-draining'): Promise<void> {
    const { store, locks, deps, nodeId, clients } = this.ctx;
    const { topology, calls, log } = deps;
    await locks.run(roomName, async () => {
      const room = await store.getRoom(roomName);
      if (!room || room.mediaNode !== fromNode) return;
      if (reason === 'node-draining')
        await topology
          .media(fromNode)
          .stopRecording(roomName, 'node-draining')
          .catch(() => null);
      else if (room.recording) await calls.setRecording(room.callId, false).catch(() => undefined);
      const to = await this.rooms.admission.openMedia(roomName, [fromNode]);
      await store.putRoom({ ...room, mediaNode: to, recording: reason === 'node-lost' ? false : room.recording });
      if (fromNode === nodeId) await topology.media(fromNode).close(roomName);
      log.info({ room: roomName, from: fromNode, to, reason }, 'room media moved');
      clients.send({ room: roomName }, 'media-reset', { call_id: room.callId, reason });
    });
  }

  /**
   * SIGTERM: no new connections or joins. With another node alive, the calls
   * move: the media this node carries is re-placed (media-reset), and every
   * connection here is told (server-draining) and closed, so its client
   * reconnects through the load balancer and resumes on another node within
   * the grace period; it waits until nobody is left on it, or the timeout.
   * Alone, it returns at once (see below).
   */
  async drain(timeoutMs: number): Promise<void> {
    const { node, store, nodeId, deps } = this.ctx;
    const { log } = deps;
    node.draining = true;
    const deadline = Date.now() + timeoutMs;
    // Alone there is nowhere to move the calls to: stop now, and the clients, told to come back
    // (server-draining at close), resume on this node's successor instead of waiting out the timeout.
    if (!(await deps.topology.peerAvailable())) return;
    node.handingOff = true;
    for (const room of await store.roomsWithMediaOn(nodeId)) {
      await this.moveMedia(room, nodeId, 'node-draining').catch((err: unknown) => log.error({ err, room }, 'moving media off this node failed'));
    }
    this.handOffConnections();
    while (Date.now() < deadline && (await store.participantsOnNode(nodeId)).length > 0) {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
