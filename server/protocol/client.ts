import { Type, type TObject } from '@sinclair/typebox';
import { TOKEN_ERRORS, type ErrorCode } from './errors';
import { CallModeSchema, MediaKindSchema, MediaSourceSchema, RecordingModeSchema, RoleSchema, TrackSchema, TransportDirectionSchema } from './enums';
import {
  Capabilities,
  ConsumeOk,
  Id,
  InviteOk,
  MediaJson,
  Nullable,
  RecordingFinished,
  RoomId,
  RoomState,
  Timestamp,
  TransportInfo,
  UserId,
  strict,
} from './shapes';

/**
 * Client → server events, declared once: each has its payload schema (validated
 * exactly at the edge: no unknown fields, no coercion), the schema of its
 * acknowledgement's result (`{ ok: true, ...result }`), the codes it can fail
 * with (besides VALIDATION_FAILED, INVALID_TEXT, RATE_LIMITED, AUTH_REQUIRED, TOKEN_EXPIRED, DATABASE_UNAVAILABLE, CLUSTER_UNAVAILABLE,
 * INTERNAL_ERROR)
 * and a line of documentation. The server's handler map, the SDK's request
 * function and protocol.md's tables are all derived from this object.
 *
 * Adding an event: add an entry here, write its handler in
 * server/signaling/handlers.ts (the compiler asks for it), run `npm run docs`.
 */
export interface ClientEventSpec {
  /** Which table of protocol.md lists it. */
  readonly section: 'call' | 'media' | 'recording' | 'invitations';
  readonly payload: TObject;
  readonly ack: TObject;
  readonly errors: readonly ErrorCode[];
  /** For the documentation: what it does, its rules (Markdown). */
  readonly doc: string;
}

const Sdp = Type.String({ minLength: 1, description: 'at most MAX_SDP_BYTES bytes' });
const NONE = Type.Object({});
const JOINED: readonly ErrorCode[] = ['NOT_JOINED', 'CALL_ID_MISMATCH'];
const RELAY: readonly ErrorCode[] = [...JOINED, 'TARGET_REQUIRED', 'PARTICIPANT_NOT_FOUND', 'CANNOT_TARGET_SELF', 'TARGET_NOT_CONNECTED'];
const MEDIA: readonly ErrorCode[] = ['NOT_JOINED', 'MODE_MISMATCH', 'MEDIA_UNAVAILABLE'];
const MUTE: readonly ErrorCode[] = [...JOINED, 'FORBIDDEN', 'MUTED_BY_MODERATOR', 'PARTICIPANT_NOT_FOUND'];
const SdpPayload = Type.Object({ sdp: Sdp, call_id: Id, to: Type.Optional(Id) }, strict);
const MutePayload = Type.Object({ call_id: Id, track: TrackSchema, participant_id: Type.Optional(Id) }, strict);
const HoldPayload = Type.Object({ call_id: Id, track: Type.Optional(TrackSchema) }, strict);
const HoldOk = Type.Object({ held_tracks: Type.Array(TrackSchema) });
const ProducerIdPayload = Type.Object({ producer_id: Id }, strict);

