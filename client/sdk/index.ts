/**
 * Switchboard client SDK: the signaling protocol (server/protocol)
 * over socket.io-client, and SFU media through mediasoup-client.
 *
 *   const call = await SwitchboardClient.connect({ url: 'https://calls.example.com', token });
 *   call.on('track', ({ participantId, track }) => attach(participantId, track));
 *   await call.join('standup', { displayName: 'Ada' });
 *   await call.publishCamera();
 *   await call.publishMicrophone();
 *
 * Works in browsers and in Node (with a WebRTC implementation installed as
 * globals, e.g. @roamhq/wrtc, and `handlerName: 'Chrome111'`).
 */
import { Device } from 'mediasoup-client';
import type {
  BuiltinHandlerName,
  Consumer,
  DtlsParameters,
  IceCandidate,
  IceParameters,
  Producer,
  RtpCapabilities,
  RtpParameters,
  Transport,
} from 'mediasoup-client/types';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type {
  AckResponse,
  AckResult,
  CallStatus,
  ChatMessage,
  ClientEvent,
  ClientToServerEvents,
  ErrorCode,
  IceServer,
  InviteOk,
  MediaSource,
  ParticipantState,
  Payload,
  ProducerInfo,
  RecordingFinished,
  Role,
  RoomState,
  Sender,
  ServerToClientEvents,
  Track,
} from '../../server/protocol';

export type {
  AckResult,
  CallStatus,
  ChatMessage,
  ClientEvent,
  ClientToServerEvents,
  ErrorCode,
  MediaSource,
  ParticipantState,
  Payload,
  ProducerInfo,
  RecordingFinished,
  Role,
  RoomState,
  Sender,
  ServerToClientEvents,
  Track,
};

/** Codes the SDK itself fails with (the others are the server's: server/protocol/errors.ts). */
export const SDK_ERROR_CODES = [
  'CONNECTION_FAILED',
  'TIMEOUT',
  'CLIENT_ERROR',
  'MEDIA_PERMISSION_DENIED',
  'MEDIA_DEVICE_NOT_FOUND',
  'MEDIA_DEVICE_BUSY',
  'MEDIA_DEVICE_UNAVAILABLE',
] as const;
export type SwitchboardErrorCode = ErrorCode | (typeof SDK_ERROR_CODES)[number];

/** A failed request: `code` is one of the server's stable codes (docs/errors.md) or one of SDK_ERROR_CODES. */
export class SwitchboardError extends Error {
  constructor(
    readonly code: SwitchboardErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SwitchboardError';
  }
}

/** A code received over the wire; a newer server may send one this SDK does not list yet. */
const wireCode = (code: string): SwitchboardErrorCode => code as SwitchboardErrorCode;

export interface SwitchboardOptions {
  /** The server's base URL (http(s)://host:port). */
  url: string;
  /** A token, or a function returning a fresh one (called again when the token expired, on reconnect). */
  token: string | (() => string | Promise<string>);
  /** Extra socket.io-client options (transports, path…). */
  socket?: Partial<ManagerOptions & SocketOptions>;
  /** mediasoup-client handler (Node: 'Chrome111'); detected in browsers. */
  handlerName?: BuiltinHandlerName;
  /** How long a request waits for its acknowledgement (default 10 s). */
  timeoutMs?: number;
  /** Acknowledge inbox items (missed calls, messages) once the listeners have run (default true). */
  autoAckInbox?: boolean;
}

export interface RemoteTrack {
  participantId: string;
  source: MediaSource;
  producerId: string;
  consumerId: string;
  track: MediaStreamTrack;
  /** Paused at the sender (muted or on hold). */
  paused: boolean;
}

