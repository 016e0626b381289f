/**
 * The signaling protocol, declared once. These interfaces type the server
 * (Socket.IO's Server<ClientToServerEvents, ServerToClientEvents>) and are meant
 * to be imported by client apps:
 *
 *   import type { ClientToServerEvents, ServerToClientEvents } from 'switchboard/server/signaling/protocol';
 *   const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(url, { auth: { token } });
 *
 * Event names and payload fields are the original design's (snake_case). Every
 * client event takes an acknowledgement callback, answered `{ ok: true, ... }` or
 * `{ error: { code, message } }`. docs/signaling.md documents each event.
 */
import type { Role } from '../auth/roles';

export type Track = 'audio' | 'video' | 'screen';
export const TRACKS: readonly Track[] = ['audio', 'video', 'screen'];
export type CallStatus = 'created' | 'active' | 'ended';

export interface SignalingError {
  error: { code: string; message: string };
}
export type Ack<T extends object = object> = (response: ({ ok: true } & T) | SignalingError) => void;

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface ParticipantState {
  participant_id: string;
  user_id: string;
  display_name: string | null;
  role: Role;
  /** Tracks this participant has muted (by themselves or by a moderator). */
  muted_tracks: Track[];
  /** Tracks muted by a host or moderator: the participant cannot unmute them until lifted. */
  locked_tracks: Track[];
  /** Tracks this participant has put on hold. */
  held_tracks: Track[];
  /** False while the participant's connection is lost and within the reconnection grace period. */
  connected: boolean;
  capabilities: Record<string, unknown>;
  joined_at: string;
}

export interface RoomState {
  call_id: string;
  room: string;
  status: CallStatus;
  recording: boolean;
  /** 'sfu': media through the server (the media events); 'p2p': offer/answer relay between peers. */
  mode: CallMode;
  participants: ParticipantState[];
  /** The producers in the room (sfu mode), to consume. */
  producers: ProducerInfo[];
  ice_servers: IceServer[];
}

// ---- client → server payloads --------------------------------------------------
export interface AuthPayload {
  token: string;
}
export interface JoinPayload {
  room: string;
  display_name?: string;
  capabilities?: Record<string, unknown>;
  /** Used only when this join opens the room: 'sfu' (default) or 'p2p'. */
  mode?: CallMode;
}
export interface LeavePayload {
  call_id?: string;
}
export interface SdpPayload {
  sdp: string;
  call_id: string;
  /** Target participant id; may be omitted in a two-party call. */
  to?: string;
}
export interface IceCandidatePayload {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  call_id?: string;
  to?: string;
}
export interface MutePayload {
  call_id: string;
  track: Track;
  /** Another participant (host or moderator only). */
  participant_id?: string;
}
export interface HoldPayload {
  call_id: string;
  /** One track; omitted: every track. */
  track?: Track;
}
export interface DtmfPayload {
  call_id: string;
  /** 0-9, *, #, A-D and , (a pause); at most 100. */
  tones: string;
}
export interface RemovePayload {
  call_id: string;
  participant_id: string;
  reason?: string;
}
export interface EndCallPayload {
  call_id: string;
}
export interface SetRolePayload {
  call_id: string;
  participant_id: string;
  role: Role;
}

// ---- SFU media (mode 'sfu') -------------------------------------------------------
/** What a producer carries: mic → track 'audio', camera → 'video', screen → 'screen'. */
export type MediaSource = 'mic' | 'camera' | 'screen';
export type CallMode = 'sfu' | 'p2p';

/** mediasoup types travel as opaque JSON; mediasoup-client produces and consumes them. */
type Json = Record<string, unknown>;

export interface ProducerInfo {
  producer_id: string;
  participant_id: string;
  kind: 'audio' | 'video';
  source: MediaSource;
  paused: boolean;
}
export interface TransportInfo {
  transport_id: string;
  ice_parameters: Json;
  ice_candidates: Json[];
  dtls_parameters: Json;
}
export interface CreateTransportPayload {
  direction: 'send' | 'recv';
}
export interface ConnectTransportPayload {
  transport_id: string;
  dtls_parameters: Json;
}
export interface ProducePayload {
  transport_id: string;
  kind: 'audio' | 'video';
  rtp_parameters: Json;
  source: MediaSource;
  paused?: boolean;
}
export interface ConsumePayload {
  transport_id: string;
  producer_id: string;
  rtp_capabilities: Json;
}
export interface ProducerIdPayload {
  producer_id: string;
}
export interface ConsumerIdPayload {
  consumer_id: string;
}
export interface PreferredLayersPayload {
  consumer_id: string;
  spatial_layer: number;
  temporal_layer?: number;
}
export interface TransportIdPayload {
  transport_id: string;
}
export interface ConsumeOk {
  consumer_id: string;
  producer_id: string;
  participant_id: string;
  kind: 'audio' | 'video';
  source: MediaSource;
  rtp_parameters: Json;
  /** Always true: resume with resume-consumer once the client's consumer exists. */
  paused: boolean;
  producer_paused: boolean;
}

