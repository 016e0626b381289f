import { AppError } from '../errors';
import type { MediaService } from '../mediaNode/service';
import { SOURCE_TRACK, type AckResult, type Payload, type RecordingMode } from '../protocol';
import type { FinishedRecording } from '../recording/recorder';
import type { Session } from './clients';
import type { RoomContext } from './context';
import type { Moderation } from './moderation';
import { authorize } from './policy';
import type { ParticipantRecord, RoomRecord } from './store';

type None = Record<string, never>;

/**
 * A joined participant's SFU media requests, forwarded to the room's media
 * node (this process, or another one over the cluster's RPC), and recording
 * control, for signaling and for REST (POST /calls/:id/recordings).
 */
export class MediaControl {
  /** Set once Moderation exists (it needs applyMedia from here, this needs mute from there). */
  moderation!: Moderation;

  constructor(private readonly ctx: RoomContext) {}

  /** The joined room's media; MODE_MISMATCH in a p2p room. */
  private async sfuRoom(session: Session): Promise<{ room: RoomRecord; me: ParticipantRecord; media: MediaService }> {
    const { room, me } = await this.ctx.joined(session);
    if (room.mode !== 'sfu') throw new AppError('MODE_MISMATCH');
    return { room, me, media: this.ctx.mediaOf(room) };
  }

  async rtpCapabilities(session: Session): Promise<AckResult<'get-router-rtp-capabilities'>> {
    const { room, media } = await this.sfuRoom(session);
    return { rtp_capabilities: await media.rtpCapabilities(room.room) };
  }

  async createTransport(session: Session, p: Payload<'create-transport'>): Promise<AckResult<'create-transport'>> {
    const { room, media, me } = await this.sfuRoom(session);
    return media.createTransport(room.room, me.id, p.direction);
  }

  async connectTransport(session: Session, p: Payload<'connect-transport'>): Promise<None> {
    const { room, media, me } = await this.sfuRoom(session);
    await media.connectTransport(room.room, me.id, p.transport_id, p.dtls_parameters);
    return {};
  }

  async restartIce(session: Session, p: Payload<'restart-ice'>): Promise<AckResult<'restart-ice'>> {
    const { room, media, me } = await this.sfuRoom(session);
    return { ice_parameters: await media.restartIce(room.room, me.id, p.transport_id) };
  }

  async produce(session: Session, p: Payload<'produce'>): Promise<AckResult<'produce'>> {
    const { room, media, me } = await this.sfuRoom(session);
    return this.ctx.locks.run(room.room, async () => {
      const current = await this.ctx.current(room.room, me.id);
      if (!current.canPublish) throw new AppError('PUBLISH_NOT_ALLOWED');
      const track = SOURCE_TRACK[p.source];
      // A producer created paused by its client is a self-mute: the mute state and the producer state agree.
      if (p.paused && !current.mutedTracks.includes(track)) {
        current.mutedTracks = [...current.mutedTracks, track];
        await this.ctx.store.putParticipant(current);
        this.ctx.clients.send({ room: room.room }, 'mute-changed', {
          call_id: room.callId,
          participant_id: me.id,
          track,
          muted: true,
          locked: false,
          by: me.id,
        });
      }
      const paused = current.mutedTracks.includes(track) || current.heldTracks.includes(track);
      const producer = await media.produce(room.room, me.id, {
        transportId: p.transport_id,
        kind: p.kind,
        rtpParameters: p.rtp_parameters,
        source: p.source,
        paused,
      });
      this.ctx.clients.send(
        { room: room.room },
        'new-producer',
        { producer_id: producer.producer_id, participant_id: me.id, kind: producer.kind, source: p.source, paused },
        { participant: me.id },
      );
      // Being recorded: record this track from now on (not awaited: the producer is usable already).
      media.producerAdded(room.room, me.id).catch((err: unknown) => this.ctx.deps.log.error({ err }, 'recording a new producer failed'));
      return { producer_id: producer.producer_id, paused };
    });
  }