export interface SwitchboardEvents {
  /** The connection state: connecting, connected, reconnecting, closed. */
  connection: { state: 'connected' | 'reconnecting' | 'closed'; reason?: string };
  joined: { state: RoomState; resumed: boolean };
  'participant-joined': ParticipantState;
  'participant-left': { participant: ParticipantState | undefined; participantId: string; reason: string };
  /** Mute, hold or role changes of a participant (its new state). */
  'participant-updated': ParticipantState;
  track: RemoteTrack;
  'track-ended': { participantId: string; source: MediaSource; producerId: string };
  'track-paused': { participantId: string; producerId: string; paused: boolean };
  'active-speaker': { participantId: string | null };
  'call-state': { status: CallStatus; recording: boolean };
  'recording-started': { recordingId: string; mode: string; by: string | null };
  'recording-finished': RecordingFinished;
  dtmf: { from: string; tones: string };
  /** Removed from the call (or replaced by a newer session of the same user). */
  removed: { reason: string; by: string | null };
  /** The room's media was re-created; the SDK renegotiates by itself (this is informational). */
  'media-reset': { reason: string };
  offer: { from: string; sdp: string };
  answer: { from: string; sdp: string };
  'ice-candidate': { from: string; candidate: string; sdpMid: string | null; sdpMLineIndex: number | null };
  error: SwitchboardError;
  /** Ringing: accept(invitationId) then join(room), or decline(invitationId). */
  'incoming-call': { invitationId: string; callId: string; room: string; from: Sender; expiresAt: string };
  /** Stop ringing (answered on this or another device, expired, or the call ended). */
  'incoming-call-ended': { invitationId: string; callId: string; reason: string };
  /** An answer to an invitation you (or your backend) sent. */
  'invitation-answered': { invitationId: string; callId: string; userId: string; answer: 'accepted' | 'declined' | 'expired'; reason: string | null };
  /** Inbox items: acknowledged automatically after the listeners ran (autoAckInbox, default true), else call ackInbox. */
  'missed-call': { id: string; invitationId: string; callId: string; room: string; from: Sender; invitedAt: string };
  'inbox-message': { id: string; from: Sender; callId: string | null; text: string; sentAt: string };
  /** In-call chat. */
  message: ChatMessage;
}

type Listener<T> = (payload: T) => void;
/** mediasoup-client's parameters as the protocol carries them: opaque JSON objects. */
const json = (v: object): Record<string, unknown> => v as Record<string, unknown>;

const TRACK_OF: Record<MediaSource, Track> = { mic: 'audio', camera: 'video', screen: 'screen' };
const RETRY_CODES = new Set(['SERVER_DRAINING', 'SERVER_FULL']);
const TOKEN_CODES = new Set(['TOKEN_EXPIRED', 'TOKEN_NOT_YET_VALID']);

export class SwitchboardClient {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  /** The current room (after join). */
  room: string | null = null;
  callId: string | null = null;
  participantId: string | null = null;
  status: CallStatus | null = null;
  recording = false;
  readonly participants = new Map<string, ParticipantState>();
  readonly remoteTracks = new Map<string, RemoteTrack>();
  private readonly listeners = new Map<keyof SwitchboardEvents, Set<Listener<never>>>();
  private readonly timeoutMs: number;
  private device: Device | null = null;
  private sendTransport: Transport | null = null;
  private recvTransport: Transport | null = null;
  private readonly producers = new Map<MediaSource, Producer>();
  /** What was published (to publish again after a media reset). */
  private readonly published = new Map<MediaSource, MediaStreamTrack>();
  /** Tracks the SDK opened itself (camera, microphone, screen): it stops them when the call is over for this client. */
  private readonly owned = new Set<MediaStreamTrack>();
  private readonly consumers = new Map<string, Consumer>();
  private joinOptions: { displayName?: string; capabilities?: Record<string, unknown> } = {};
  private iceServers: IceServer[] = [];
  private closed = false;
  private mediaQueue: Promise<unknown> = Promise.resolve();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;

