import { Type, type TSchema } from '@sinclair/typebox';
import Ajv, { type ValidateFunction } from 'ajv';
import { ROLES } from '../auth/roles';
import { AppError } from '../errors';
import { RoomId } from '../http/schemas';
import { TRACKS, type ClientEvent } from './protocol';

/**
 * JSON schemas of every client event's payload, compiled once. No coercion and
 * no unknown fields: a payload either matches exactly or is answered
 * VALIDATION_FAILED (PAYLOAD_TOO_LARGE for an SDP over MAX_SDP_BYTES).
 */
const Id = Type.String({ minLength: 1, maxLength: 64 });
const TrackT = Type.Union(TRACKS.map((t) => Type.Literal(t)));
const strict = { additionalProperties: false } as const;

/**
 * A capability value: any JSON nested at most `depth` arrays or objects deep.
 * Unbounded nesting fits in a small message yet overflows the stack of the
 * recursive serializers it is later passed to (Socket.IO's encoder, Prisma),
 * which would break every room_state of its room.
 */
export const CAPABILITY_DEPTH = 5;
/** Largest JSON of a participant's capabilities. */
export const MAX_CAPABILITIES_BYTES = 4096;
function jsonValue(depth: number): TSchema {
  const scalars = [Type.String(), Type.Number(), Type.Boolean(), Type.Null()];
  if (depth === 0) return Type.Union(scalars);
  const inner = jsonValue(depth - 1);
  return Type.Union([...scalars, Type.Array(inner), Type.Record(Type.String(), inner)]);
}

/** mediasoup's parameters (RTP, DTLS, capabilities): opaque JSON objects, depth-bounded; mediasoup validates their content. */
const MediaJson = Type.Record(Type.String({ maxLength: 64 }), jsonValue(8));

export function payloadSchemas(limits: { maxSdpBytes: number }): Record<ClientEvent, TSchema> {
  const Sdp = Type.String({ minLength: 1, maxLength: limits.maxSdpBytes });
  return {
    auth: Type.Object({ token: Type.String({ minLength: 1, maxLength: 8192 }) }, strict),
    join: Type.Object(
      {
        room: RoomId,
        display_name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        capabilities: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), jsonValue(CAPABILITY_DEPTH), { maxProperties: 32 })),
        mode: Type.Optional(Type.Union([Type.Literal('sfu'), Type.Literal('p2p')])),
      },
      strict,
    ),
    leave: Type.Object({ call_id: Type.Optional(Id) }, strict),
    offer: Type.Object({ sdp: Sdp, call_id: Id, to: Type.Optional(Id) }, strict),
    answer: Type.Object({ sdp: Sdp, call_id: Id, to: Type.Optional(Id) }, strict),
    'ice-candidate': Type.Object(
      {
        candidate: Type.String({ maxLength: 2048 }),
        sdpMid: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
        sdpMLineIndex: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 1024 }), Type.Null()])),
        call_id: Type.Optional(Id),
        to: Type.Optional(Id),
      },
      strict,
    ),
    mute: Type.Object({ call_id: Id, track: TrackT, participant_id: Type.Optional(Id) }, strict),
    unmute: Type.Object({ call_id: Id, track: TrackT, participant_id: Type.Optional(Id) }, strict),
    hold: Type.Object({ call_id: Id, track: Type.Optional(TrackT) }, strict),
    unhold: Type.Object({ call_id: Id, track: Type.Optional(TrackT) }, strict),
    dtmf: Type.Object({ call_id: Id, tones: Type.String({ maxLength: 1000 }) }, strict),
    'remove-participant': Type.Object({ call_id: Id, participant_id: Id, reason: Type.Optional(Type.String({ maxLength: 200 })) }, strict),
    'end-call': Type.Object({ call_id: Id }, strict),
    'set-role': Type.Object({ call_id: Id, participant_id: Id, role: Type.Union(ROLES.map((r) => Type.Literal(r))) }, strict),
    'get-router-rtp-capabilities': Type.Object({}, strict),
    'create-transport': Type.Object({ direction: Type.Union([Type.Literal('send'), Type.Literal('recv')]) }, strict),
    'connect-transport': Type.Object({ transport_id: Id, dtls_parameters: MediaJson }, strict),
    'restart-ice': Type.Object({ transport_id: Id }, strict),
    produce: Type.Object(
      {
        transport_id: Id,
        kind: Type.Union([Type.Literal('audio'), Type.Literal('video')]),
        rtp_parameters: MediaJson,
        source: Type.Union([Type.Literal('mic'), Type.Literal('camera'), Type.Literal('screen')]),
        paused: Type.Optional(Type.Boolean()),
      },
      strict,
    ),
    consume: Type.Object({ transport_id: Id, producer_id: Id, rtp_capabilities: MediaJson }, strict),
    'resume-consumer': Type.Object({ consumer_id: Id }, strict),
    'pause-producer': Type.Object({ producer_id: Id }, strict),
    'resume-producer': Type.Object({ producer_id: Id }, strict),
    'close-producer': Type.Object({ producer_id: Id }, strict),
    invite: Type.Object(
      { call_id: Id, user_ids: Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { minItems: 1, maxItems: 50 }), timeout_seconds: Type.Optional(Type.Integer({ minimum: 5, maximum: 600 })) },
      strict,
    ),
    accept: Type.Object({ invitation_id: Id }, strict),
    decline: Type.Object({ invitation_id: Id, reason: Type.Optional(Type.String({ maxLength: 200 })) }, strict),
    'ack-inbox': Type.Object({ ids: Type.Array(Type.String({ minLength: 1, maxLength: 20 }), { minItems: 1, maxItems: 500 }) }, strict),
    message: Type.Object({ call_id: Id, text: Type.String({ minLength: 1, maxLength: 2000 }), to_user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) }, strict),
    'start-recording': Type.Object({ call_id: Id, mode: Type.Optional(Type.Union([Type.Literal('participant'), Type.Literal('composite')])) }, strict),
    'stop-recording': Type.Object({ call_id: Id }, strict),
    'set-preferred-layers': Type.Object(
      { consumer_id: Id, spatial_layer: Type.Integer({ minimum: 0, maximum: 15 }), temporal_layer: Type.Optional(Type.Integer({ minimum: 0, maximum: 15 })) },
      strict,
    ),
  };
}

