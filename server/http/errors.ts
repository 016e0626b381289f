import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { isDatabaseOutage } from '../lib/dbOutage';
import { isRedisOutage } from '../lib/redisOutage';
import { AppError, type ErrorCode } from '../errors';

/**
 * Maps every error to `{ error: { code, message } }` with the right status, in
 * one place. Bad input is always a 4xx with a stable code, never a 500; an
 * unreachable database (or Redis) is a 503; only real bugs are 500, and their details are
 * logged, not sent.
 */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
};
/** Other 4xx errors of Fastify and its plugins, by status. */
const BY_STATUS: Record<number, ErrorCode> = { 404: 'ROUTE_NOT_FOUND', 413: 'BODY_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE', 429: 'RATE_LIMITED' };

/** Seconds a client is told to wait after a 503: about what a database failover or a pod restart takes. */
export const RETRY_AFTER_S = 5;

type AjvIssue = NonNullable<FastifyError['validation']>[number];
interface Detail {
  path: string;
  message: string;
  field?: unknown;
}

/**
 * One message per field: ajv reports a value outside an enumeration (a union of
 * literals) once per literal plus once for the union ("must be equal to
 * constant" four times for a bad role); that becomes "must be one of …".
 */
function mergeValidation(issues: readonly AjvIssue[], context: string): Detail[] {
  const byPath = new Map<string, { allowed: unknown[]; others: Detail[] }>();
  for (const v of issues) {
    const path = `${context}${v.instancePath}`;
    const entry = byPath.get(path) ?? { allowed: [], others: [] };
    byPath.set(path, entry);
    const params = (v.params ?? {}) as Record<string, unknown>;
    if (v.keyword === 'const' && 'allowedValue' in params) entry.allowed.push(params.allowedValue);
    else if (v.keyword === 'enum' && Array.isArray(params.allowedValues)) entry.allowed.push(...(params.allowedValues as unknown[]));
    else if (v.keyword === 'anyOf' && entry.allowed.length > 0) continue;
    else entry.others.push({ path, message: v.message ?? 'is invalid', ...('additionalProperty' in params ? { field: params.additionalProperty } : {}) });
  }
  return [...byPath].flatMap(([path, { allowed, others }]) =>
    allowed.length > 0 ? [{ path, message: `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}` }] : others,
  );
}

export function toAppError(err: FastifyError | Error): AppError {
  if (err instanceof AppError) return err;
  const fe = err as FastifyError;
  if (fe.validation) {
    const details = mergeValidation(fe.validation, fe.validationContext ?? '');
    return new AppError('VALIDATION_FAILED', details.map((d) => `${d.path} ${d.message}`).join('; '), details);
  }
  const known = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (known) return new AppError(known, fe.message);
  if (err instanceof SyntaxError && fe.statusCode === 400) return new AppError('INVALID_JSON', err.message);
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new AppError(BY_STATUS[fe.statusCode] ?? 'VALIDATION_FAILED', fe.message);
  }
  return outageError(err) ?? new AppError('INTERNAL_ERROR', 'internal server error');
}

/** A database or Redis outage as its 503 code (REST and signaling alike); undefined for any other error. */
export function outageError(err: unknown): AppError | undefined {
  if (isDatabaseOutage(err)) return new AppError('DATABASE_UNAVAILABLE');
  if (isRedisOutage(err)) return new AppError('CLUSTER_UNAVAILABLE');
  return undefined;
}

/** The error code a request was answered with, for its log line. */
const errorCodes = new WeakMap<FastifyRequest, string>();

/**
 * One log line per request, when its response is sent: method, route, status,
 * time and the error code if any. Probes and metrics scrapes log at debug.
 */
export function registerRequestLog(app: FastifyInstance, quiet: readonly string[] = ['/health', '/ready', '/metrics']): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? request.url.split('?')[0];
    const line = {
      method: request.method,
      route,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      ...(errorCodes.has(request) ? { code: errorCodes.get(request) } : {}),
    };
    if (quiet.includes(route ?? '')) request.log.debug(line, 'request');
    else request.log.info(line, 'request');
  });
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const appErr = toAppError(err);
    // A 4xx is told by the request's one log line (its code, below); a 5xx also logs the error itself.
    if (appErr.status >= 500) request.log.error({ err }, 'request failed');
    errorCodes.set(request, appErr.code);
    // A 503 is temporary (database, media, draining): say when to come back (RFC 9110 §10.2.3).
    if (appErr.status === 503 && !reply.hasHeader('retry-after')) void reply.header('retry-after', String(RETRY_AFTER_S));
    void reply.status(appErr.status).send(appErr.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send(new AppError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`).toJSON());
  });
}