export const CLIENT_EVENT_SPECS = {
  // ---- the call ------------------------------------------------------------------------
  auth: {
    section: 'call',
    payload: Type.Object({ token: Type.String({ minLength: 1, maxLength: 8192 }) }, strict),
    ack: Type.Object({ user_id: Type.String(), role: RoleSchema, room: Nullable(Type.String()) }),
    errors: [...TOKEN_ERRORS, 'ALREADY_AUTHENTICATED', 'ROOM_SCOPE_MISMATCH'],
    doc: 'Authenticates the connection (when the handshake had no token), or refreshes its token with one of the same user.',
  },
  join: {
    section: 'call',
    payload: Type.Object(
      {
        room: RoomId,
        display_name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        capabilities: Type.Optional(Capabilities),
        mode: Type.Optional(CallModeSchema),
      },
      strict,
    ),
    ack: Type.Object({
      participant_id: Type.String(),
      room_state: RoomState,
      resumed: Type.Boolean({ description: 'this join took over a participant within its reconnection grace period' }),
    }),
    errors: [
      'ROOM_SCOPE_MISMATCH',
      'ALREADY_JOINED',
      'CALL_NOT_FOUND',
      'ROOM_FULL',
      'TOO_MANY_ROOMS',
      'REMOVED_FROM_CALL',
      'SERVER_DRAINING',
      'PAYLOAD_TOO_LARGE',
      'ROOM_BUSY',
    ],
    doc: "Joins the room's call (opening one when `AUTO_CREATE_ROOMS` allows the token's role); the `joined` event follows. `mode` is used only when this join opens the room.",
  },
  leave: {
    section: 'call',
    payload: Type.Object({ call_id: Type.Optional(Id) }, strict),
    ack: NONE,
    errors: JOINED,
    doc: 'Leaves the call; the others get `peer-left { reason: "left" }`.',
  },
  offer: {
    section: 'call',
    payload: SdpPayload,
    ack: NONE,
    errors: [...RELAY, 'PAYLOAD_TOO_LARGE'],
    doc: 'Relays an SDP offer (p2p mode) to `to`, or to the only other participant.',
  },
  answer: { section: 'call', payload: SdpPayload, ack: NONE, errors: [...RELAY, 'PAYLOAD_TOO_LARGE'], doc: 'Relays an SDP answer, as `offer`.' },
  'ice-candidate': {
    section: 'call',
    payload: Type.Object(
      {
        candidate: Type.String({ maxLength: 2048 }),
        sdpMid: Type.Optional(Nullable(Type.String({ maxLength: 64 }))),
        sdpMLineIndex: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 1024 }))),
        call_id: Type.Optional(Id),
        to: Type.Optional(Id),
      },
      strict,
    ),
    ack: NONE,
    errors: RELAY,
    doc: 'Relays an ICE candidate, as `offer`.',
  },
  mute: {
    section: 'call',
    payload: MutePayload,
    ack: NONE,
    errors: MUTE,
    doc: "Mutes your track, or (host, moderator) another participant's: that one is locked.",
  },
  unmute: {
    section: 'call',
    payload: MutePayload,
    ack: NONE,
    errors: MUTE,
    doc: 'Unmutes your track; on another participant (host, moderator) it lifts the lock only.',
  },
  hold: { section: 'call', payload: HoldPayload, ack: HoldOk, errors: JOINED, doc: 'Holds one track, or every track: media stops both ways.' },
  unhold: { section: 'call', payload: HoldPayload, ack: HoldOk, errors: JOINED, doc: 'Resumes held tracks.' },
  dtmf: {
    section: 'call',
    payload: Type.Object({ call_id: Id, tones: Type.String({ maxLength: 1000 }) }, strict),
    ack: NONE,
    errors: [...JOINED, 'INVALID_DTMF'],
    doc: 'Sends DTMF tones (0-9 * # A-D and , for a pause; at most 100) to the others.',
  },
  'remove-participant': {
    section: 'call',
    payload: Type.Object({ call_id: Id, participant_id: Id, reason: Type.Optional(Type.String({ maxLength: 200 })) }, strict),
    ack: NONE,
    errors: [...JOINED, 'FORBIDDEN', 'PARTICIPANT_NOT_FOUND', 'CANNOT_TARGET_SELF'],
    doc: 'Host, moderator: removes a participant, who cannot rejoin this call.',
  },
  'end-call': {
    section: 'call',
    payload: Type.Object({ call_id: Id }, strict),
    ack: NONE,
    errors: [...JOINED, 'FORBIDDEN', 'CALL_ALREADY_ENDED'],
    doc: 'Host, moderator: ends the call for everyone.',
  },
  'set-role': {
    section: 'call',
    payload: Type.Object({ call_id: Id, participant_id: Id, role: RoleSchema }, strict),
    ack: NONE,
    errors: [...JOINED, 'FORBIDDEN', 'CANNOT_TARGET_SELF', 'PARTICIPANT_NOT_FOUND'],
    doc: "Host: changes a participant's role.",
  },

  'server-time': {
    section: 'call',
    payload: Type.Object({}, strict),
    ack: Type.Object({ server_time: Type.Integer({ description: "the server's clock, ms since the epoch" }) }),
    errors: [],
    doc: 'A round trip to the server: clients measure their signaling latency (and the clock offset) with it.',
  },

  // ---- SFU media (mode sfu) --------------------------------------------------------------
  'get-router-rtp-capabilities': {
    section: 'media',
    payload: Type.Object({}, strict),
    ack: Type.Object({ rtp_capabilities: MediaJson }),
    errors: MEDIA,
    doc: "The room router's RTP capabilities, for `device.load()`.",
  },
  'create-transport': {
    section: 'media',
    payload: Type.Object({ direction: TransportDirectionSchema }, strict),
    ack: TransportInfo,
    errors: [...MEDIA, 'TOO_MANY_TRANSPORTS'],
    doc: 'Creates a WebRTC transport (4 per participant at most).',
  },
  'connect-transport': {
    section: 'media',
    payload: Type.Object({ transport_id: Id, dtls_parameters: MediaJson }, strict),
    ack: NONE,
    errors: [...MEDIA, 'TRANSPORT_NOT_FOUND', 'MEDIA_REQUEST_FAILED'],
    doc: 'Connects a transport (its DTLS parameters).',
  },
  'restart-ice': {
    section: 'media',
    payload: Type.Object({ transport_id: Id }, strict),
    ack: Type.Object({ ice_parameters: MediaJson }),
    errors: [...MEDIA, 'TRANSPORT_NOT_FOUND'],
    doc: 'Restarts ICE on a transport.',
  },
  produce: {
    section: 'media',
    payload: Type.Object(
      { transport_id: Id, kind: MediaKindSchema, rtp_parameters: MediaJson, source: MediaSourceSchema, paused: Type.Optional(Type.Boolean()) },
      strict,
    ),
    ack: Type.Object({ producer_id: Type.String(), paused: Type.Boolean() }),
    errors: [...MEDIA, 'PUBLISH_NOT_ALLOWED', 'PRODUCER_EXISTS', 'TRANSPORT_NOT_FOUND', 'MEDIA_REQUEST_FAILED'],
    doc: 'Publishes a track (one producer per source; simulcast encodings accepted). A muted track is produced paused.',
  },
  consume: {
    section: 'media',
    payload: Type.Object({ transport_id: Id, producer_id: Id, rtp_capabilities: MediaJson }, strict),
    ack: ConsumeOk,
    errors: [...MEDIA, 'PRODUCER_NOT_FOUND', 'INCOMPATIBLE_CAPABILITIES', 'CANNOT_TARGET_SELF', 'TRANSPORT_NOT_FOUND'],
    doc: 'Consumes a producer of the room; the consumer is created paused.',
  },
  'resume-consumer': {
    section: 'media',
    payload: Type.Object({ consumer_id: Id }, strict),
    ack: NONE,
    errors: [...MEDIA, 'CONSUMER_NOT_FOUND'],
    doc: 'Resumes a consumer once the client-side consumer exists (the server requests a key frame).',
  },
  'pause-producer': {
    section: 'media',
    payload: ProducerIdPayload,
    ack: NONE,
    errors: [...MEDIA, ...MUTE, 'PRODUCER_NOT_FOUND'],
    doc: "As `mute` of that producer's track.",
  },
  'resume-producer': {
    section: 'media',
    payload: ProducerIdPayload,
    ack: NONE,
    errors: [...MEDIA, ...MUTE, 'PRODUCER_NOT_FOUND'],
    doc: "As `unmute` of that producer's track.",
  },
  'close-producer': { section: 'media', payload: ProducerIdPayload, ack: NONE, errors: [...MEDIA, 'PRODUCER_NOT_FOUND'], doc: 'Closes one of your producers.' },
  'set-preferred-layers': {
    section: 'media',
    payload: Type.Object(
      { consumer_id: Id, spatial_layer: Type.Integer({ minimum: 0, maximum: 15 }), temporal_layer: Type.Optional(Type.Integer({ minimum: 0, maximum: 15 })) },
      strict,
    ),
    ack: NONE,
    errors: [...MEDIA, 'CONSUMER_NOT_FOUND'],
    doc: 'Chooses the simulcast layers a consumer receives.',
  },

  // ---- recording (host, moderator) -------------------------------------------------------
  'start-recording': {
    section: 'recording',
    payload: Type.Object({ call_id: Id, mode: Type.Optional(RecordingModeSchema) }, strict),
    ack: Type.Object({ recording_id: Type.String(), started_at: Timestamp, mode: RecordingModeSchema }),
    errors: [...JOINED, 'FORBIDDEN', 'RECORDING_ALREADY_ACTIVE', 'FFMPEG_UNAVAILABLE', 'CALL_NOT_IN_PROGRESS', 'MEDIA_UNAVAILABLE'],
    doc: 'Starts recording the call: a WebM per participant; with `mode: "composite"` also one file mixing everyone.',
  },
  'stop-recording': {
    section: 'recording',
    payload: Type.Object({ call_id: Id }, strict),
    ack: Type.Object({ stopped: Type.Boolean(), recording: Type.Optional(RecordingFinished) }),
    errors: [...JOINED, 'FORBIDDEN', 'MEDIA_UNAVAILABLE'],
    doc: 'Stops the recording: `{ stopped: true, recording }`, or `{ stopped: false }` when nothing was being recorded (stopping twice is harmless).',
  },

  // ---- invitations, inbox, chat ----------------------------------------------------------
  invite: {
    section: 'invitations',
    payload: Type.Object(
      { call_id: Id, user_ids: Type.Array(UserId, { minItems: 1, maxItems: 50 }), timeout_seconds: Type.Optional(Type.Integer({ minimum: 5, maximum: 600 })) },
      strict,
    ),
    ack: InviteOk,
    errors: [...JOINED, 'FORBIDDEN', 'CANNOT_TARGET_SELF'],
    doc: 'Host, moderator (joined): rings users into the call on every device; an offline user gets a missed call.',
  },
  accept: {
    section: 'invitations',
    payload: Type.Object({ invitation_id: Id }, strict),
    ack: Type.Object({ invitation_id: Type.String(), call_id: Type.String(), room: Type.String() }),
    errors: ['INVITATION_NOT_FOUND', 'INVITATION_NOT_PENDING'],
    doc: 'A device of the invitee accepts (then `join` that room); the first answer wins.',
  },
  decline: {
    section: 'invitations',
    payload: Type.Object({ invitation_id: Id, reason: Type.Optional(Type.String({ maxLength: 200 })) }, strict),
    ack: NONE,
    errors: ['INVITATION_NOT_FOUND', 'INVITATION_NOT_PENDING'],
    doc: 'A device of the invitee declines.',
  },
  'ack-inbox': {
    section: 'invitations',
    payload: Type.Object({ ids: Type.Array(Type.String({ minLength: 1, maxLength: 20 }), { minItems: 1, maxItems: 500 }) }, strict),
    ack: Type.Object({ acked: Type.Integer() }),
    errors: [],
    doc: 'Acknowledges inbox items (missed calls, messages): they are not sent again.',
  },
  message: {
    section: 'invitations',
    payload: Type.Object({ call_id: Id, text: Type.String({ minLength: 1, maxLength: 2000 }), to_user_id: Type.Optional(UserId) }, strict),
    ack: Type.Object({ message_id: Type.String(), sent_at: Timestamp }),
    errors: [...JOINED, 'USER_NOT_IN_CALL', 'CANNOT_TARGET_SELF'],
    doc: 'In-call chat: to the room (kept with the call), or privately to `to_user_id` (through its inbox).',
  },
} as const satisfies Record<string, ClientEventSpec>;
