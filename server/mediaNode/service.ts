import type { MediaKind } from 'mediasoup/types';

import type { RecordingMode } from '../protocol';
import type { FinishedRecording, Recorder } from '../recording/recorder';
import { SOURCE_TRACK, type MediaSource, type ProducerInfo, type Track } from '../protocol';
import type { RoomMedia, Sfu } from './sfu';
import { AppError } from '../errors';

/**
 * What signaling asks of a room's media node: every request names the room and
 * carries only plain data, so that the same interface is served in this
 * process (LocalMediaService) or forwarded to another node over Redis
 * (cluster/rpc.ts). The media node is where the room's mediasoup routers and
 * its recording (ffmpeg) run.
 */
export interface TransportInfo {
  transport_id: string;
  ice_parameters: unknown;
  ice_candidates: unknown;
  dtls_parameters: unknown;
}

export interface ConsumeResult {
  consumer_id: string;
  producer_id: string;
  participant_id: string;
  kind: MediaKind;
  source: string;
  rtp_parameters: unknown;
  paused: true;
  producer_paused: boolean;
}

export interface ProduceRequest {
  transportId: string;
  kind: MediaKind;
  rtpParameters: unknown;
  source: MediaSource;
  paused: boolean;
}

export interface MediaService {
  /** Creates the room's media if it has none (idempotent). */
  open(room: string): Promise<void>;
  close(room: string): Promise<void>;
  rtpCapabilities(room: string): Promise<unknown>;
  producers(room: string): Promise<ProducerInfo[]>;
  createTransport(room: string, participantId: string, direction: 'send' | 'recv'): Promise<TransportInfo>;
  connectTransport(room: string, participantId: string, transportId: string, dtlsParameters: unknown): Promise<void>;
  restartIce(room: string, participantId: string, transportId: string): Promise<unknown>;
  produce(room: string, participantId: string, req: ProduceRequest): Promise<{ producer_id: string; kind: MediaKind }>;
  consume(room: string, participantId: string, req: { transportId: string; producerId: string; rtpCapabilities: unknown }): Promise<ConsumeResult>;
  resumeConsumer(room: string, participantId: string, consumerId: string, heldTracks: Track[]): Promise<void>;
  closeProducer(room: string, participantId: string, producerId: string): Promise<void>;
  setPreferredLayers(room: string, participantId: string, consumerId: string, spatialLayer: number, temporalLayer?: number): Promise<void>;
  /** Any producer of the room, with its owner; null when there is none. */
  findProducer(room: string, producerId: string): Promise<{ participantId: string; source: MediaSource } | null>;
  /** Makes a participant's producers and consumers match its mute and hold state. */
  applyState(room: string, participantId: string, mutedTracks: Track[], heldTracks: Track[]): Promise<void>;
  closePeer(room: string, participantId: string): Promise<void>;
  startRecording(room: string, callId: string, by: string | null, mode?: RecordingMode): Promise<{ recording_id: string; started_at: string; mode: RecordingMode }>;
  stopRecording(room: string, reason: string): Promise<FinishedRecording | null>;
  participantLeaving(room: string, participantId: string): Promise<void>;
  producerAdded(room: string, participantId: string): Promise<void>;
}

export const MEDIA_METHODS = [
  'open',
  'close',
  'rtpCapabilities',
  'producers',
  'createTransport',
  'connectTransport',
  'restartIce',
  'produce',
  'consume',
  'resumeConsumer',
  'closeProducer',
  'setPreferredLayers',
  'findProducer',
  'applyState',
  'closePeer',
  'startRecording',
  'stopRecording',
  'participantLeaving',
  'producerAdded',
] as const satisfies ReadonlyArray<keyof MediaService>;
export type MediaMethod = (typeof MEDIA_METHODS)[number];

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

  async rtpCapabilities(room: string): Promise<unknown> {
    return this.media(room).primary.rtpCapabilities;
  }

  async producers(room: string): Promise<ProducerInfo[]> {
    return this.sfu.get(room)?.producers() ?? [];
  }

  async createTransport(room: string, participantId: string, direction: 'send' | 'recv'): Promise<TransportInfo> {
    const t = await this.media(room).createTransport(participantId, direction);
    return { transport_id: t.id, ice_parameters: t.iceParameters, ice_candidates: t.iceCandidates, dtls_parameters: t.dtlsParameters };
  }

  async connectTransport(room: string, participantId: string, transportId: string, dtlsParameters: unknown): Promise<void> {
    await this.media(room).connectTransport(participantId, transportId, dtlsParameters);
  }

  restartIce(room: string, participantId: string, transportId: string): Promise<unknown> {
    return this.media(room).restartIce(participantId, transportId);
  }

  async produce(room: string, participantId: string, req: ProduceRequest): Promise<{ producer_id: string; kind: MediaKind }> {
    const producer = await this.media(room).produce(participantId, req);
    return { producer_id: producer.id, kind: producer.kind };
  }

  async consume(room: string, participantId: string, req: { transportId: string; producerId: string; rtpCapabilities: unknown }): Promise<ConsumeResult> {
    const { consumer, producer, producerParticipantId } = await this.media(room).consume(participantId, req);
    return {
      consumer_id: consumer.id,
      producer_id: producer.id,
      participant_id: producerParticipantId,
      kind: consumer.kind,
      source: (producer.appData as { source: string }).source,
      rtp_parameters: consumer.rtpParameters,
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
    return found ? { participantId: found.participantId, source: (found.producer.appData as { source: MediaSource }).source } : null;
  }

  async applyState(room: string, participantId: string, mutedTracks: Track[], heldTracks: Track[]): Promise<void> {
    const media = this.sfu.get(room);
    const peer = media?.peers.get(participantId);
    if (!media || !peer) return;
    for (const producer of peer.producers.values()) {
      const track = SOURCE_TRACK[(producer.appData as { source: MediaSource }).source];
      await media.setProducerPaused(producer, mutedTracks.includes(track) || heldTracks.includes(track));
    }
    await media.setReceiving(participantId, (source) => heldTracks.includes(SOURCE_TRACK[source]));
  }

  async closePeer(room: string, participantId: string): Promise<void> {
    this.sfu.get(room)?.closePeer(participantId);
  }

  startRecording(room: string, callId: string, by: string | null, mode?: RecordingMode): Promise<{ recording_id: string; started_at: string; mode: RecordingMode }> {
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
