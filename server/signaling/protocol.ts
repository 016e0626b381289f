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
  participants: ParticipantState[];
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
}
export type ClientEvent = keyof ClientToServerEvents;
export const CLIENT_EVENTS: readonly ClientEvent[] = [
  'auth', 'join', 'leave', 'offer', 'answer', 'ice-candidate', 'mute', 'unmute', 'hold', 'unhold', 'dtmf',
  'remove-participant', 'end-call', 'set-role',
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
  /** An error for a message sent without an acknowledgement callback, or for the connection itself (AUTH_TIMEOUT). */
  'signaling-error': (e: { code: string; message: string; event?: string }) => void;
}

export interface SocketData {
  principal?: import('../auth/roles').Principal;
  room?: string;
  participantId?: string;
}
