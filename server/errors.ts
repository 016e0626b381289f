/**
 * The error vocabulary shared by REST and signaling. Every failure a client can
 * see is an AppError with a stable `code` (clients branch on it, never on the
 * message) and the HTTP status it maps to. Socket acknowledgements carry the same
 * code. Messages are for humans and may change.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details?: unknown;

  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  toJSON(): { error: { code: string; message: string; details?: unknown } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

export const badRequest = (code: string, message: string, details?: unknown) =>
  new AppError(400, code, message, details);
export const unauthorized = (code: string, message: string) => new AppError(401, code, message);
export const forbidden = (code: string, message: string) => new AppError(403, code, message);
export const notFound = (code: string, message: string) => new AppError(404, code, message);
export const conflict = (code: string, message: string) => new AppError(409, code, message);
export const unavailable = (code: string, message: string) => new AppError(503, code, message);

/** Stable error codes. Documented in docs/errors.md; never rename one. */
export const ErrorCode = {
  // request shape
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  INVALID_JSON: 'INVALID_JSON',
  BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  ROUTE_NOT_FOUND: 'ROUTE_NOT_FOUND',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  RATE_LIMITED: 'RATE_LIMITED',
  INTERNAL: 'INTERNAL_ERROR',
  // authentication
  AUTH_REQUIRED: 'AUTH_REQUIRED',
  API_KEY_INVALID: 'API_KEY_INVALID',
  TOKEN_MALFORMED: 'TOKEN_MALFORMED',
  TOKEN_ALGORITHM_NOT_ALLOWED: 'TOKEN_ALGORITHM_NOT_ALLOWED',
  TOKEN_INVALID_SIGNATURE: 'TOKEN_INVALID_SIGNATURE',
  TOKEN_EXPIRED: 'TOKEN_EXPIRED',
  TOKEN_NOT_YET_VALID: 'TOKEN_NOT_YET_VALID',
  TOKEN_CLAIM_INVALID: 'TOKEN_CLAIM_INVALID',
  // token issuance
  TTL_TOO_LONG: 'TTL_TOO_LONG',
  ROOM_REQUIRED_FOR_ROLE: 'ROOM_REQUIRED_FOR_ROLE',
  // authorisation
  FORBIDDEN: 'FORBIDDEN',
  ROOM_SCOPE_MISMATCH: 'ROOM_SCOPE_MISMATCH',
  // calls
  CALL_NOT_FOUND: 'CALL_NOT_FOUND',
  CALL_ALREADY_ACTIVE: 'CALL_ALREADY_ACTIVE',
  CALL_ALREADY_ENDED: 'CALL_ALREADY_ENDED',
  INVALID_CURSOR: 'INVALID_CURSOR',
  // infrastructure
  DATABASE_UNAVAILABLE: 'DATABASE_UNAVAILABLE',
  WEB_CLIENT_NOT_BUILT: 'WEB_CLIENT_NOT_BUILT',
  // signaling
  AUTH_TIMEOUT: 'AUTH_TIMEOUT',
  ALREADY_AUTHENTICATED: 'ALREADY_AUTHENTICATED',
  UNKNOWN_EVENT: 'UNKNOWN_EVENT',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  SERVER_FULL: 'SERVER_FULL',
  TOO_MANY_ROOMS: 'TOO_MANY_ROOMS',
  ROOM_FULL: 'ROOM_FULL',
  NOT_JOINED: 'NOT_JOINED',
  ALREADY_JOINED: 'ALREADY_JOINED',
  CALL_ID_MISMATCH: 'CALL_ID_MISMATCH',
  PARTICIPANT_NOT_FOUND: 'PARTICIPANT_NOT_FOUND',
  TARGET_REQUIRED: 'TARGET_REQUIRED',
  TARGET_NOT_CONNECTED: 'TARGET_NOT_CONNECTED',
  MUTED_BY_MODERATOR: 'MUTED_BY_MODERATOR',
  CANNOT_TARGET_SELF: 'CANNOT_TARGET_SELF',
  REMOVED_FROM_CALL: 'REMOVED_FROM_CALL',
  INVITATION_NOT_FOUND: 'INVITATION_NOT_FOUND',
  INVITATION_NOT_PENDING: 'INVITATION_NOT_PENDING',
  USER_NOT_IN_CALL: 'USER_NOT_IN_CALL',
  INVALID_DTMF: 'INVALID_DTMF',
  SERVER_DRAINING: 'SERVER_DRAINING',
  ROOM_BUSY: 'ROOM_BUSY',
  // SFU media
  MODE_MISMATCH: 'MODE_MISMATCH',
  TRANSPORT_NOT_FOUND: 'TRANSPORT_NOT_FOUND',
  PRODUCER_NOT_FOUND: 'PRODUCER_NOT_FOUND',
  CONSUMER_NOT_FOUND: 'CONSUMER_NOT_FOUND',
  PRODUCER_EXISTS: 'PRODUCER_EXISTS',
  TOO_MANY_TRANSPORTS: 'TOO_MANY_TRANSPORTS',
  INCOMPATIBLE_CAPABILITIES: 'INCOMPATIBLE_CAPABILITIES',
  PUBLISH_NOT_ALLOWED: 'PUBLISH_NOT_ALLOWED',
  MEDIA_REQUEST_FAILED: 'MEDIA_REQUEST_FAILED',
  MEDIA_UNAVAILABLE: 'MEDIA_UNAVAILABLE',
  // recording
  FFMPEG_UNAVAILABLE: 'FFMPEG_UNAVAILABLE',
  RECORDING_ALREADY_ACTIVE: 'RECORDING_ALREADY_ACTIVE',
  CALL_NOT_IN_PROGRESS: 'CALL_NOT_IN_PROGRESS',
  // recordings REST
  RECORDING_NOT_FOUND: 'RECORDING_NOT_FOUND',
  RECORDING_IN_PROGRESS: 'RECORDING_IN_PROGRESS',
  FILE_MISSING: 'FILE_MISSING',
  RANGE_NOT_SATISFIABLE: 'RANGE_NOT_SATISFIABLE',
  RECORDING_PATH_INVALID: 'RECORDING_PATH_INVALID',
  // client-side recording uploads
  UPLOAD_TOO_LARGE: 'UPLOAD_TOO_LARGE',
  UPLOAD_NOT_ALLOWED: 'UPLOAD_NOT_ALLOWED',
  UPLOAD_NOT_FOUND: 'UPLOAD_NOT_FOUND',
  UPLOAD_OFFSET_MISMATCH: 'UPLOAD_OFFSET_MISMATCH',
  UPLOAD_BUSY: 'UPLOAD_BUSY',
  UPLOAD_CLOSED: 'UPLOAD_CLOSED',
  CHECKSUM_MISMATCH: 'CHECKSUM_MISMATCH',
  // webhooks admin REST
  WEBHOOK_DELIVERY_NOT_FOUND: 'WEBHOOK_DELIVERY_NOT_FOUND',
  WEBHOOK_DELIVERY_NOT_FAILED: 'WEBHOOK_DELIVERY_NOT_FAILED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