  private constructor(
    private readonly opts: SwitchboardOptions,
    token: string,
  ) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.socket = io(opts.url, {
      transports: ['websocket'],
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      ...opts.socket,
      auth: (cb) => void this.currentToken(token).then((t) => cb({ token: t })),
    }) as Socket<ServerToClientEvents, ClientToServerEvents>;
    this.wire();
  }

  /** Connects and authenticates; rejects with the server's code (TOKEN_EXPIRED, SERVER_FULL…) when refused. */
  static async connect(opts: SwitchboardOptions): Promise<SwitchboardClient> {
    const token = typeof opts.token === 'string' ? opts.token : await opts.token();
    const client = new SwitchboardClient(opts, token);
    await new Promise<void>((resolve, reject) => {
      const onConnect = () => {
        client.socket.off('connect_error', onError);
        resolve();
      };
      const onError = (err: Error & { data?: { code?: string; message?: string } }) => {
        client.socket.off('connect', onConnect);
        client.close();
        reject(new SwitchboardError(err.data?.code ? wireCode(err.data.code) : 'CONNECTION_FAILED', err.data?.message ?? err.message));
      };
      client.socket.once('connect', onConnect);
      client.socket.once('connect_error', onError);
    });
    return client;
  }

  // ---- events ----------------------------------------------------------------------------
  on<E extends keyof SwitchboardEvents>(event: E, listener: Listener<SwitchboardEvents[E]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  private emit<E extends keyof SwitchboardEvents>(event: E, payload: SwitchboardEvents[E]): void {
    for (const l of this.listeners.get(event) ?? []) {
      try {
        (l as Listener<SwitchboardEvents[E]>)(payload);
      } catch (err) {
        // The app's own listener failed: the console is the only channel that cannot loop back into it.
        // eslint-disable-next-line no-console
        console.error(`switchboard: a '${event}' listener threw`, err);
      }
    }
  }

  // ---- requests --------------------------------------------------------------------------
  /** Sends a protocol event and resolves with its acknowledgement; rejects with a SwitchboardError. */
  request<E extends ClientEvent>(event: E, payload: Payload<E>): Promise<AckResult<E>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new SwitchboardError('TIMEOUT', `no answer to ${event} within ${this.timeoutMs} ms`)), this.timeoutMs);
      // Socket.IO's emit cannot relate a generic event to its own arguments: the one cast of the SDK.
      const emit = this.socket.emit as (ev: E, p: Payload<E>, ack: (r: AckResponse<E> | undefined) => void) => void;
      emit.call(this.socket, event, payload, (res) => {
        clearTimeout(timer);
        if (res && 'ok' in res) resolve(res);
        else reject(new SwitchboardError(res?.error.code ?? 'INTERNAL_ERROR', res?.error.message ?? 'request failed'));
      });
    });
  }

  /** Round-trip time to the server in ms (the `server-time` event), and how far the server's clock is ahead of this one. */
  async ping(): Promise<{ rttMs: number; clockOffsetMs: number }> {
    const sent = Date.now();
    const { server_time } = await this.request('server-time', {});
    const received = Date.now();
    return { rttMs: received - sent, clockOffsetMs: server_time - (sent + received) / 2 };
  }

  private requireCall(): string {
    if (!this.callId) throw new SwitchboardError('NOT_JOINED', 'join a room first');
    return this.callId;
  }

  private async currentToken(initial: string): Promise<string> {
    const t = this.opts.token;
    if (typeof t === 'string') return t;
    // A refresher: use the last token while it is valid for another 30 s, else ask for a new one.
    const exp = tokenExpiry(this.lastToken ?? initial);
    if (exp !== null && exp * 1000 - Date.now() > 30_000) return this.lastToken ?? initial;
    this.lastToken = await t();
    return this.lastToken;
  }
  private lastToken: string | undefined;

  // ---- joining -----------------------------------------------------------------------------
  /** Joins a room (the token's room when it is room-scoped). Resolves with the room state. */
  async join(room: string, options: { displayName?: string; capabilities?: Record<string, unknown> } = {}): Promise<RoomState> {
    this.joinOptions = options;
    const res = await this.request('join', {
      room,
      ...(options.displayName ? { display_name: options.displayName } : {}),
      ...(options.capabilities ? { capabilities: options.capabilities } : {}),
    });
    await this.adopt(room, res.participant_id, res.room_state, res.resumed);
    return res.room_state;
  }

  private async adopt(room: string, participantId: string, state: RoomState, resumed: boolean): Promise<void> {
    const rejoinedAsNew = this.participantId !== null && this.participantId !== participantId;
    this.room = room;
    this.callId = state.call_id;
    this.participantId = participantId;
    this.status = state.status;
    this.recording = state.recording;
    this.iceServers = state.ice_servers;
    this.participants.clear();
    for (const p of state.participants) this.participants.set(p.participant_id, p);
    this.emit('joined', { state, resumed });
    if (state.mode !== 'sfu') return;
    if (resumed && this.device) {
      // Media kept flowing through the reconnect; catch up with what was published or closed meanwhile.
      const live = new Set(state.producers.map((p) => p.producer_id));
      for (const producerId of [...this.remoteTracks.keys()]) if (!live.has(producerId)) this.dropConsumer(producerId);
      void this.enqueueMedia(async () => {
        for (const p of state.producers) if (p.participant_id !== participantId) await this.consume(p);
      }, true);
      return;
    }
    if (rejoinedAsNew) this.resetMedia();
    await this.enqueueMedia(async () => {
      await this.ensureDevice();
      for (const [source, track] of this.published) await this.produce(source, track);
      for (const p of state.producers) if (p.participant_id !== participantId) await this.consume(p);
    });
  }

  async leave(): Promise<void> {
    if (!this.callId) return;
    const callId = this.callId;
    this.resetMedia();
    this.releaseTracks();
    this.callId = null;
    this.room = null;
    this.participantId = null;
    this.participants.clear();
    await this.request('leave', { call_id: callId });
  }

  /** Leaves and disconnects for good. */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.resetMedia();
    this.releaseTracks();
    this.socket.disconnect();
    this.emit('connection', { state: 'closed' });
  }

  // ---- media -----------------------------------------------------------------------------
  /** Media work runs one at a time; `report`: nobody awaits it, so a failure becomes an 'error' event. */
  private enqueueMedia<T>(fn: () => Promise<T>, report = false): Promise<T> {
    const next = this.mediaQueue.then(fn, fn);
    this.mediaQueue = next.catch((err: unknown) => {
      if (report) this.emit('error', asError(err));
    });
    return next;
  }

  /** The call is over for this client: stop the tracks the SDK opened, forget what was published. */
  private releaseTracks(): void {
    for (const t of this.owned) t.stop();
    this.owned.clear();
    this.published.clear();
  }

  private async ensureDevice(): Promise<Device> {
    if (this.device?.loaded) return this.device;
    const { rtp_capabilities } = await this.request('get-router-rtp-capabilities', {});
    const device = this.opts.handlerName ? new Device({ handlerName: this.opts.handlerName }) : new Device();
    await device.load({ routerRtpCapabilities: rtp_capabilities as RtpCapabilities });
    this.device = device;
    return device;
  }

  private async transport(direction: 'send' | 'recv'): Promise<Transport> {
    const existing = direction === 'send' ? this.sendTransport : this.recvTransport;
    if (existing && !existing.closed) return existing;
    const device = await this.ensureDevice();
    const info = await this.request('create-transport', { direction });
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
      this.request('connect-transport', { transport_id: t.id, dtls_parameters: json(dtlsParameters) }).then(() => ok(), fail);
    });
    if (direction === 'send') {
      t.on('produce', ({ kind, rtpParameters, appData }, ok, fail) => {
        const source = (appData as { source: MediaSource }).source;
        this.request('produce', {
          transport_id: t.id,
          kind,
          rtp_parameters: json(rtpParameters),
          source,
          paused: Boolean((appData as { paused?: boolean }).paused),
        }).then((r) => ok({ id: r.producer_id }), fail);
      });
    }
    t.on('connectionstatechange', (state) => {
      // An ICE failure without a signaling failure: ask the server for new ICE parameters.
      if (state === 'failed' && !this.closed) {
        this.request('restart-ice', { transport_id: t.id })
          .then((r) => t.restartIce({ iceParameters: r.ice_parameters as unknown as IceParameters }))
          .catch((err: unknown) => this.emit('error', asError(err)));
      }
    });
    if (direction === 'send') this.sendTransport = t;
    else this.recvTransport = t;
    return t;
  }

  /** Publishes a track as a source (mic, camera or screen). Replaces that source's track if published already. */
  publishTrack(track: MediaStreamTrack, source: MediaSource): Promise<void> {
    this.published.set(source, track);
    return this.enqueueMedia(() => this.produce(source, track));
  }

  private async produce(source: MediaSource, track: MediaStreamTrack): Promise<void> {
    const existing = this.producers.get(source);
    if (existing && !existing.closed) {
      await existing.replaceTrack({ track });
      return;
    }
    const t = await this.transport('send');
    const me = this.participantId ? this.participants.get(this.participantId) : undefined;
    const paused = me?.muted_tracks.includes(TRACK_OF[source]) ?? false;
    const producer = await t.produce({
      track,
      appData: { source, paused },
      stopTracks: false,
      ...(source === 'camera' ? { encodings: undefined } : {}),
      ...(source === 'mic' ? { codecOptions: { opusDtx: true, opusFec: true } } : {}),
    });
    if (paused) producer.pause();
    this.producers.set(source, producer);
    producer.on('transportclose', () => this.producers.delete(source));
    producer.on('trackended', () => void this.unpublish(source));
  }

  /** Opens the camera (getUserMedia) and publishes it. */
  async publishCamera(constraints: MediaTrackConstraints | boolean = true): Promise<MediaStreamTrack> {
    const stream = await userMedia({ video: constraints });
    const track = stream.getVideoTracks()[0]!;
    this.owned.add(track);
    await this.publishTrack(track, 'camera');
    return track;
  }

  /** Opens the microphone and publishes it. */
  async publishMicrophone(constraints: MediaTrackConstraints | boolean = true): Promise<MediaStreamTrack> {
    const stream = await userMedia({ audio: constraints });
    const track = stream.getAudioTracks()[0]!;
    this.owned.add(track);
    await this.publishTrack(track, 'mic');
    return track;
  }

  /** Shares the screen (getDisplayMedia). */
  async publishScreen(): Promise<MediaStreamTrack> {
    if (typeof navigator === 'undefined' || !navigator.mediaDevices?.getDisplayMedia)
      throw new SwitchboardError('MEDIA_DEVICE_UNAVAILABLE', 'screen sharing is not available here');
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true });
    } catch (err) {
      throw mediaError(err);
    }
    const track = stream.getVideoTracks()[0]!;
    this.owned.add(track);
    await this.publishTrack(track, 'screen');
    return track;
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
      await this.request('close-producer', { producer_id: producer.id }).catch(() => undefined);
    }
  }

  /** The local track published as a source, if any. */
  localTrack(source: MediaSource): MediaStreamTrack | undefined {
    return this.published.get(source);
  }

  private async consume(p: ProducerInfo): Promise<void> {
    if ([...this.consumers.values()].some((c) => c.producerId === p.producer_id)) return;
    const device = await this.ensureDevice();
    const t = await this.transport('recv');
    const res = await this.request('consume', { transport_id: t.id, producer_id: p.producer_id, rtp_capabilities: json(device.rtpCapabilities) }).catch(
      (err: unknown) => {
        if (err instanceof SwitchboardError && err.code === 'PRODUCER_NOT_FOUND') return null; // closed meanwhile
        throw err;
      },
    );
    if (!res) return;
    const consumer = await t.consume({
      id: res.consumer_id,
      producerId: res.producer_id,
      kind: res.kind,
      rtpParameters: res.rtp_parameters as unknown as RtpParameters,
    });
    try {
      await this.request('resume-consumer', { consumer_id: consumer.id });
    } catch (err) {
      consumer.close();
      // Its producer went away meanwhile (the sender left or stopped): nothing to receive, not an error.
      if (err instanceof SwitchboardError && ['CONSUMER_NOT_FOUND', 'PRODUCER_NOT_FOUND', 'MEDIA_REQUEST_FAILED'].includes(err.code)) return;
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
    this.emit('track', remote);
  }

  private dropConsumer(producerId: string): void {
    const remote = this.remoteTracks.get(producerId);
    if (!remote) return;
    this.remoteTracks.delete(producerId);
    this.consumers.get(remote.consumerId)?.close();
    this.consumers.delete(remote.consumerId);
    this.emit('track-ended', { participantId: remote.participantId, source: remote.source, producerId });
  }

  /** Closes transports, producers and consumers (the published tracks are kept, to publish again). */
  private resetMedia(): void {
    for (const producerId of [...this.remoteTracks.keys()]) this.dropConsumer(producerId);
    for (const p of this.producers.values()) p.close();
    this.producers.clear();
    this.sendTransport?.close();
    this.recvTransport?.close();
    this.sendTransport = null;
    this.recvTransport = null;
    this.device = null;
  }

  // ---- call controls -------------------------------------------------------------------------
  /** Mutes a track: your own, or (host, moderator) someone else's, which they cannot unmute. */
  async mute(track: Track, participantId?: string): Promise<void> {
    await this.request('mute', { call_id: this.requireCall(), track, ...(participantId ? { participant_id: participantId } : {}) });
  }

  async unmute(track: Track, participantId?: string): Promise<void> {
    await this.request('unmute', { call_id: this.requireCall(), track, ...(participantId ? { participant_id: participantId } : {}) });
  }

  /** Puts your tracks (or one) on hold: you stop sending and receiving it. */
  async hold(track?: Track): Promise<Track[]> {
    const r = await this.request('hold', { call_id: this.requireCall(), ...(track ? { track } : {}) });
    return r.held_tracks;
  }

  async unhold(track?: Track): Promise<Track[]> {
    const r = await this.request('unhold', { call_id: this.requireCall(), ...(track ? { track } : {}) });
    return r.held_tracks;
  }

  /** Sends DTMF tones (0-9 * # A-D, and ',' for a pause) to the others. */
  async sendDtmf(tones: string): Promise<void> {
    await this.request('dtmf', { call_id: this.requireCall(), tones });
  }

  async removeParticipant(participantId: string, reason?: string): Promise<void> {
    await this.request('remove-participant', { call_id: this.requireCall(), participant_id: participantId, ...(reason ? { reason } : {}) });
  }

  async setRole(participantId: string, role: Role): Promise<void> {
    await this.request('set-role', { call_id: this.requireCall(), participant_id: participantId, role });
  }

  async endCall(): Promise<void> {
    await this.request('end-call', { call_id: this.requireCall() });
  }

  async startRecording(mode: 'participant' | 'composite' = 'participant'): Promise<{ recordingId: string; startedAt: string }> {
    const r = await this.request('start-recording', { call_id: this.requireCall(), mode });
    return { recordingId: r.recording_id, startedAt: r.started_at };
  }

  async stopRecording(): Promise<RecordingFinished | null> {
    const r = await this.request('stop-recording', { call_id: this.requireCall() });
    return r.recording ?? null;
  }

  /** Peer-to-peer mode: relays an SDP or ICE candidate to another participant. */
  async sendOffer(to: string, sdp: string): Promise<void> {
    await this.request('offer', { call_id: this.requireCall(), to, sdp });
  }

  async sendAnswer(to: string, sdp: string): Promise<void> {
    await this.request('answer', { call_id: this.requireCall(), to, sdp });
  }

  async sendIceCandidate(to: string, c: { candidate: string; sdpMid?: string | null; sdpMLineIndex?: number | null }): Promise<void> {
    await this.request('ice-candidate', { call_id: this.requireCall(), to, ...c });
  }

  // ---- invitations, inbox, chat ------------------------------------------------------------------
  /** Rings users into the current call (host, moderator). */
  async invite(userIds: string[], timeoutSeconds?: number): Promise<InviteOk['invitations']> {
    const r = await this.request('invite', { call_id: this.requireCall(), user_ids: userIds, ...(timeoutSeconds ? { timeout_seconds: timeoutSeconds } : {}) });
    return r.invitations;
  }

  /** Accepts an invitation (the other devices stop ringing) and joins its room. */
  async accept(invitationId: string, options: { displayName?: string; join?: boolean } = {}): Promise<{ callId: string; room: string }> {
    const r = await this.request('accept', { invitation_id: invitationId });
    const out = { callId: r.call_id, room: r.room };
    if (options.join !== false) await this.join(out.room, options.displayName ? { displayName: options.displayName } : {});
    return out;
  }

  async decline(invitationId: string, reason?: string): Promise<void> {
    await this.request('decline', { invitation_id: invitationId, ...(reason ? { reason } : {}) });
  }

  /** Acknowledges inbox items so they are not delivered again. */
  async ackInbox(ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const r = await this.request('ack-inbox', { ids });
    return r.acked;
  }

  /** Chat: to the room, or privately to a user of the call (who gets it in its inbox, even offline). */
  async sendMessage(text: string, toUserId?: string): Promise<{ messageId: string; sentAt: string }> {
    const r = await this.request('message', { call_id: this.requireCall(), text, ...(toUserId ? { to_user_id: toUserId } : {}) });
    return { messageId: r.message_id, sentAt: r.sent_at };
  }

  private inboxItem(id: string): void {
    if (this.opts.autoAckInbox === false) return;
    this.ackInbox([id]).catch((err: unknown) => this.emit('error', asError(err)));
  }

  /** My own state as the server has it. */
  get me(): ParticipantState | undefined {
    return this.participantId ? this.participants.get(this.participantId) : undefined;
  }

  // ---- server events ---------------------------------------------------------------------------
  private update(id: string, change: (p: ParticipantState) => void): void {
    const p = this.participants.get(id);
    if (!p) return;
    change(p);
    this.emit('participant-updated', p);
  }

  private wire(): void {
    const s = this.socket;
    s.on('connect', () => {
      this.emit('connection', { state: 'connected' });
      // A reconnect: join the same room again; within the grace period this resumes.
      if (this.room && this.participantId) {
        const room = this.room;
        this.join(room, this.joinOptions).catch((err: unknown) => this.emit('error', asError(err)));
      }
    });
    s.on('disconnect', (reason) => {
      if (this.closed) return;
      // A server-side disconnect (removed, replaced) does not reconnect; a lost transport does.
      this.emit('connection', { state: reason === 'io server disconnect' ? 'closed' : 'reconnecting', reason });
    });
    s.on('connect_error', (err: Error & { data?: { code?: string; message?: string } }) => {
      const code = err.data?.code;
      if (!code || this.closed || !this.room) return;
      // Refused by the server's middleware: socket.io-client does not retry that by itself.
      if (RETRY_CODES.has(code) || (TOKEN_CODES.has(code) && typeof this.opts.token === 'function')) {
        this.emit('connection', { state: 'reconnecting', reason: code });
        this.retryTimer = setTimeout(() => s.connect(), 500 + Math.random() * 1000);
      } else this.emit('error', new SwitchboardError(wireCode(code), err.data?.message ?? err.message));
    });
    s.on('peer-joined', ({ participant }) => {
      this.participants.set(participant.participant_id, participant);
      this.emit('participant-joined', participant);
    });
    s.on('peer-left', ({ participant_id, reason }) => {
      const participant = this.participants.get(participant_id);
      this.participants.delete(participant_id);
      for (const [producerId, r] of this.remoteTracks) if (r.participantId === participant_id) this.dropConsumer(producerId);
      this.emit('participant-left', { participant, participantId: participant_id, reason });
    });
    s.on('mute-changed', (e) => {
      this.update(e.participant_id, (p) => {
        p.muted_tracks = e.muted ? [...new Set([...p.muted_tracks, e.track])] : p.muted_tracks.filter((t) => t !== e.track);
        p.locked_tracks = e.locked ? [...new Set([...p.locked_tracks, e.track])] : p.locked_tracks.filter((t) => t !== e.track);
      });
      // My own track muted by the server: the server paused the producer; pause it here too (no sending).
      if (e.participant_id === this.participantId) {
        for (const [source, producer] of this.producers) {
          if (TRACK_OF[source] !== e.track) continue;
          if (e.muted) producer.pause();
          else producer.resume();
        }
      }
    });
    s.on('hold-changed', (e) => this.update(e.participant_id, (p) => (p.held_tracks = e.held_tracks)));
    s.on('role-changed', (e) => this.update(e.participant_id, (p) => (p.role = e.role)));
    s.on('dtmf', (e) => this.emit('dtmf', { from: e.from, tones: e.tones }));
    s.on('removed', (e) => {
      this.resetMedia();
      this.releaseTracks();
      this.room = null;
      this.callId = null;
      this.participantId = null;
      this.emit('removed', { reason: e.reason, by: e.by });
    });
    s.on('call-state-changed', (e) => {
      this.status = e.status;
      this.recording = e.recording;
      this.emit('call-state', { status: e.status, recording: e.recording });
      if (e.status === 'ended') {
        this.resetMedia();
        this.releaseTracks();
        this.room = null;
        this.callId = null;
        this.participantId = null;
      }
    });
    s.on('new-producer', (p) => void this.enqueueMedia(() => this.consume(p), true));
    s.on('producer-closed', (e) => this.dropConsumer(e.producer_id));
    s.on('consumer-closed', (e) => this.dropConsumer(e.producer_id));
    const paused = (producerId: string, value: boolean) => {
      const r = this.remoteTracks.get(producerId);
      if (r) {
        r.paused = value;
        this.emit('track-paused', { participantId: r.participantId, producerId, paused: value });
      }
    };
    s.on('producer-paused', (e) => paused(e.producer_id, true));
    s.on('producer-resumed', (e) => paused(e.producer_id, false));
    s.on('active-speaker', (e) => this.emit('active-speaker', { participantId: e.participant_id }));
    s.on('recording-started', (e) => {
      this.recording = true;
      this.emit('recording-started', { recordingId: e.recording_id, mode: e.mode, by: e.by });
    });
    s.on('recording-finished', (e) => {
      this.recording = false;
      this.emit('recording-finished', e);
    });
    s.on('media-reset', (e) => {
      this.emit('media-reset', { reason: e.reason });
      this.resetMedia();
      // Every producer of the room is new after a reset: the others' arrive as new-producer events.
      void this.enqueueMedia(async () => {
        await this.ensureDevice();
        for (const [source, track] of this.published) await this.produce(source, track);
      }, true);
    });
    s.on('server-draining', () => this.emit('connection', { state: 'reconnecting', reason: 'server-draining' }));
    s.on('offer', (e) => this.emit('offer', { from: e.from, sdp: e.sdp }));
    s.on('answer', (e) => this.emit('answer', { from: e.from, sdp: e.sdp }));
    s.on('ice-candidate', (e) => this.emit('ice-candidate', { from: e.from, candidate: e.candidate, sdpMid: e.sdpMid, sdpMLineIndex: e.sdpMLineIndex }));
    s.on('signaling-error', (e) => this.emit('error', new SwitchboardError(wireCode(e.code), e.message)));
    s.on('incoming-call', (e) =>
      this.emit('incoming-call', { invitationId: e.invitation_id, callId: e.call_id, room: e.room, from: e.from, expiresAt: e.expires_at }),
    );
    s.on('incoming-call-ended', (e) => this.emit('incoming-call-ended', { invitationId: e.invitation_id, callId: e.call_id, reason: e.reason }));
    s.on('invitation-accepted', (e) =>
      this.emit('invitation-answered', { invitationId: e.invitation_id, callId: e.call_id, userId: e.user_id, answer: 'accepted', reason: null }),
    );
    s.on('invitation-declined', (e) =>
      this.emit('invitation-answered', { invitationId: e.invitation_id, callId: e.call_id, userId: e.user_id, answer: 'declined', reason: e.reason }),
    );
    s.on('invitation-expired', (e) =>
      this.emit('invitation-answered', { invitationId: e.invitation_id, callId: e.call_id, userId: e.user_id, answer: 'expired', reason: null }),
    );
    // Inbox items may arrive twice (two devices, a reconnect before the acknowledgement): once per id here.
    const seen = new Set<string>();
    s.on('missed-call', (e) => {
      if (!seen.has(e.id)) {
        seen.add(e.id);
        this.emit('missed-call', { id: e.id, invitationId: e.invitation_id, callId: e.call_id, room: e.room, from: e.from, invitedAt: e.invited_at });
      }
      this.inboxItem(e.id);
    });
    s.on('inbox-message', (e) => {
      if (!seen.has(e.id)) {
        seen.add(e.id);
        this.emit('inbox-message', { id: e.id, from: e.from, callId: e.call_id, text: e.text, sentAt: e.sent_at });
      }
      this.inboxItem(e.id);
    });
    s.on('message', (e) => this.emit('message', e));
  }
}

