import type { FastifyError, FastifyInstance } from 'fastify';
import { AppError, type ErrorCode } from '../errors';

/**
 * Maps every error to `{ error: { code, message } }` with the right status, in
 * one place. Bad input is always a 4xx with a stable code, never a 500; an
 * unreachable database is a 503; only real bugs are 500, and their details are
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

const DB_UNAVAILABLE = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|terminat|Connection|connect|closed|does not exist|timed out/i;

function isDatabaseOutage(err: Error): boolean {
  const name = err.name ?? '';
  if (err.message === 'PGlite is closed') return true;
  if (name === 'PrismaClientInitializationError') return true;
  if (name.startsWith('PrismaClient') || name === 'DriverAdapterError' || (err as { code?: string }).code === 'ECONNREFUSED') {
    return DB_UNAVAILABLE.test(err.message);
  }
  return false;
}

export function toAppError(err: FastifyError | Error): AppError {
  if (err instanceof AppError) return err;
  const fe = err as FastifyError;
  if (fe.validation) {
    const details = fe.validation.map((v) => ({
      path: `${fe.validationContext ?? ''}${v.instancePath}`,
      message: v.message ?? 'is invalid',
      ...(v.params && 'additionalProperty' in v.params ? { field: v.params.additionalProperty } : {}),
    }));
    return new AppError('VALIDATION_FAILED', fe.message, details);
  }
  const known = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (known) return new AppError(known, fe.message);
  if (err instanceof SyntaxError && fe.statusCode === 400) return new AppError('INVALID_JSON', err.message);
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new AppError(BY_STATUS[fe.statusCode] ?? 'VALIDATION_FAILED', fe.message);
  }
  if (isDatabaseOutage(err)) return new AppError('DATABASE_UNAVAILABLE');
  return new AppError('INTERNAL_ERROR', 'internal server error');
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const appErr = toAppError(err);
    if (appErr.status >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ code: appErr.code }, 'request rejected');
    void reply.status(appErr.status).send(appErr.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send(new AppError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`).toJSON());
  });
}
