import type { FastifyBaseLogger } from 'fastify';
import type {
  ActiveSpeakerObserver,
  Consumer as MsConsumer,
  DtlsParameters,
  MediaKind,
  Producer as MsProducer,
  Router as MsRouter,
  RtpCapabilities,
  RtpParameters,
  WebRtcTransport,
  Worker,
} from 'mediasoup/types';
import { AppError } from '../errors';
import { TypedEmitter } from '../lib/typedEmitter';
import type { MediaSource, ProducerInfo, ServerMessage, TransportDirection } from '../protocol';
import { MEDIA_CODECS } from './codecs';
import type { WorkerPool } from './workerPool';

/**
 * The SFU: per room a mediasoup Router (plus, past MEDIASOUP_CONSUMERS_PER_ROUTER
 * consumers, routers on other workers fed with pipeToRouter), per participant
 * its WebRTC transports, producers and consumers. It knows nothing of sockets:
 * it tells what happened through its typed events (SfuEvents).
 */
export interface SfuEvents {
  /** A protocol event for one participant (its transports' states, its consumers closed). */
  'to-participant': [room: string, participantId: string, message: ServerMessage];
  /** A protocol event for the whole room (producers paused, resumed, closed; the active speaker). */
  'to-room': [room: string, message: ServerMessage];
  /** The room's media was lost with its worker and has been re-created: the room must negotiate again. */
  'media-reset': [room: string];
}

/** What mediasoup objects carry in appData here (typed through mediasoup's AppData generics). */
interface RouterData {
  [key: string]: unknown;
  worker: Worker;
  room: string;
}
interface TransportData {
  [key: string]: unknown;
  participantId: string;
  direction: TransportDirection;
  routerId: string;
}
interface ProducerData {
  [key: string]: unknown;
  participantId: string;
  source: MediaSource;
}
interface ConsumerData {
  [key: string]: unknown;
  participantId: string;
  source: MediaSource;
  producerParticipantId: string;
  /** The client has its consumer (resume-consumer came): hold may pause and resume it. */
  ready?: boolean;
}
export type Router = MsRouter<RouterData>;
export type Transport = WebRtcTransport<TransportData>;
export type Producer = MsProducer<ProducerData>;
export type Consumer = MsConsumer<ConsumerData>;

interface PeerMedia {
  transports: Map<string, Transport>;
  producers: Map<string, Producer>;
  consumers: Map<string, Consumer>;
}

/** A peer may hold a send and a receive transport, plus a spare for an ICE-failure recreate. */
const MAX_TRANSPORTS_PER_PEER = 4;
const INITIAL_OUTGOING_BITRATE = 1_000_000;
/** Just past libwebrtc's minimum interval between key frames sent on request. */
const KEY_FRAME_FOLLOW_UP_MS = 350;

type Json = Record<string, unknown>; // mediasoup's parameters as the protocol carries them (mediasoup validates)

export const SOURCE_KIND: Record<MediaSource, MediaKind> = { mic: 'audio', camera: 'video', screen: 'video' };

export class RoomMedia {
  readonly peers = new Map<string, PeerMedia>();
  /** routers[0] holds every send transport; the others only receive (fed by pipes). */
  readonly routers: Router[];
  private readonly consumerCount = new Map<string, number>();
  private readonly pipes = new Map<string, Promise<void>>();
  closed = false;

  constructor(
    readonly room: string,
    primary: Router,
    private readonly speaker: ActiveSpeakerObserver,
    private readonly sfu: Sfu,
  ) {
    this.routers = [primary];
    this.speaker.on('dominantspeaker', ({ producer }) => {
      const participantId = this.findProducer(producer.id)?.participantId ?? null;
      this.toRoom({ event: 'active-speaker', payload: { participant_id: participantId, producer_id: producer.id } });
    });
  }

  private toRoom(message: ServerMessage): void {
    this.sfu.safeEmit('to-room', this.room, message);
  }

  get primary(): Router {
    return this.routers[0]!;
  }

  peer(participantId: string): PeerMedia {
    let p = this.peers.get(participantId);
    if (!p) {
      p = { transports: new Map(), producers: new Map(), consumers: new Map() };
      this.peers.set(participantId, p);
    }
    return p;
  }

  /** Every producer in the room, for room_state. */
  producers(): ProducerInfo[] {
    const out: ProducerInfo[] = [];
    for (const [participantId, peer] of this.peers) {
      for (const p of peer.producers.values()) {
        out.push({ producer_id: p.id, participant_id: participantId, kind: p.kind, source: p.appData.source, paused: p.paused });
      }
    }
    return out;
  }