export interface AuthOk {
  user_id: string;
  role: Role;
  room: string | null;
}
export interface JoinOk {
  participant_id: string;
  room_state: RoomState;
  /** True when this join took over a participant within its reconnection grace period. */
  resumed: boolean;
}

export interface ClientToServerEvents {
  auth: (payload: AuthPayload, ack: Ack<AuthOk>) => void;
  join: (payload: JoinPayload, ack: Ack<JoinOk>) => void;
  leave: (payload: LeavePayload, ack: Ack) => void;
  offer: (payload: SdpPayload, ack: Ack) => void;
  answer: (payload: SdpPayload, ack: Ack) => void;
  'ice-candidate': (payload: IceCandidatePayload, ack: Ack) => void;
  mute: (payload: MutePayload, ack: Ack) => void;
  unmute: (payload: MutePayload, ack: Ack) => void;
  hold: (payload: HoldPayload, ack: Ack) => void;
  unhold: (payload: HoldPayload, ack: Ack) => void;
  dtmf: (payload: DtmfPayload, ack: Ack) => void;
  'remove-participant': (payload: RemovePayload, ack: Ack) => void;
  'end-call': (payload: EndCallPayload, ack: Ack) => void;
  'set-role': (payload: SetRolePayload, ack: Ack) => void;
  // SFU media
  'get-router-rtp-capabilities': (payload: Record<string, never>, ack: Ack<{ rtp_capabilities: Json }>) => void;
  'create-transport': (payload: CreateTransportPayload, ack: Ack<TransportInfo>) => void;
  'connect-transport': (payload: ConnectTransportPayload, ack: Ack) => void;
  'restart-ice': (payload: TransportIdPayload, ack: Ack<{ ice_parameters: Json }>) => void;
  produce: (payload: ProducePayload, ack: Ack<{ producer_id: string }>) => void;
  consume: (payload: ConsumePayload, ack: Ack<ConsumeOk>) => void;
  'resume-consumer': (payload: ConsumerIdPayload, ack: Ack) => void;
  'pause-producer': (payload: ProducerIdPayload, ack: Ack) => void;
  'resume-producer': (payload: ProducerIdPayload, ack: Ack) => void;
  'close-producer': (payload: ProducerIdPayload, ack: Ack) => void;
  'set-preferred-layers': (payload: PreferredLayersPayload, ack: Ack) => void;
  // recording (host, moderator)
  /** mode 'participant' (default): a file per participant; 'composite': also one file mixing everyone. */
  'start-recording': (payload: { call_id: string; mode?: 'participant' | 'composite' }, ack: Ack<{ recording_id: string; started_at: string; mode: string }>) => void;
  'stop-recording': (payload: { call_id: string }, ack: Ack<{ stopped: boolean; recording?: RecordingFinished }>) => void;
  // invitations, inbox, chat
  invite: (payload: InvitePayload, ack: Ack<InviteOk>) => void;
  accept: (payload: { invitation_id: string }, ack: Ack<{ invitation_id: string; call_id: string; room: string }>) => void;
  decline: (payload: { invitation_id: string; reason?: string }, ack: Ack) => void;
  'ack-inbox': (payload: { ids: string[] }, ack: Ack<{ acked: number }>) => void;
  message: (payload: MessagePayload, ack: Ack<{ message_id: string; sent_at: string }>) => void;
}

export interface InvitePayload {
  call_id: string;
  user_ids: string[];
  timeout_seconds?: number;
}
export interface InviteOk {
  invitations: Array<{ invitation_id: string | null; user_id: string; status: 'ringing' | 'offline' | 'in-call' }>;
  expires_at: string;
}
export interface MessagePayload {
  call_id: string;
  text: string;
  to_user_id?: string;
}
/** Who invited or wrote: a user, or null for your backend (REST with the API key). */
export type Sender = { user_id: string; display_name: string | null } | null;
export interface ChatMessage {
  message_id: string;
  call_id: string;
  from: string | null;
  from_user_id: string;
  display_name: string | null;
  text: string;
  sent_at: string;
}

