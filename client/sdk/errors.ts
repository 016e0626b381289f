/**
 * The SDK's one error type. Every promise the SDK returns rejects with a
 * SwitchboardError, and every 'error' event carries one: its `code` is one of
 * the server's stable codes (server/protocol/errors.ts, docs/errors.md) or one
 * of the SDK's own (SDK_ERROR_CODES). Apps branch on `code`, never on messages.
 */
import type { ErrorCode } from '../../server/protocol';

/** Codes the SDK itself fails with (the others are the server's: server/protocol/errors.ts). */
export const SDK_ERROR_CODES = [
  /** The server could not be reached (refused, DNS, TLS, a proxy in the way). */
  'CONNECTION_FAILED',
  /** A request got no acknowledgement in time (`timeoutMs`). */
  'TIMEOUT',
  /** This environment has no usable WebRTC (Node without `webrtc` and `handlerName`, an old browser). */
  'DEVICE_UNSUPPORTED',
  /** Anything else that failed inside the client (a bug, or mediasoup-client refusing a state). */
  'CLIENT_ERROR',
  'MEDIA_PERMISSION_DENIED',
  'MEDIA_DEVICE_NOT_FOUND',
  'MEDIA_DEVICE_BUSY',
  /** No camera or microphone API here (Node; a page that is not a secure context). */
  'MEDIA_DEVICE_UNAVAILABLE',
] as const;
export type SdkErrorCode = (typeof SDK_ERROR_CODES)[number];
export type SwitchboardErrorCode = ErrorCode | SdkErrorCode;

/** A failed request: `code` is one of the server's stable codes (docs/errors.md) or one of SDK_ERROR_CODES. */
export class SwitchboardError extends Error {
  constructor(
    readonly code: SwitchboardErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SwitchboardError';
  }
}

/** A code received over the wire; a newer server may send one this SDK does not list yet. */
export const wireCode = (code: string): SwitchboardErrorCode => code as SwitchboardErrorCode;

/**
 * Any failure as a SwitchboardError: SDK errors pass through; mediasoup-client's
 * UnsupportedError (no handler for this environment) becomes DEVICE_UNSUPPORTED;
 * anything else becomes `fallback` (CLIENT_ERROR), keeping the original as `cause`.
 */
export function asError(err: unknown, fallback: SwitchboardErrorCode = 'CLIENT_ERROR'): SwitchboardError {
  if (err instanceof SwitchboardError) return err;
  const e = err as { name?: string; message?: string } | null | undefined;
  const message = e?.message ?? String(err);
  if (e?.name === 'UnsupportedError') return unsupported(err);
  return new SwitchboardError(fallback, message, { cause: err });
}

/** No WebRTC here: DEVICE_UNSUPPORTED, saying what Node needs. */
export function unsupported(err: unknown): SwitchboardError {
  const message = (err as { message?: string } | null)?.message ?? String(err);
  return new SwitchboardError(
    'DEVICE_UNSUPPORTED',
    `WebRTC is not available here (${message}); in Node, pass a WebRTC implementation (webrtc: require('@roamhq/wrtc')) and handlerName: 'Chrome111'`,
    { cause: err },
  );
}

/** A Socket.IO connect_error: the server's refusal (its code), or CONNECTION_FAILED when it never answered. */
export function connectError(err: Error & { data?: { code?: string; message?: string } }): SwitchboardError {
  if (err.data?.code) return new SwitchboardError(wireCode(err.data.code), err.data.message ?? err.message, { cause: err });
  return new SwitchboardError('CONNECTION_FAILED', `cannot connect to the server: ${err.message}`, { cause: err });
}

/** A browser's media error (getUserMedia, getDisplayMedia) as a SwitchboardError with a stable code. */
export function mediaError(err: unknown): SwitchboardError {
  const name = (err as { name?: string } | null)?.name;
  if (name === 'NotAllowedError' || name === 'SecurityError')
    return new SwitchboardError('MEDIA_PERMISSION_DENIED', 'access to the camera, microphone or screen was denied', { cause: err });
  if (name === 'NotFoundError' || name === 'OverconstrainedError')
    return new SwitchboardError('MEDIA_DEVICE_NOT_FOUND', 'no camera or microphone was found', { cause: err });
  if (name === 'NotReadableError')
    return new SwitchboardError('MEDIA_DEVICE_BUSY', 'the camera or microphone is in use by another application', { cause: err });
  return new SwitchboardError('MEDIA_DEVICE_UNAVAILABLE', (err as Error | null)?.message ?? String(err), { cause: err });
}
