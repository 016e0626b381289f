/**
 * SwitchboardClient: one connection to a Switchboard server, the call it
 * joined, and the call controls. Connection (connection.ts), media
 * (media.ts) and the server's events (wire.ts) are its parts.
 */
import type { CallStatus, InviteOk, MediaSource, ParticipantState, RecordingFinished, Role, RoomState, Track } from '../../server/protocol';
import type { AckResult, ClientEvent, Payload } from '../../server/protocol';
import { Connection, type ProtocolSocket } from './connection';
import { displayMedia, userMedia } from './devices';
import { asError, SwitchboardError } from './errors';
import { MediaSession } from './media';
import type { JoinOptions, Listener, RemoteTrack, SwitchboardEvents, SwitchboardOptions } from './types';
import { wireServerEvents } from './wire';

export class SwitchboardClient {
  readonly socket: ProtocolSocket;
  /** The current room (after join). */
  room: string | null = null;
  callId: string | null = null;
  participantId: string | null = null;
  status: CallStatus | null = null;
  recording = false;
  readonly participants = new Map<string, ParticipantState>();
  private readonly listeners = new Map<keyof SwitchboardEvents, Set<Listener<never>>>();
  private readonly connection: Connection;
  private readonly media: MediaSession;
  private joinOptions: JoinOptions = {};
  private closed = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;

  private constructor(opts: SwitchboardOptions, token: string) {
    this.connection = new Connection(opts, token, (err) => this.emit('error', err));
    this.socket = this.connection.socket;
    const emit = this.emit.bind(this);
    this.media = new MediaSession({
      connection: this.connection,
      opts,
      mutedTracks: () => this.me?.muted_tracks ?? [],
      isClosed: () => this.closed,
      emit,
    });
    // The wire reads and writes the call state (this object's public fields); its private parts are lent explicitly.
    wireServerEvents(this, {
      media: this.media,
      isClosed: () => this.closed,
      refreshesToken: () => typeof opts.token === 'function',
      emit,
      rejoin: () => {
        if (this.room) this.join(this.room, this.joinOptions).catch((err: unknown) => this.emit('error', asError(err)));
      },
      forgetCall: () => this.forgetCall(),
      ackInboxItem: (id) => {
        if (opts.autoAckInbox !== false) this.ackInbox([id]).catch((err: unknown) => this.emit('error', asError(err)));
      },
      scheduleRetry: (ms) => {
        this.retryTimer = setTimeout(() => this.socket.connect(), ms);
      },
    });
  }

  /**
   * Connects and authenticates. Rejects with a SwitchboardError: the server's code
   * (TOKEN_EXPIRED, SERVER_FULL…) when refused, CONNECTION_FAILED when unreachable.
   */
  static async connect(opts: SwitchboardOptions): Promise<SwitchboardClient> {
    let token: string;
    try {
      token = typeof opts.token === 'string' ? opts.token : await opts.token();
    } catch (err) {
      throw asError(err);
    }
    const client = new SwitchboardClient(opts, token);
    try {
      await client.connection.open();
    } catch (err) {
      client.close();
      throw asError(err, 'CONNECTION_FAILED');
    }
    return client;
  }

  // ---- events ----------------------------------------------------------------------------
  /** Listens to an SDK event; returns a function that stops listening. */
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
    return this.connection.request(event, payload);
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

  // ---- joining -----------------------------------------------------------------------------
  /** Joins a room (the token's room when it is room-scoped). Resolves with the room state. */
  async join(room: string, options: JoinOptions = {}): Promise<RoomState> {
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
    this.media.iceServers = state.ice_servers;
    this.participants.clear();
    for (const p of state.participants) this.participants.set(p.participant_id, p);
    this.emit('joined', { state, resumed });
    if (state.mode !== 'sfu') return;
    if (resumed && this.media.hasDevice) return this.media.catchUp(state, participantId);
    if (rejoinedAsNew) this.media.reset();
    await this.media.start(state, participantId);
  }

  private forgetCall(): void {
    this.media.reset();
    this.media.releaseTracks();
    this.room = null;
    this.callId = null;
    this.participantId = null;
  }

  async leave(): Promise<void> {
    if (!this.callId) return;
    const callId = this.callId;
    this.forgetCall();
    this.participants.clear();
    await this.request('leave', { call_id: callId });
  }

  /** Leaves and disconnects for good. */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.media.reset();
    this.media.releaseTracks();
    this.socket.disconnect();
    this.emit('connection', { state: 'closed' });
  }

  // ---- media -----------------------------------------------------------------------------
  /** The remote tracks being received, by producer id. */
  get remoteTracks(): ReadonlyMap<string, RemoteTrack> {
    return this.media.remoteTracks;
  }

  /** Publishes a track as a source (mic, camera or screen). Replaces that source's track if published already. */
  publishTrack(track: MediaStreamTrack, source: MediaSource): Promise<void> {
    return this.media.publish(track, source);
  }

  /** Opens the camera (getUserMedia) and publishes it; MEDIA_DEVICE_UNAVAILABLE where there is none (Node). */
  async publishCamera(constraints: MediaTrackConstraints | boolean = true): Promise<MediaStreamTrack> {
    const track = (await userMedia({ video: constraints })).getVideoTracks()[0]!;
    await this.media.publish(track, 'camera', true);
    return track;
  }

  /** Opens the microphone and publishes it. */
  async publishMicrophone(constraints: MediaTrackConstraints | boolean = true): Promise<MediaStreamTrack> {
    const track = (await userMedia({ audio: constraints })).getAudioTracks()[0]!;
    await this.media.publish(track, 'mic', true);
    return track;
  }

  /** Shares the screen (getDisplayMedia). */
  async publishScreen(): Promise<MediaStreamTrack> {
    const track = (await displayMedia()).getVideoTracks()[0]!;
    await this.media.publish(track, 'screen', true);
    return track;
  }

  /** Stops publishing a source (and stops its local track). */
  unpublish(source: MediaSource): Promise<void> {
    return this.media.unpublish(source);
  }

  /** The local track published as a source, if any. */
  localTrack(source: MediaSource): MediaStreamTrack | undefined {
    return this.media.localTrack(source);
  }

  /** Bytes and packets received so far (all remote tracks). */
  receiveStats(): Promise<{ bytesReceived: number; packetsReceived: number }> {
    return this.media.receiveStats().catch((err: unknown) => Promise.reject(asError(err)));
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
    return (await this.request('hold', { call_id: this.requireCall(), ...(track ? { track } : {}) })).held_tracks;
  }

  async unhold(track?: Track): Promise<Track[]> {
    return (await this.request('unhold', { call_id: this.requireCall(), ...(track ? { track } : {}) })).held_tracks;
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
    return (await this.request('stop-recording', { call_id: this.requireCall() })).recording ?? null;
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
    return (await this.request('ack-inbox', { ids })).acked;
  }

  /** Chat: to the room, or privately to a user of the call (who gets it in its inbox, even offline). */
  async sendMessage(text: string, toUserId?: string): Promise<{ messageId: string; sentAt: string }> {
    const r = await this.request('message', { call_id: this.requireCall(), text, ...(toUserId ? { to_user_id: toUserId } : {}) });
    return { messageId: r.message_id, sentAt: r.sent_at };
  }

  /** My own state as the server has it. */
  get me(): ParticipantState | undefined {
    return this.participantId ? this.participants.get(this.participantId) : undefined;
  }
}
