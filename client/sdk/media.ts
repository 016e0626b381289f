/**
 * SFU media through mediasoup-client: the Device, one send and one receive
 * transport, a producer per published source and a consumer per remote track.
 * Media work runs one step at a time (a queue), and every failure leaves here
 * as a SwitchboardError.
 */
import { Device } from 'mediasoup-client';
import type { Consumer, DtlsParameters, IceCandidate, IceParameters, Producer, RtpCapabilities, RtpParameters, Transport } from 'mediasoup-client/types';
import type { IceServer, MediaSource, ProducerInfo, RoomState, Track } from '../../server/protocol';
import type { Connection } from './connection';
import { asError, SwitchboardError, unsupported } from './errors';
import type { RemoteTrack, SwitchboardEvents, SwitchboardOptions, WebRtcImplementation } from './types';

export const TRACK_OF: Record<MediaSource, Track> = { mic: 'audio', camera: 'video', screen: 'screen' };
/** Refusals of a consume or resume that only mean the producer went away meanwhile. */
const GONE_CODES = ['CONSUMER_NOT_FOUND', 'PRODUCER_NOT_FOUND', 'MEDIA_REQUEST_FAILED'];

/** mediasoup-client's parameters as the protocol carries them: opaque JSON objects. */
const json = (v: object): Record<string, unknown> => v as Record<string, unknown>;

/** The WebRTC classes mediasoup-client looks up as globals. */
const WEBRTC_GLOBALS = [
  'RTCPeerConnection',
  'RTCSessionDescription',
  'RTCIceCandidate',
  'MediaStream',
  'MediaStreamTrack',
  'RTCRtpSender',
  'RTCRtpReceiver',
  'RTCRtpTransceiver',
  'RTCDataChannel',
  'RTCDtlsTransport',
  'RTCIceTransport',
  'RTCSctpTransport',
  'RTCPeerConnectionIceEvent',
  'RTCDataChannelEvent',
];

/** Installs a WebRTC implementation's classes as globals where this environment has none. */
export function installWebRtc(impl: WebRtcImplementation): void {
  const g = globalThis as Record<string, unknown>;
  for (const name of WEBRTC_GLOBALS) if (impl[name] !== undefined && g[name] === undefined) g[name] = impl[name];
}

export interface MediaHost {
  readonly connection: Connection;
  readonly opts: SwitchboardOptions;
  /** My muted tracks as the server has them (a source published while muted starts paused). */
  mutedTracks(): Track[];
  isClosed(): boolean;
  emit<E extends keyof SwitchboardEvents>(event: E, payload: SwitchboardEvents[E]): void;
}

