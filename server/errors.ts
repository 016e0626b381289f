import { ERRORS, type ErrorCode as Code } from './protocol/errors';

export { ERRORS, ERROR_CODES, isErrorCode } from './protocol/errors';
export type ErrorCode = Code;

/**
 * Every failure a client can see: a code of the registry (server/protocol/errors.ts),
 * which fixes its HTTP status and default message. REST sends it as
 * `{ error: { code, message, details? } }`; signaling acknowledges with the same.
 * Clients branch on `code`, never on the message.
 */
export class AppError extends Error {
  readonly code: Code;
  readonly status: number;
  readonly details?: unknown;

  constructor(code: Code, message?: string, details?: unknown) {
    const spec = ERRORS[code];
    super(message ?? spec.message);
    this.name = 'AppError';
    this.code = code;
    this.status = spec.status;
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

/** `ErrorCode.NOT_JOINED === 'NOT_JOINED'`: the codes as constants (tests compare with them). */
export const ErrorCode = Object.freeze(Object.fromEntries(Object.keys(ERRORS).map((c) => [c, c]))) as { readonly [C in Code]: C };