function asError(err: unknown): SwitchboardError {
  if (err instanceof SwitchboardError) return err;
  const e = err as { name?: string; message?: string };
  return new SwitchboardError('CLIENT_ERROR', e?.message ?? String(err));
}

/** getUserMedia with the browser's refusal turned into a clear code. */
async function userMedia(constraints: MediaStreamConstraints): Promise<MediaStream> {
  if (typeof navigator === 'undefined' || !navigator.mediaDevices?.getUserMedia) {
    throw new SwitchboardError('MEDIA_DEVICE_UNAVAILABLE', 'camera and microphone are not available here (a secure context, https or localhost, is required)');
  }
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch (err) {
    throw mediaError(err);
  }
}

/** A browser's media error (getUserMedia, getDisplayMedia) as a SwitchboardError with a stable code. */
function mediaError(err: unknown): SwitchboardError {
  const name = (err as { name?: string }).name;
  if (name === 'NotAllowedError' || name === 'SecurityError')
    return new SwitchboardError('MEDIA_PERMISSION_DENIED', 'access to the camera, microphone or screen was denied');
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return new SwitchboardError('MEDIA_DEVICE_NOT_FOUND', 'no camera or microphone was found');
  if (name === 'NotReadableError') return new SwitchboardError('MEDIA_DEVICE_BUSY', 'the camera or microphone is in use by another application');
  return new SwitchboardError('MEDIA_DEVICE_UNAVAILABLE', (err as Error)?.message ?? String(err));
}

/** The `exp` of a JWT (seconds), without verifying it; null when unreadable. */
export function tokenExpiry(token: string): number | null {
  try {
    const part = token.split('.')[1];
    if (!part) return null;
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp : null;
  } catch {
    return null;
  }
}