export interface RecordingFile {
  id: string;
  /** null for the composite file. */
  participant_id: string | null;
  segment: number;
  status: 'recording' | 'completed' | 'failed' | 'empty' | 'interrupted';
  file_path: string;
  size_bytes: number | null;
  duration_ms: number | null;
  error: string | null;
}
export interface RecordingFinished {
  recording_id: string;
  call_id: string;
  /** completed: at least one file has media; empty: nothing was published; failed: no file could be written. */
  status: 'completed' | 'empty' | 'failed';
  duration: number;
  files: RecordingFile[];
  reason: string;
}
export type ClientEvent = keyof ClientToServerEvents;
export const CLIENT_EVENTS: readonly ClientEvent[] = [
  'auth', 'join', 'leave', 'offer', 'answer', 'ice-candidate', 'mute', 'unmute', 'hold', 'unhold', 'dtmf',
  'remove-participant', 'end-call', 'set-role',
  'get-router-rtp-capabilities', 'create-transport', 'connect-transport', 'restart-ice', 'produce', 'consume',
  'resume-consumer', 'pause-producer', 'resume-producer', 'close-producer', 'set-preferred-layers',
  'start-recording', 'stop-recording',
  'invite', 'accept', 'decline', 'ack-inbox', 'message',
];

// ---- server → client ---------------------------------------------------------------
export type LeaveReason = 'left' | 'disconnected' | 'removed' | 'replaced';

export interface ServerToClientEvents {
  joined: (e: { participant_id: string; room_state: RoomState }) => void;
  'peer-joined': (e: { call_id: string; participant: ParticipantState }) => void;
  'peer-left': (e: { call_id: string; participant_id: string; reason: LeaveReason }) => void;
  offer: (e: { sdp: string; call_id: string; from: string }) => void;
  answer: (e: { sdp: string; call_id: string; from: string }) => void;
  'ice-candidate': (e: { candidate: string; sdpMid: string | null; sdpMLineIndex: number | null; call_id: string; from: string }) => void;
  'mute-changed': (e: { call_id: string; participant_id: string; track: Track; muted: boolean; locked: boolean; by: string }) => void;
  'hold-changed': (e: { call_id: string; participant_id: string; held_tracks: Track[] }) => void;
  'role-changed': (e: { call_id: string; participant_id: string; role: Role; by: string }) => void;
  dtmf: (e: { call_id: string; from: string; tones: string }) => void;
  /** Sent to a participant removed by a host or moderator (or replaced by a newer join), before its socket is closed. */
  removed: (e: { call_id: string; reason: string; by: string | null }) => void;
  'call-state-changed': (e: { call_id: string; room: string; status: CallStatus; recording: boolean }) => void;
  // SFU media
  'new-producer': (e: ProducerInfo) => void;
  'producer-closed': (e: { producer_id: string; participant_id: string }) => void;
  'producer-paused': (e: { producer_id: string; participant_id: string }) => void;
  'producer-resumed': (e: { producer_id: string; participant_id: string }) => void;
  'consumer-closed': (e: { consumer_id: string; producer_id: string }) => void;
  'active-speaker': (e: { participant_id: string | null; producer_id: string | null }) => void;
  'transport-state': (e: { transport_id: string; state: string }) => void;
  'recording-started': (e: { recording_id: string; call_id: string; mode: 'participant' | 'composite'; started_at: string; by: string | null }) => void;
  'recording-finished': (e: RecordingFinished) => void;
  /** The room's media was re-created (reason worker-died, node-lost, node-draining): negotiate transports again. */
  'media-reset': (e: { call_id: string; reason: string }) => void;
  /** This node is shutting down: the connection closes next; connect again (through the load balancer) and rejoin with the same token to resume. */
  'server-draining': (e: { reconnect: true }) => void;
  // invitations, inbox, chat
  'incoming-call': (e: { invitation_id: string; call_id: string; room: string; from: Sender; expires_at: string }) => void;
  'incoming-call-ended': (e: { invitation_id: string; call_id: string; reason: 'accepted' | 'declined' | 'expired' | 'call-ended' }) => void;
  'invitation-accepted': (e: { invitation_id: string; call_id: string; user_id: string }) => void;
  'invitation-declined': (e: { invitation_id: string; call_id: string; user_id: string; reason: string | null }) => void;
  'invitation-expired': (e: { invitation_id: string; call_id: string; user_id: string }) => void;
  /** Inbox items: sent until a device acknowledges them with ack-inbox. */
  'missed-call': (e: { id: string; invitation_id: string; call_id: string; room: string; from: Sender; invited_at: string }) => void;
  'inbox-message': (e: { id: string; from: Sender; call_id: string | null; text: string; sent_at: string }) => void;
  message: (e: ChatMessage) => void;
  /** An error for a message sent without an acknowledgement callback, or for the connection itself (AUTH_TIMEOUT). */
  'signaling-error': (e: { code: string; message: string; event?: string }) => void;
}

export interface SocketData {
  principal?: import('../auth/roles').Principal;
  room?: string;
  participantId?: string;
}