  async consume(session: Session, p: Payload<'consume'>): Promise<AckResult<'consume'>> {
    const { room, media, me } = await this.sfuRoom(session);
    return media.consume(room.room, me.id, { transportId: p.transport_id, producerId: p.producer_id, rtpCapabilities: p.rtp_capabilities });
  }

  async resumeConsumer(session: Session, p: Payload<'resume-consumer'>): Promise<None> {
    const { room, media, me } = await this.sfuRoom(session);
    await media.resumeConsumer(room.room, me.id, p.consumer_id, me.heldTracks);
    return {};
  }

  /** Pausing or resuming a producer is muting or unmuting its track: the same rules, the same state. */
  async pauseProducer(session: Session, p: Payload<'pause-producer'>, pause: boolean): Promise<None> {
    const { room, media } = await this.sfuRoom(session);
    const found = await media.findProducer(room.room, p.producer_id);
    if (!found) throw new AppError('PRODUCER_NOT_FOUND', `no producer ${p.producer_id} in this room`);
    return this.moderation.mute(session, { call_id: room.callId, track: SOURCE_TRACK[found.source], participant_id: found.participantId }, pause);
  }

  async closeProducer(session: Session, p: Payload<'close-producer'>): Promise<None> {
    const { room, media, me } = await this.sfuRoom(session);
    await media.closeProducer(room.room, me.id, p.producer_id);
    return {};
  }

  async setPreferredLayers(session: Session, p: Payload<'set-preferred-layers'>): Promise<None> {
    const { room, media, me } = await this.sfuRoom(session);
    await media.setPreferredLayers(room.room, me.id, p.consumer_id, p.spatial_layer, p.temporal_layer);
    return {};
  }

  /** Makes a participant's producers and consumers match its mute and hold state. */
  async applyMedia(room: RoomRecord, p: ParticipantRecord): Promise<void> {
    if (room.mode !== 'sfu' || !room.mediaNode) return;
    await this.ctx.mediaOf(room).applyState(room.room, p.id, p.mutedTracks, p.heldTracks);
  }

  // ---- recording -------------------------------------------------------------------------
  /** start-recording: a host or moderator of the room, as it is now. */
  async startRecordingBy(session: Session, p: Payload<'start-recording'>): Promise<AckResult<'start-recording'>> {
    const { room, me } = await this.ctx.joined(session, p.call_id);
    authorize((await this.ctx.current(room.room, me.id)).role, 'record');
    return this.ctx.mediaOf(room).startRecording(room.room, room.callId, me.id, p.mode);
  }

  async stopRecordingBy(session: Session, p: Payload<'stop-recording'>): Promise<AckResult<'stop-recording'>> {
    const { room, me } = await this.ctx.joined(session, p.call_id);
    authorize((await this.ctx.current(room.room, me.id)).role, 'record');
    const finished = await this.ctx.mediaOf(room).stopRecording(room.room, 'stopped');
    return finished ? { stopped: true, recording: finished } : { stopped: false };
  }

  /** Starts a room's recording on its media node (REST: the node serving the request may be another). */
  async startRecording(
    roomName: string,
    callId: string,
    by: string | null,
    mode?: RecordingMode,
  ): Promise<{ recording_id: string; started_at: string; mode: RecordingMode }> {
    const room = await this.ctx.store.getRoom(roomName);
    const media = room && room.callId === callId ? this.ctx.mediaOf(room) : this.ctx.deps.topology.media(this.ctx.nodeId);
    return media.startRecording(roomName, callId, by, mode);
  }

  async stopRecording(roomName: string, reason: string): Promise<FinishedRecording | null> {
    const room = await this.ctx.store.getRoom(roomName);
    return (room ? this.ctx.mediaOf(room) : this.ctx.deps.topology.media(this.ctx.nodeId)).stopRecording(roomName, reason);
  }
}