export class MediaSession {
  readonly remoteTracks = new Map<string, RemoteTrack>();
  iceServers: IceServer[] = [];
  private device: Device | null = null;
  private sendTransport: Transport | null = null;
  private recvTransport: Transport | null = null;
  private readonly producers = new Map<MediaSource, Producer>();
  /** What was published (to publish again after a media reset). */
  private readonly published = new Map<MediaSource, MediaStreamTrack>();
  /** Tracks the SDK opened itself (camera, microphone, screen): it stops them when the call is over for this client. */
  private readonly owned = new Set<MediaStreamTrack>();
  private readonly consumers = new Map<string, Consumer>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: MediaHost) {}

  get hasDevice(): boolean {
    return this.device !== null;
  }

  /**
   * Media work runs one at a time and rejects with a SwitchboardError.
   * `report`: nobody awaits it, so a failure becomes an 'error' event.
   */
  enqueue<T>(fn: () => Promise<T>, report = false): Promise<T> {
    const next = this.queue.then(fn, fn).catch((err: unknown) => {
      throw asError(err);
    });
    this.queue = next.catch((err: unknown) => {
      if (report) this.host.emit('error', asError(err));
    });
    return next;
  }

  /** After a join: publish what was published before, consume the others' producers. */
  start(state: RoomState, participantId: string): Promise<void> {
    return this.enqueue(async () => {
      await this.ensureDevice();
      for (const [source, track] of this.published) await this.produce(source, track);
      for (const p of state.producers) if (p.participant_id !== participantId) await this.consume(p);
    });
  }

  /** After a resumed join: media kept flowing; catch up with what was published or closed meanwhile. */
  catchUp(state: RoomState, participantId: string): void {
    const live = new Set(state.producers.map((p) => p.producer_id));
    for (const producerId of [...this.remoteTracks.keys()]) if (!live.has(producerId)) this.dropConsumer(producerId);
    void this.enqueue(async () => {
      for (const p of state.producers) if (p.participant_id !== participantId) await this.consume(p);
    }, true);
  }

  /** After a media-reset: every producer of the room is new (the others' arrive as new-producer events). */
  renegotiate(): void {
    this.reset();
    void this.enqueue(async () => {
      await this.ensureDevice();
      for (const [source, track] of this.published) await this.produce(source, track);
    }, true);
  }

  /** The call is over for this client: stop the tracks the SDK opened, forget what was published. */
  releaseTracks(): void {
    for (const t of this.owned) t.stop();
    this.owned.clear();
    this.published.clear();
  }

  private async ensureDevice(): Promise<Device> {
    if (this.device?.loaded) return this.device;
    const { rtp_capabilities } = await this.host.connection.request('get-router-rtp-capabilities', {});
    const { handlerName, webrtc } = this.host.opts;
    if (webrtc) installWebRtc(webrtc);
    let device: Device;
    try {
      device = handlerName ? new Device({ handlerName }) : new Device();
      await device.load({ routerRtpCapabilities: rtp_capabilities as RtpCapabilities });
    } catch (err) {
      // No handler for this environment (UnsupportedError), or no RTCPeerConnection behind the one asked for (ReferenceError).
      throw err instanceof ReferenceError ? unsupported(err) : err;
    }
    this.device = device;
    return device;
  }

  private async transport(direction: 'send' | 'recv'): Promise<Transport> {
    const existing = direction === 'send' ? this.sendTransport : this.recvTransport;
    if (existing && !existing.closed) return existing;
    const device = await this.ensureDevice();
    const { connection } = this.host;
    const info = await connection.request('create-transport', { direction });
    // mediasoup's parameters travel as opaque JSON; mediasoup-client reads them.
    const params = {
      id: info.transport_id,
      iceParameters: info.ice_parameters as unknown as IceParameters,
      iceCandidates: info.ice_candidates as unknown as IceCandidate[],
      dtlsParameters: info.dtls_parameters as unknown as DtlsParameters,
      iceServers: this.iceServers as RTCIceServer[],
    };
    const t = direction === 'send' ? device.createSendTransport(params) : device.createRecvTransport(params);
    t.on('connect', ({ dtlsParameters }, ok, fail) => {
      connection.request('connect-transport', { transport_id: t.id, dtls_parameters: json(dtlsParameters) }).then(() => ok(), fail);
    });
    if (direction === 'send') {
      t.on('produce', ({ kind, rtpParameters, appData }, ok, fail) => {
        const source = (appData as { source: MediaSource }).source;
        connection
          .request('produce', {
            transport_id: t.id,
            kind,
            rtp_parameters: json(rtpParameters),
            source,
            paused: Boolean((appData as { paused?: boolean }).paused),
          })
          .then((r) => ok({ id: r.producer_id }), fail);
      });
    }
    t.on('connectionstatechange', (state) => {
      // An ICE failure without a signaling failure: ask the server for new ICE parameters.
      if (state === 'failed' && !this.host.isClosed()) {
        connection
          .request('restart-ice', { transport_id: t.id })
          .then((r) => t.restartIce({ iceParameters: r.ice_parameters as unknown as IceParameters }))
          .catch((err: unknown) => this.host.emit('error', asError(err)));
      }
    });
    if (direction === 'send') this.sendTransport = t;
    else this.recvTransport = t;
    return t;
  }

  /** Publishes a track as a source; replaces that source's track if published already. */
  publish(track: MediaStreamTrack, source: MediaSource, owned = false): Promise<void> {
    this.published.set(source, track);
    if (owned) this.owned.add(track);
    return this.enqueue(() => this.produce(source, track));
  }

  private async produce(source: MediaSource, track: MediaStreamTrack): Promise<void> {
    const existing = this.producers.get(source);
    if (existing && !existing.closed) {
      await existing.replaceTrack({ track });
      return;
    }
    const t = await this.transport('send');
    const paused = this.host.mutedTracks().includes(TRACK_OF[source]);
    const producer = await t.produce({
      track,
      appData: { source, paused },
      stopTracks: false,
      ...(source === 'mic' ? { codecOptions: { opusDtx: true, opusFec: true } } : {}),
    });
    if (paused) producer.pause();
    this.producers.set(source, producer);
    producer.on('transportclose', () => this.producers.delete(source));
    producer.on('trackended', () => void this.unpublish(source));
  }

  /** Stops publishing a source (and stops its local track). */
  async unpublish(source: MediaSource): Promise<void> {
    const track = this.published.get(source);
    this.published.delete(source);
    const producer = this.producers.get(source);
    this.producers.delete(source);
    track?.stop();
    if (track) this.owned.delete(track);
    if (producer && !producer.closed) {
      producer.close();
      await this.host.connection.request('close-producer', { producer_id: producer.id }).catch(() => undefined);
    }
  }

  localTrack(source: MediaSource): MediaStreamTrack | undefined {
    return this.published.get(source);
  }

  /** My own track muted or unmuted by the server: it paused the producer; pause it here too (no sending). */
  setOwnMuted(track: Track, muted: boolean): void {
    for (const [source, producer] of this.producers) {
      if (TRACK_OF[source] !== track) continue;
      if (muted) producer.pause();
      else producer.resume();
    }
  }

  /** Receive statistics of the receive transport (wrtc has no per-consumer stats), for diagnostics and load tests. */
  async receiveStats(): Promise<{ bytesReceived: number; packetsReceived: number }> {
    let bytesReceived = 0;
    let packetsReceived = 0;
    if (!this.recvTransport || this.recvTransport.closed) return { bytesReceived, packetsReceived };
    const report = await this.recvTransport.getStats();
    report.forEach((s: { type?: string; bytesReceived?: number; packetsReceived?: number }) => {
      if (s.type !== 'inbound-rtp') return;
      bytesReceived += s.bytesReceived ?? 0;
      packetsReceived += s.packetsReceived ?? 0;
    });
    return { bytesReceived, packetsReceived };
  }

  consumeLater(p: ProducerInfo): void {
    void this.enqueue(() => this.consume(p), true);
  }

  private async consume(p: ProducerInfo): Promise<void> {
    if ([...this.consumers.values()].some((c) => c.producerId === p.producer_id)) return;
    const device = await this.ensureDevice();
    const t = await this.transport('recv');
    const { connection } = this.host;
    const res = await connection
      .request('consume', { transport_id: t.id, producer_id: p.producer_id, rtp_capabilities: json(device.rtpCapabilities) })
      .catch((err: unknown) => {
        if (err instanceof SwitchboardError && err.code === 'PRODUCER_NOT_FOUND') return null; // closed meanwhile
        throw err;
      });
    if (!res) return;
    const consumer = await t.consume({
      id: res.consumer_id,
      producerId: res.producer_id,
      kind: res.kind,
      rtpParameters: res.rtp_parameters as unknown as RtpParameters,
    });
    try {
      await connection.request('resume-consumer', { consumer_id: consumer.id });
    } catch (err) {
      consumer.close();
      // Its producer went away meanwhile (the sender left or stopped): nothing to receive, not an error.
      if (err instanceof SwitchboardError && GONE_CODES.includes(err.code)) return;
      throw err;
    }
    this.consumers.set(consumer.id, consumer);
    const remote: RemoteTrack = {
      participantId: res.participant_id,
      source: res.source,
      producerId: res.producer_id,
      consumerId: consumer.id,
      track: consumer.track,
      paused: res.producer_paused,
    };
    this.remoteTracks.set(res.producer_id, remote);
    this.host.emit('track', remote);
  }

  dropConsumer(producerId: string): void {
    const remote = this.remoteTracks.get(producerId);
    if (!remote) return;
    this.remoteTracks.delete(producerId);
    this.consumers.get(remote.consumerId)?.close();
    this.consumers.delete(remote.consumerId);
    this.host.emit('track-ended', { participantId: remote.participantId, source: remote.source, producerId });
  }

  dropConsumersOf(participantId: string): void {
    for (const [producerId, r] of this.remoteTracks) if (r.participantId === participantId) this.dropConsumer(producerId);
  }

  setRemotePaused(producerId: string, paused: boolean): void {
    const r = this.remoteTracks.get(producerId);
    if (!r) return;
    r.paused = paused;
    this.host.emit('track-paused', { participantId: r.participantId, producerId, paused });
  }

  /** Closes transports, producers and consumers (the published tracks are kept, to publish again). */
  reset(): void {
    for (const producerId of [...this.remoteTracks.keys()]) this.dropConsumer(producerId);
    for (const p of this.producers.values()) p.close();
    this.producers.clear();
    this.sendTransport?.close();
    this.recvTransport?.close();
    this.sendTransport = null;
    this.recvTransport = null;
    this.device = null;
  }
}
