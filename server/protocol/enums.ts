import { Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';

/**
 * The enumerations of the wire protocol, declared once: each is a const list
 * (for code), a TypeBox schema (for validation and OpenAPI) and a type. REST
 * route schemas and socket payloads use the same ones.
 */
/**
 * A closed set of strings as a JSON Schema `enum`: validators answer one
 * "must be one of …" for a wrong value (a union of literals gets one error per
 * literal), and OpenAPI and generated clients see an enumeration.
 */
export function oneOf<const T extends readonly string[]>(values: T, description?: string): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...(description ? { description } : {}) });
}

/** Roles in a call, from most to least privileged. Enforced on the server. */
export const ROLES = ['host', 'moderator', 'participant'] as const;
export const RoleSchema = oneOf(ROLES, 'host, moderator or participant');
export type Role = Static<typeof RoleSchema>;

/** What mute and hold act on. */
export const TRACKS = ['audio', 'video', 'screen'] as const;
export const TrackSchema = oneOf(TRACKS);
export type Track = Static<typeof TrackSchema>;

/** What a producer carries: mic → track audio, camera → video, screen → screen. */
export const MEDIA_SOURCES = ['mic', 'camera', 'screen'] as const;
export const MediaSourceSchema = oneOf(MEDIA_SOURCES);
export type MediaSource = Static<typeof MediaSourceSchema>;
export const SOURCE_TRACK = { mic: 'audio', camera: 'video', screen: 'screen' } as const satisfies Record<MediaSource, Track>;

export const MEDIA_KINDS = ['audio', 'video'] as const;
export const MediaKindSchema = oneOf(MEDIA_KINDS);
export type MediaKind = Static<typeof MediaKindSchema>;

/** sfu: media through the server's mediasoup routers; p2p: offer/answer relay between two peers. */
export const CALL_MODES = ['sfu', 'p2p'] as const;
export const CallModeSchema = oneOf(CALL_MODES, 'sfu (media through the server, default) or p2p (offer/answer relay between two peers)');
export type CallMode = Static<typeof CallModeSchema>;

/** created → active (first participant joined) → ended. */
export const CALL_STATUSES = ['created', 'active', 'ended'] as const;
export const CallStatusSchema = oneOf(CALL_STATUSES);
export type CallStatus = Static<typeof CallStatusSchema>;

/** participant: a file per participant; composite: also one file mixing everyone. */
export const RECORDING_MODES = ['participant', 'composite'] as const;
export const RecordingModeSchema = oneOf(
  RECORDING_MODES,
  'participant (default): a file per participant; composite: also one file mixing everyone, rendered when the recording stops',
);
export type RecordingMode = Static<typeof RecordingModeSchema>;

/** Why a participant left its room (peer-left, participant.left). */
export const LEAVE_REASONS = ['left', 'disconnected', 'removed', 'replaced'] as const;
export const LeaveReasonSchema = oneOf(LEAVE_REASONS);
export type LeaveReason = Static<typeof LeaveReasonSchema>;

export const TRANSPORT_DIRECTIONS = ['send', 'recv'] as const;
export const TransportDirectionSchema = oneOf(TRANSPORT_DIRECTIONS);
export type TransportDirection = Static<typeof TransportDirectionSchema>;

/** The same schema with a default (REST bodies document and apply it). */
export const withDefault = <T extends TSchema>(schema: T, value: Static<T>): T => ({ ...schema, default: value });

export const isRole = (v: unknown): v is Role => typeof v === 'string' && (ROLES as readonly string[]).includes(v);

/** A recording file: being written, finished with media, failed, without media, or cut short (an ffmpeg died: playable). */
export const RECORDING_FILE_STATUSES = ['recording', 'completed', 'failed', 'empty', 'interrupted'] as const;
export const RecordingFileStatusSchema = oneOf(RECORDING_FILE_STATUSES);
export type RecordingFileStatus = Static<typeof RecordingFileStatusSchema>;