  private transportOf(participantId: string, transportId: string): Transport {
    const t = this.peers.get(participantId)?.transports.get(transportId);
    if (!t) throw new AppError('TRANSPORT_NOT_FOUND', `no transport ${transportId} of yours`);
    return t;
  }

  producerOf(participantId: string, producerId: string): Producer {
    const p = this.peers.get(participantId)?.producers.get(producerId);
    if (!p) throw new AppError('PRODUCER_NOT_FOUND', `no producer ${producerId} of yours`);
    return p;
  }

  /** Any producer in the room, with its owner. */
  findProducer(producerId: string): { producer: Producer; participantId: string } | undefined {
    for (const [participantId, peer] of this.peers) {
      const producer = peer.producers.get(producerId);
      if (producer) return { producer, participantId };
    }
    return undefined;
  }

  private consumerOf(participantId: string, consumerId: string): Consumer {
    const c = this.peers.get(participantId)?.consumers.get(consumerId);
    if (!c) throw new AppError('CONSUMER_NOT_FOUND', `no consumer ${consumerId} of yours`);
    return c;
  }

  /** The router a new receive transport goes to: the primary until it is busy, then one on another worker. */
  private async routerForReceiving(): Promise<Router> {
    const limit = this.sfu.limits.consumersPerRouter;
    for (const r of this.routers) if ((this.consumerCount.get(r.id) ?? 0) < limit) return r;
    if (this.sfu.pool.alive < 2) return this.leastBusy();
    const used = new Set(this.routers.map((r) => r.appData.worker));
    const worker = this.sfu.pool.workers().find((w) => !used.has(w));
    if (!worker) return this.leastBusy();
    const router = await worker.createRouter<RouterData>({ mediaCodecs: MEDIA_CODECS, appData: { worker, room: this.room } });
    router.on('workerclose', () => this.sfu.lost(this));
    this.routers.push(router);
    return router;
  }

  private leastBusy(): Router {
    return [...this.routers].sort((a, b) => (this.consumerCount.get(a.id) ?? 0) - (this.consumerCount.get(b.id) ?? 0))[0]!;
  }

  async createTransport(participantId: string, direction: TransportDirection): Promise<Transport> {
    const peer = this.peer(participantId);
    if (peer.transports.size >= MAX_TRANSPORTS_PER_PEER) {
      throw new AppError('TOO_MANY_TRANSPORTS', `at most ${MAX_TRANSPORTS_PER_PEER} transports per participant`);
    }
    const router = direction === 'send' ? this.primary : await this.routerForReceiving();
    const webRtcServer = this.sfu.pool.webRtcServerOf(router.appData.worker);
    const transport = await router.createWebRtcTransport<TransportData>({
      ...(webRtcServer
        ? { webRtcServer }
        : {
            listenInfos: [
              { protocol: 'udp', ip: '127.0.0.1' },
              { protocol: 'tcp', ip: '127.0.0.1' },
            ],
          }),
      enableUdp: true,
      enableTcp: true,
      preferUdp: true,
      initialAvailableOutgoingBitrate: INITIAL_OUTGOING_BITRATE,
      appData: { participantId, direction, routerId: router.id },
    });
    peer.transports.set(transport.id, transport);
    const report = (state: string) =>
      this.sfu.safeEmit('to-participant', this.room, participantId, { event: 'transport-state', payload: { transport_id: transport.id, state } });
    transport.on('icestatechange', (s) => report(`ice-${s}`));
    transport.on('dtlsstatechange', (s) => {
      report(`dtls-${s}`);
      if (s === 'failed' || s === 'closed') transport.close();
    });
    transport.observer.on('close', () => peer.transports.delete(transport.id));
    return transport;
  }

  async connectTransport(participantId: string, transportId: string, dtlsParameters: Json): Promise<void> {
    const t = this.transportOf(participantId, transportId);
    await mediaCall(() => t.connect({ dtlsParameters: dtlsParameters as unknown as DtlsParameters }));
  }

  async restartIce(participantId: string, transportId: string): Promise<object> {
    const t = this.transportOf(participantId, transportId);
    return mediaCall(() => t.restartIce());
  }

