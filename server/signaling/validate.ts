import type { TSchema } from '@sinclair/typebox';
import Ajv, { type ValidateFunction } from 'ajv';
import { AppError } from '../errors';
import { findIllFormedText } from '../lib/text';
import { CLIENT_EVENT_SPECS, MAX_CAPABILITIES_BYTES, type ClientEvent } from '../protocol';

/**
 * The validators of every client event's payload (server/protocol/client.ts),
 * compiled once. No coercion and no unknown fields: a payload either matches
 * exactly or is answered VALIDATION_FAILED; an SDP over MAX_SDP_BYTES or
 * capabilities over 4 KiB of JSON are PAYLOAD_TOO_LARGE.
 */
export type PayloadValidators = Record<ClientEvent, (payload: unknown) => void>;

export function compileValidators(limits: { maxSdpBytes: number }): PayloadValidators {
  const ajv = new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, strict: false });
  const out = {} as PayloadValidators;
  const tooLarge = (what: string) => new AppError('PAYLOAD_TOO_LARGE', what);
  for (const [event, spec] of Object.entries(CLIENT_EVENT_SPECS) as Array<[ClientEvent, { payload: TSchema }]>) {
    const fn: ValidateFunction = ajv.compile(spec.payload);
    out[event] = (payload) => {
      if (!fn(payload)) {
        const e = fn.errors?.[0];
        const where = e?.instancePath ? `${e.instancePath.slice(1)} ` : '';
        const params = (e?.params ?? {}) as { additionalProperty?: string; allowedValues?: unknown[] };
        const extra = e?.keyword === 'additionalProperties' ? `: ${String(params.additionalProperty)}` : '';
        const message =
          e?.keyword === 'enum' && params.allowedValues
            ? `must be one of ${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`
            : (e?.message ?? 'is invalid');
        throw new AppError('VALIDATION_FAILED', `${event} payload: ${where}${message}${extra}`);
      }
      // Legal JSON, but no UTF-8 form: never stored, never relayed (server/lib/text.ts).
      const illFormed = findIllFormedText(payload);
      if (illFormed) throw new AppError('INVALID_TEXT', `${event} payload: ${illFormed} is not well-formed Unicode (a lone UTF-16 surrogate)`);
      // The limits are in bytes (UTF-8 may need 4 per character); the schemas cannot say so.
      const p = payload as { sdp?: string; capabilities?: object };
      if (p.sdp !== undefined && p.sdp.length > limits.maxSdpBytes / 3 && Buffer.byteLength(p.sdp) > limits.maxSdpBytes) {
        throw tooLarge(`sdp exceeds ${limits.maxSdpBytes} bytes`);
      }
      // Capabilities are repeated in every room_state sent to the room: keep them small.
      if (p.capabilities !== undefined && Buffer.byteLength(JSON.stringify(p.capabilities)) > MAX_CAPABILITIES_BYTES) {
        throw tooLarge(`capabilities exceed ${MAX_CAPABILITIES_BYTES} bytes of JSON`);
      }
    };
  }
  return out;
}
