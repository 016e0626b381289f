/**
 * The SDK's public types: its options, the events it emits, and the protocol's
 * own types (server/protocol, declared once) re-exported for apps.
 */
import type { BuiltinHandlerName } from 'mediasoup-client/types';
import type { ManagerOptions, SocketOptions } from 'socket.io-client';
import type { CallStatus, ChatMessage, MediaSource, ParticipantState, RecordingFinished, RoomState, Sender } from '../../server/protocol';
import type { SwitchboardError } from './errors';

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
} from '../../server/protocol';

/**
 * A WebRTC implementation for environments without one (Node): its classes are
 * installed as globals where missing, which is where mediasoup-client looks.
 * `require('@roamhq/wrtc')` (or `import wrtc from '@roamhq/wrtc'`) is one.
 */
export interface WebRtcImplementation {
  RTCPeerConnection: unknown;
  RTCSessionDescription?: unknown;
  RTCIceCandidate?: unknown;
  MediaStream?: unknown;
  MediaStreamTrack?: unknown;
  [name: string]: unknown;
}

export interface SwitchboardOptions {
  /** The server's base URL (http(s)://host:port). */
  url: string;
  /** A token, or a function returning a fresh one (called again when the token expired, on reconnect). */
  token: string | (() => string | Promise<string>);
  /** Extra socket.io-client options (transports, path…). */
  socket?: Partial<ManagerOptions & SocketOptions>;
  /** mediasoup-client handler: detected in browsers; in Node pass 'Chrome111' (with `webrtc`). */
  handlerName?: BuiltinHandlerName;
  /** A WebRTC implementation (Node: `@roamhq/wrtc`); browsers have their own. */
  webrtc?: WebRtcImplementation;
  /** How long a request waits for its acknowledgement, and connect() for the connection (default 10 s). */
  timeoutMs?: number;
  /** Acknowledge inbox items (missed calls, messages) once the listeners have run (default true). */
  autoAckInbox?: boolean;
}

export interface JoinOptions {
  displayName?: string;
  capabilities?: Record<string, unknown>;
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
  /** The connection state: connected, reconnecting, closed. */
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
  /** A failure nobody awaited (background renegotiation, a refused reconnect): always a SwitchboardError. */
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

export type Listener<T> = (payload: T) => void;