  async produce(
    participantId: string,
    req: { transportId: string; kind: MediaKind; rtpParameters: Json; source: MediaSource; paused: boolean },
  ): Promise<Producer> {
    const t = this.transportOf(participantId, req.transportId);
    if (t.appData.direction !== 'send') throw new AppError('MEDIA_REQUEST_FAILED', 'produce needs a send transport');
    if (SOURCE_KIND[req.source] !== req.kind) throw new AppError('MEDIA_REQUEST_FAILED', `a ${req.source} producer must be ${SOURCE_KIND[req.source]}`);
    const peer = this.peer(participantId);
    for (const p of peer.producers.values()) {
      if (p.appData.source === req.source) throw new AppError('PRODUCER_EXISTS', `you already produce ${req.source}; close it first`);
    }
    const producer = await mediaCall(() =>
      t.produce<ProducerData>({
        kind: req.kind,
        rtpParameters: req.rtpParameters as unknown as RtpParameters,
        paused: req.paused,
        appData: { participantId, source: req.source },
      }),
    );
    peer.producers.set(producer.id, producer);
    producer.observer.on('close', () => {
      peer.producers.delete(producer.id);
      if (!this.closed) this.toRoom({ event: 'producer-closed', payload: { producer_id: producer.id, participant_id: participantId } });
    });
    if (producer.kind === 'audio') await this.speaker.addProducer({ producerId: producer.id }).catch(() => undefined);
    return producer;
  }

  /** Pauses or resumes a producer and tells the room; no-op when already so. */
  async setProducerPaused(producer: Producer, paused: boolean): Promise<void> {
    if (producer.closed || producer.paused === paused) return;
    if (paused) await producer.pause();
    else await producer.resume();
    const payload = { producer_id: producer.id, participant_id: producer.appData.participantId };
    this.toRoom(paused ? { event: 'producer-paused', payload } : { event: 'producer-resumed', payload });
  }

  async consume(
    participantId: string,
    req: { transportId: string; producerId: string; rtpCapabilities: Json },
  ): Promise<{ consumer: Consumer; producer: Producer; producerParticipantId: string }> {
    const t = this.transportOf(participantId, req.transportId);
    if (t.appData.direction !== 'recv') throw new AppError('MEDIA_REQUEST_FAILED', 'consume needs a receive transport');
    const found = this.findProducer(req.producerId);
    if (!found) throw new AppError('PRODUCER_NOT_FOUND', `no producer ${req.producerId} in this room`);
    if (found.participantId === participantId) throw new AppError('CANNOT_TARGET_SELF', 'you cannot consume your own producer');
    if (this.peer(participantId).consumers.size >= this.sfu.limits.consumersPerParticipant) throw new AppError('TOO_MANY_CONSUMERS');
    const router = this.routers.find((r) => r.id === t.appData.routerId) ?? this.primary;
    const rtpCapabilities = req.rtpCapabilities as unknown as RtpCapabilities;
    let ok: boolean;
    try {
      ok = this.primary.canConsume({ producerId: req.producerId, rtpCapabilities });
    } catch {
      ok = false;
    }
    if (!ok) throw new AppError('INCOMPATIBLE_CAPABILITIES', 'your RTP capabilities cannot receive this producer');
    if (router !== this.primary) await this.pipe(req.producerId, router);
    const source = found.producer.appData.source;
    const consumer = await mediaCall(() =>
      t.consume<ConsumerData>({
        producerId: req.producerId,
        rtpCapabilities,
        paused: true,
        appData: { participantId, source, producerParticipantId: found.participantId },
      }),
    );
    const peer = this.peer(participantId);
    peer.consumers.set(consumer.id, consumer);
    this.consumerCount.set(router.id, (this.consumerCount.get(router.id) ?? 0) + 1);
    consumer.observer.on('close', () => {
      peer.consumers.delete(consumer.id);
      this.consumerCount.set(router.id, (this.consumerCount.get(router.id) ?? 1) - 1);
    });
    consumer.on('producerclose', () => {
      if (!this.closed) {
        this.sfu.safeEmit('to-participant', this.room, participantId, {
          event: 'consumer-closed',
          payload: { consumer_id: consumer.id, producer_id: req.producerId },
        });
      }
    });
    return { consumer, producer: found.producer, producerParticipantId: found.participantId };
  }

  /** Makes a producer of the primary router available on `router` (once). */
  private pipe(producerId: string, router: Router): Promise<void> {
    const key = `${producerId}:${router.id}`;
    let p = this.pipes.get(key);
    if (!p) {
      p = this.primary.pipeToRouter({ producerId, router }).then(() => undefined);
      p.catch(() => this.pipes.delete(key));
      this.pipes.set(key, p);
    }
    return p;
  }

  /** The client is ready for this consumer's media; it stays paused while its track is on hold. */
  async resumeConsumer(participantId: string, consumerId: string, isHeld: (source: MediaSource) => boolean): Promise<void> {
    const c = this.consumerOf(participantId, consumerId);
    c.appData.ready = true;
    if (isHeld(c.appData.source)) return;
    await mediaCall(() => c.resume());
    this.followUpKeyFrame(c);
  }

