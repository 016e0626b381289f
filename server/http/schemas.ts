import { Type, type TSchema } from '@sinclair/typebox';

/** Shapes shared by every route's schema; they also feed the OpenAPI document. */
export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable machine-readable code; see docs/errors.md' }),
      message: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { $id: 'ErrorResponse', title: 'Error' },
);

/** Responses for the error statuses a route can produce, referencing ErrorResponse. */
export function errorResponses(...statuses: number[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = {};
  for (const s of statuses) out[s] = Type.Ref('ErrorResponse');
  return out;
}

export const RoomId = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.:@-]*$',
  description: 'Room identifier: letters, digits and _ . : @ -, starting with a letter or digit',
});

export const Uuid = Type.String({ format: 'uuid' });

export const PAGE_LIMIT_DEFAULT = 20;
/** `limit` of a list endpoint: optional (the validator fills in the default), 1–100. */
export const PageLimit = Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: PAGE_LIMIT_DEFAULT, description: 'Items per page' }));
