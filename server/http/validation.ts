import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors';
import { findIllFormedText } from '../lib/text';

/**
 * Request validation. Bodies are JSON and must already have the right types:
 * `{"room_id": 42}` is an error, not the string "42". Query strings, path
 * parameters and headers are text, so their scalars are coerced. Unknown fields
 * are errors everywhere (schemas say additionalProperties: false), never dropped.
 *
 * Installed as Fastify's validator factory (not setValidatorCompiler) so that
 * every plugin context uses it, including those that add shared schemas.
 */
const common = { allErrors: false, removeAdditional: false, useDefaults: true, strict: false } as const;

export function buildValidator(externalSchemas: Record<string, unknown> = {}): (route: { schema: object | boolean; httpPart?: string }) => ValidateFunction {
  const make = (coerceTypes: false | 'array') => {
    const ajv = addFormats(new Ajv({ ...common, coerceTypes }));
    for (const s of Object.values(externalSchemas)) ajv.addSchema(s as object);
    return ajv;
  };
  const strict = make(false);
  const coercing = make('array');
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema);
}

/**
 * Every string of a request (body, query, path) must be well-formed Unicode: a lone
 * surrogate is answered 400 INVALID_TEXT before any handler runs, so it never
 * reaches the database (PostgreSQL refuses it in jsonb and text) nor an outbox.
 * Rejected rather than replaced: the caller learns its text is broken instead of
 * finding it silently altered; no browser or UTF-8 client sends one.
 */
export function registerTextCheck(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    // Query and params objects may have a prototype of their own (fast-querystring): copied, they are plain.
    const parts = [
      ['body', request.body],
      ['querystring', { ...(request.query as object) }],
      ['params', { ...(request.params as object) }],
    ] as const;
    for (const [part, value] of parts) {
      const where = findIllFormedText(value);
      if (where) throw new AppError('INVALID_TEXT', `${part}/${where} is not well-formed Unicode (a lone UTF-16 surrogate)`);
    }
  });
}
