import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

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
