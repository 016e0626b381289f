import type { ConsumeOk, MediaKind, MediaSource, ProducerInfo, RecordingMode, Track, TransportInfo } from '../protocol';
import type { FinishedRecording } from '../recording/recorder';

export type { TransportInfo };

/**
 * What signaling asks of a room's media node: every request names the room and
 * carries only plain data, so that the same interface is served in this
 * process (LocalMediaService) or forwarded to another node over Redis
 * (cluster/rpc.ts). The media node is where the room's mediasoup routers and
 * its recording (ffmpeg) run; LocalMediaService (local.ts) is this process's.
 */
/** mediasoup's parameters, as the protocol carries them (opaque JSON). */
export type Json = Record<string, unknown>;

export interface ProduceRequest {
  transportId: string;
  kind: MediaKind;
  rtpParameters: Json;
  source: MediaSource;
  paused: boolean;
}

export interface MediaService {
  /** Creates the room's media if it has none (idempotent). */
  open(room: string): Promise<void>;
  close(room: string): Promise<void>;
  rtpCapabilities(room: string): Promise<Json>;
  producers(room: string): Promise<ProducerInfo[]>;
  createTransport(room: string, participantId: string, direction: 'send' | 'recv'): Promise<TransportInfo>;
  connectTransport(room: string, participantId: string, transportId: string, dtlsParameters: Json): Promise<void>;
  restartIce(room: string, participantId: string, transportId: string): Promise<Json>;
  produce(room: string, participantId: string, req: ProduceRequest): Promise<{ producer_id: string; kind: MediaKind }>;
  consume(room: string, participantId: string, req: { transportId: string; producerId: string; rtpCapabilities: Json }): Promise<ConsumeOk>;
  resumeConsumer(room: string, participantId: string, consumerId: string, heldTracks: Track[]): Promise<void>;
  closeProducer(room: string, participantId: string, producerId: string): Promise<void>;
  setPreferredLayers(room: string, participantId: string, consumerId: string, spatialLayer: number, temporalLayer?: number): Promise<void>;
  /** Any producer of the room, with its owner; null when there is none. */
  findProducer(room: string, producerId: string): Promise<{ participantId: string; source: MediaSource } | null>;
  /** Makes a participant's producers and consumers match its mute and hold state. */
  applyState(room: string, participantId: string, mutedTracks: Track[], heldTracks: Track[]): Promise<void>;
  closePeer(room: string, participantId: string): Promise<void>;
  startRecording(
    room: string,
    callId: string,
    by: string | null,
    mode?: RecordingMode,
  ): Promise<{ recording_id: string; started_at: string; mode: RecordingMode }>;
  stopRecording(room: string, reason: string): Promise<FinishedRecording | null>;
  participantLeaving(room: string, participantId: string): Promise<void>;
  producerAdded(room: string, participantId: string): Promise<void>;
}

/**
 * Every method of MediaService, for the RPC that forwards them: a Record over
 * keyof MediaService, so a method added to the interface and not here fails to
 * compile instead of failing on a remote node.
 */
const METHODS: Record<keyof MediaService, true> = {
  open: true,
  close: true,
  rtpCapabilities: true,
  producers: true,
  createTransport: true,
  connectTransport: true,
  restartIce: true,
  produce: true,
  consume: true,
  resumeConsumer: true,
  closeProducer: true,
  setPreferredLayers: true,
  findProducer: true,
  applyState: true,
  closePeer: true,
  startRecording: true,
  stopRecording: true,
  participantLeaving: true,
  producerAdded: true,
};
export type MediaMethod = keyof MediaService;
export const MEDIA_METHODS = Object.keys(METHODS) as MediaMethod[];