export type PayloadValidators = Record<ClientEvent, (payload: unknown) => void>;

export function compileValidators(limits: { maxSdpBytes: number }): PayloadValidators {
  const ajv = new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, strict: false });
  const out = {} as PayloadValidators;
  for (const [event, schema] of Object.entries(payloadSchemas(limits)) as Array<[ClientEvent, TSchema]>) {
    const fn: ValidateFunction = ajv.compile(schema);
    const tooLarge = (what: string) => new AppError('PAYLOAD_TOO_LARGE', what);
    out[event] = (payload) => {
      if (fn(payload)) {
        // The schema bounds characters; the limits are in bytes (UTF-8 may need 4 per character).
        const p = payload as { sdp?: string; capabilities?: object };
        if (p.sdp !== undefined && p.sdp.length * 3 > limits.maxSdpBytes && Buffer.byteLength(p.sdp) > limits.maxSdpBytes) {
          throw tooLarge(`sdp exceeds ${limits.maxSdpBytes} bytes`);
        }
        // Capabilities are repeated in every room_state sent to the room: keep them small.
        if (p.capabilities !== undefined && Buffer.byteLength(JSON.stringify(p.capabilities)) > MAX_CAPABILITIES_BYTES) {
          throw tooLarge(`capabilities exceed ${MAX_CAPABILITIES_BYTES} bytes of JSON`);
        }
        return;
      }
      const e = fn.errors?.[0];
      if (e?.keyword === 'maxLength' && e.instancePath === '/sdp') {
        throw tooLarge(`sdp exceeds ${limits.maxSdpBytes} bytes`);
      }
      const where = e?.instancePath ? `${e.instancePath.slice(1)} ` : '';
      const extra = e?.keyword === 'additionalProperties' ? `: ${String((e.params as { additionalProperty?: string }).additionalProperty)}` : '';
      throw new AppError('VALIDATION_FAILED', `${event} payload: ${where}${e?.message ?? 'is invalid'}${extra}`);
    };
  }
  return out;
}