  /**
   * mediasoup asks the sender for a key frame when a video consumer resumes, but
   * libwebrtc ignores a second request within ~300 ms of the previous one (two
   * consumers resumed close together), and mediasoup's own retry comes a second
   * later: one more request after that window makes the first frame prompt.
   */
  private followUpKeyFrame(c: Consumer): void {
    if (c.kind !== 'video') return;
    setTimeout(() => {
      if (!c.closed && !c.paused) c.requestKeyFrame().catch(() => undefined);
    }, KEY_FRAME_FOLLOW_UP_MS).unref();
  }

  async setPreferredLayers(participantId: string, consumerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    const c = this.consumerOf(participantId, consumerId);
    await mediaCall(() => c.setPreferredLayers({ spatialLayer, ...(temporalLayer === undefined ? {} : { temporalLayer }) }));
  }

  /** Hold: what the participant receives of held sources is paused; the rest (once the client is ready) flows. */
  async setReceiving(participantId: string, isHeld: (source: MediaSource) => boolean): Promise<void> {
    const peer = this.peers.get(participantId);
    if (!peer) return;
    for (const c of peer.consumers.values()) {
      if (c.closed || !c.appData.ready) continue;
      const pause = isHeld(c.appData.source);
      if (pause && !c.paused) await c.pause();
      else if (!pause && c.paused) await c.resume();
    }
  }

  /** Closes everything of a participant (its consumers on others close with its producers). */
  closePeer(participantId: string): void {
    const peer = this.peers.get(participantId);
    if (!peer) return;
    for (const t of peer.transports.values()) t.close();
    for (const p of peer.producers.values()) p.close();
    this.peers.delete(participantId);
  }

  close(): void {
    this.closed = true;
    for (const r of this.routers) r.close();
    this.peers.clear();
  }
}

/** mediasoup rejects bad parameters with TypeError/Error: a client error, with mediasoup's reason. */
async function mediaCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError('MEDIA_REQUEST_FAILED', `media request failed: ${(err as Error).message}`);
  }
}

export class Sfu extends TypedEmitter<SfuEvents> {
  private readonly rooms = new Map<string, RoomMedia>();
  private readonly opening = new Map<string, Promise<RoomMedia>>();

  constructor(
    readonly pool: WorkerPool,
    readonly limits: { consumersPerRouter: number; consumersPerParticipant: number },
    private readonly log: FastifyBaseLogger,
  ) {
    super((event, err) => log.error({ err, event }, 'an SFU event listener failed'));
  }

  get(room: string): RoomMedia | undefined {
    return this.rooms.get(room);
  }

  /** This node's media load: rooms and participants with media here (the node registry reports it). */
  load(): { rooms: number; peers: number } {
    let peers = 0;
    for (const r of this.rooms.values()) peers += r.peers.size;
    return { rooms: this.rooms.size, peers };
  }

  /** The room's media, created on first use (a router on the least-loaded worker). */
  open(room: string): Promise<RoomMedia> {
    const existing = this.rooms.get(room);
    if (existing) return Promise.resolve(existing);
    let p = this.opening.get(room);
    if (!p) {
      p = this.create(room).finally(() => this.opening.delete(room));
      this.opening.set(room, p);
    }
    return p;
  }

  private async create(room: string): Promise<RoomMedia> {
    await this.pool.waitAlive();
    const worker = this.pool.leastLoaded();
    const router = await worker.createRouter<RouterData>({ mediaCodecs: MEDIA_CODECS, appData: { worker, room } });
    const speaker = await router.createActiveSpeakerObserver({ interval: 300 });
    const media = new RoomMedia(room, router, speaker, this);
    router.on('workerclose', () => this.lost(media));
    this.rooms.set(room, media);
    return media;
  }

  /**
   * A worker of this room died: its routers are gone. The room's media is
   * re-created on a live worker and the room is told to negotiate again
   * (media-reset); signaling state (participants, mute) is kept.
   */
  lost(media: RoomMedia): void {
    if (media.closed || this.rooms.get(media.room) !== media) return;
    media.close();
    if (this.pool.isClosed) {
      this.rooms.delete(media.room);
      return;
    }
    this.rooms.delete(media.room);
    this.log.warn({ room: media.room }, 'room media lost with its worker; re-creating it');
    this.open(media.room)
      .then(() => this.safeEmit('media-reset', media.room))
      .catch((err: unknown) => this.log.error({ err, room: media.room }, 'could not re-create room media'));
  }

  close(room: string): void {
    this.rooms.get(room)?.close();
    this.rooms.delete(room);
  }
}
