import { AppError } from '../errors';
import type { RoomMedia, Sfu } from '../media/sfu';
import {
  SOURCE_TRACK,
  type ConsumeOk,
  type MediaKind,
  type MediaSource,
  type ProducerInfo,
  type RecordingMode,
  type Track,
  type TransportDirection,
} from '../protocol';
import type { FinishedRecording, Recorder } from '../recording/recorder';
import type { Json, MediaService, ProduceRequest, TransportInfo } from './service';

/** mediasoup's parameter objects, sent as the protocol's opaque JSON. */
const json = (v: object): Json => v as Json;

/** The media of rooms whose routers are in this process. */
export class LocalMediaService implements MediaService {
  constructor(
    private readonly sfu: Sfu,
    private readonly recorder: Recorder,
  ) {}

  private media(room: string): RoomMedia {
    const media = this.sfu.get(room);
    if (!media) throw new AppError('MEDIA_UNAVAILABLE');
    return media;
  }

  async open(room: string): Promise<void> {
    await this.sfu.open(room);
  }

  async close(room: string): Promise<void> {
    this.sfu.close(room);
  }

  async rtpCapabilities(room: string): Promise<Json> {
    return json(this.media(room).primary.rtpCapabilities);
  }

  async producers(room: string): Promise<ProducerInfo[]> {
    return this.sfu.get(room)?.producers() ?? [];
  }

  async createTransport(room: string, participantId: string, direction: TransportDirection): Promise<TransportInfo> {
    const t = await this.media(room).createTransport(participantId, direction);
    return { transport_id: t.id, ice_parameters: json(t.iceParameters), ice_candidates: t.iceCandidates.map(json), dtls_parameters: json(t.dtlsParameters) };
  }

  async connectTransport(room: string, participantId: string, transportId: string, dtlsParameters: Json): Promise<void> {
    await this.media(room).connectTransport(participantId, transportId, dtlsParameters);
  }

  async restartIce(room: string, participantId: string, transportId: string): Promise<Json> {
    return json(await this.media(room).restartIce(participantId, transportId));
  }

  async produce(room: string, participantId: string, req: ProduceRequest): Promise<{ producer_id: string; kind: MediaKind }> {
    const producer = await this.media(room).produce(participantId, req);
    return { producer_id: producer.id, kind: producer.kind };
  }

  async consume(room: string, participantId: string, req: { transportId: string; producerId: string; rtpCapabilities: Json }): Promise<ConsumeOk> {
    const { consumer, producer, producerParticipantId } = await this.media(room).consume(participantId, req);
    return {
      consumer_id: consumer.id,
      producer_id: producer.id,
      participant_id: producerParticipantId,
      kind: consumer.kind,
      source: producer.appData.source,
      rtp_parameters: json(consumer.rtpParameters),
      paused: true,
      producer_paused: producer.paused,
    };
  }

  async resumeConsumer(room: string, participantId: string, consumerId: string, heldTracks: Track[]): Promise<void> {
    await this.media(room).resumeConsumer(participantId, consumerId, (source) => heldTracks.includes(SOURCE_TRACK[source]));
  }

  async closeProducer(room: string, participantId: string, producerId: string): Promise<void> {
    this.media(room).producerOf(participantId, producerId).close();
  }

  async setPreferredLayers(room: string, participantId: string, consumerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    await this.media(room).setPreferredLayers(participantId, consumerId, spatialLayer, temporalLayer);
  }

  async findProducer(room: string, producerId: string): Promise<{ participantId: string; source: MediaSource } | null> {
    const found = this.media(room).findProducer(producerId);
    return found ? { participantId: found.participantId, source: found.producer.appData.source } : null;
  }

  async applyState(room: string, participantId: string, mutedTracks: Track[], heldTracks: Track[]): Promise<void> {
    const media = this.sfu.get(room);
    const peer = media?.peers.get(participantId);
    if (!media || !peer) return;
    for (const producer of peer.producers.values()) {
      const track = SOURCE_TRACK[producer.appData.source];
      await media.setProducerPaused(producer, mutedTracks.includes(track) || heldTracks.includes(track));
    }
    await media.setReceiving(participantId, (source) => heldTracks.includes(SOURCE_TRACK[source]));
  }

  async closePeer(room: string, participantId: string): Promise<void> {
    this.sfu.get(room)?.closePeer(participantId);
  }

  startRecording(
    room: string,
    callId: string,
    by: string | null,
    mode?: RecordingMode,
  ): Promise<{ recording_id: string; started_at: string; mode: RecordingMode }> {
    return this.recorder.start(room, callId, by, mode);
  }

  stopRecording(room: string, reason: string): Promise<FinishedRecording | null> {
    return this.recorder.stop(room, reason);
  }

  participantLeaving(room: string, participantId: string): Promise<void> {
    return this.recorder.participantLeaving(room, participantId);
  }

  producerAdded(room: string, participantId: string): Promise<void> {
    return this.recorder.producerAdded(room, participantId);
  }
}
