import { Type, type Static, type TSchema } from '@sinclair/typebox';
import {
  CallModeSchema,
  CallStatusSchema,
  MediaKindSchema,
  MediaSourceSchema,
  RecordingFileStatusSchema,
  RecordingModeSchema,
  RoleSchema,
  TrackSchema,
} from './enums';

/**
 * The data shapes that travel in the protocol (payloads' building blocks and
 * the objects the server sends), as TypeBox schemas: validation, types
 * (Static) and documentation come from the same declaration.
 */
export const strict = { additionalProperties: false } as const;

/** An id the server made (participant, call, transport, producer…). */
export const Id = Type.String({ minLength: 1, maxLength: 64 });
export const RoomId = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.:@-]*$',
  description: 'Room identifier: letters, digits and _ . : @ -, starting with a letter or digit',
});
export const UserId = Type.String({ minLength: 1, maxLength: 255 });
const Timestamp = Type.String({ description: 'ISO 8601' });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/**
 * Any JSON nested at most `depth` arrays or objects deep. Unbounded nesting fits
 * in a small message yet overflows the stack of the recursive serializers it is
 * later passed to (Socket.IO's encoder, Prisma), which would break every
 * room_state of its room.
 */
export function jsonValue(depth: number): TSchema {
  const scalars = [Type.String(), Type.Number(), Type.Boolean(), Type.Null()];
  if (depth === 0) return Type.Union(scalars);
  const inner = jsonValue(depth - 1);
  return Type.Union([...scalars, Type.Array(inner), Type.Record(Type.String(), inner)]);
}
export const CAPABILITY_DEPTH = 5;
/** Largest JSON of a participant's capabilities: they are repeated in every room_state sent to the room. */
export const MAX_CAPABILITIES_BYTES = 4096;
export const Capabilities = Type.Unsafe<Record<string, unknown>>(
  Type.Record(Type.String({ maxLength: 64 }), jsonValue(CAPABILITY_DEPTH), {
    maxProperties: 32,
    description: 'what the client can do (free JSON, at most 4 KiB)',
  }),
);
/** mediasoup's parameters (RTP, DTLS, capabilities): opaque JSON objects, depth-bounded; mediasoup validates their content. */
export const MediaJson = Type.Unsafe<Record<string, unknown>>(Type.Record(Type.String({ maxLength: 64 }), jsonValue(8)));

export const IceServer = Type.Object({
  urls: Type.Union([Type.String(), Type.Array(Type.String())]),
  username: Type.Optional(Type.String()),
  credential: Type.Optional(Type.String()),
});
export type IceServer = Static<typeof IceServer>;

export const ParticipantState = Type.Object({
  participant_id: Type.String(),
  user_id: Type.String(),
  display_name: Nullable(Type.String()),
  role: RoleSchema,
  muted_tracks: Type.Array(TrackSchema, { description: 'muted by themselves or by a moderator' }),
  locked_tracks: Type.Array(TrackSchema, { description: 'muted by a host or moderator: the owner cannot unmute them until lifted' }),
  held_tracks: Type.Array(TrackSchema),
  connected: Type.Boolean({ description: 'false while reconnecting, within the grace period' }),
  capabilities: Type.Unsafe<Record<string, unknown>>(Type.Record(Type.String(), Type.Unknown())),
  joined_at: Timestamp,
});
export type ParticipantState = Static<typeof ParticipantState>;

export const ProducerInfo = Type.Object({
  producer_id: Type.String(),
  participant_id: Type.String(),
  kind: MediaKindSchema,
  source: MediaSourceSchema,
  paused: Type.Boolean(),
});
export type ProducerInfo = Static<typeof ProducerInfo>;

export const RoomState = Type.Object({
  call_id: Type.String(),
  room: Type.String(),
  status: CallStatusSchema,
  recording: Type.Boolean(),
  mode: CallModeSchema,
  participants: Type.Array(ParticipantState),
  producers: Type.Array(ProducerInfo, { description: 'the producers to consume (sfu mode)' }),
  ice_servers: Type.Array(IceServer, { description: 'STUN/TURN servers for RTCPeerConnection (ICE_SERVERS, TURN credentials)' }),
});
export type RoomState = Static<typeof RoomState>;

export const TransportInfo = Type.Object({
  transport_id: Type.String(),
  ice_parameters: MediaJson,
  ice_candidates: Type.Array(MediaJson),
  dtls_parameters: MediaJson,
});
export type TransportInfo = Static<typeof TransportInfo>;

export const ConsumeOk = Type.Object({
  consumer_id: Type.String(),
  producer_id: Type.String(),
  participant_id: Type.String(),
  kind: MediaKindSchema,
  source: MediaSourceSchema,
  rtp_parameters: MediaJson,
  paused: Type.Literal(true, { description: 'always: resume with resume-consumer once the client-side consumer exists' }),
  producer_paused: Type.Boolean(),
});
export type ConsumeOk = Static<typeof ConsumeOk>;

export const RecordingFile = Type.Object({
  id: Type.String(),
  participant_id: Nullable(Type.String({ description: 'null for the composite file' })),
  segment: Type.Integer(),
  status: RecordingFileStatusSchema,
  file_path: Type.String(),
  size_bytes: Nullable(Type.Number()),
  duration_ms: Nullable(Type.Number()),
  error: Nullable(Type.String()),
});
export type RecordingFile = Static<typeof RecordingFile>;

export const RecordingFinished = Type.Object({
  recording_id: Type.String(),
  call_id: Type.String(),
  status: Type.Union([Type.Literal('completed'), Type.Literal('empty'), Type.Literal('failed')], {
    description: 'completed: at least one file has media; empty: nothing was published; failed: no file could be written',
  }),
  duration: Type.Number({ description: 'seconds from start to stop' }),
  mode: RecordingModeSchema,
  files: Type.Array(RecordingFile),
  reason: Type.String({ description: 'stopped, call-ended, server-shutdown, node-draining; after a crash: server-crashed, node-lost' }),
});
export type RecordingFinished = Static<typeof RecordingFinished>;

/** Who invited or wrote: a user, or null for your backend (REST with the API key). */
export const Sender = Nullable(Type.Object({ user_id: Type.String(), display_name: Nullable(Type.String()) }));
export type Sender = Static<typeof Sender>;

export const ChatMessage = Type.Object({
  message_id: Type.String(),
  call_id: Type.String(),
  from: Nullable(Type.String({ description: 'the participant id' })),
  from_user_id: Type.String(),
  display_name: Nullable(Type.String()),
  text: Type.String(),
  sent_at: Timestamp,
});
export type ChatMessage = Static<typeof ChatMessage>;

export const InvitationStatusSchema = Type.Union([Type.Literal('ringing'), Type.Literal('offline'), Type.Literal('in-call')]);
export const InviteOk = Type.Object({
  invitations: Type.Array(Type.Object({ invitation_id: Nullable(Type.String()), user_id: Type.String(), status: InvitationStatusSchema })),
  expires_at: Timestamp,
});
export type InviteOk = Static<typeof InviteOk>;

export { Nullable, Timestamp };
