/**
 * The error registry: every code a client can see, with its HTTP status, its
 * default message and what it means. REST answers `{ error: { code, message } }`
 * with that status; signaling acknowledgements carry the same code. Throw sites
 * name the code (and a message only when it says more than the default):
 * `throw new AppError('NOT_JOINED')`.
 *
 * docs/errors.md and the error table of server/signaling/protocol.md are
 * generated from this table (scripts/gen-docs.ts; a test fails when they are
 * stale). Codes are stable: never rename one; messages are for people and may
 * change.
 *
 * `rest` / `signaling`: what the code means on that surface; a code without one
 * does not occur there.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
  readonly rest?: string;
  readonly signaling?: string;
}

export const ERRORS = {
  // ---- request shape ---------------------------------------------------------------
  VALIDATION_FAILED: {
    status: 400,
    message: 'the request does not match its schema',
    rest: 'a body, query or path parameter does not match the schema: wrong type, missing field, **unknown field**, value out of range',
    signaling: "the payload does not match the event's schema (exact: no unknown fields)",
  },
  INVALID_TEXT: {
    status: 400,
    message: 'a string is not well-formed Unicode (a lone UTF-16 surrogate such as \\ud800)',
    rest: 'a string (or key) of the body holds a lone UTF-16 surrogate (`"x\\ud800y"`): legal JSON, but it has no UTF-8 form and cannot be stored; the message names the field',
    signaling: 'as in REST',
  },
  INVALID_JSON: { status: 400, message: 'the body is not valid JSON', rest: 'the body is not valid JSON, or is empty with `content-type: application/json`' },
  INVALID_CURSOR: {
    status: 400,
    message: 'cursor is not valid; pass next_cursor from a previous page',
    rest: '`cursor` is not a `next_cursor` this server returned',
  },
  BODY_TOO_LARGE: {
    status: 413,
    message: 'the body is too large',
    rest: 'the body exceeds `BODY_LIMIT_BYTES`; for an upload request (`PATCH /uploads/:id`, a tus `POST`), `UPLOAD_CHUNK_MAX_BYTES`',
  },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'the payload is too large', signaling: 'SDP over `MAX_SDP_BYTES`, or `capabilities` over 4 KiB of JSON' },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'unsupported content type',
    rest: "a body that is not `application/json` (an upload chunk: not `application/offset+octet-stream`); or an upload's `mime_type` is not one of `UPLOAD_TYPES`",
  },
  ROUTE_NOT_FOUND: { status: 404, message: 'no such endpoint', rest: 'no such endpoint' },
  UNKNOWN_EVENT: { status: 400, message: 'not an event of this protocol', signaling: 'not an event of this protocol' },
  RATE_LIMITED: { status: 429, message: 'too many messages; slow down', rest: 'too many requests', signaling: 'too many messages on this connection' },
  INTERNAL_ERROR: {
    status: 500,
    message: 'internal error',
    rest: "a bug; the details are in the server log under the response's `x-request-id`",
    signaling: 'a bug; see the server log',
  },

  // ---- authentication ------------------------------------------------------------------
  AUTH_REQUIRED: {
    status: 401,
    message: 'authenticate first',
    rest: 'no `x-api-key` and no `Authorization` header',
    signaling: 'authenticate first (`auth.token` in the handshake, or the `auth` message)',
  },
  API_KEY_INVALID: { status: 401, message: 'the API key is not valid', rest: 'the `x-api-key` is not one of `API_KEYS`' },
  TOKEN_MALFORMED: { status: 401, message: 'token is malformed', rest: 'not a JWT, or `Authorization` is not `Bearer <token>`', signaling: 'not a JWT' },
  TOKEN_ALGORITHM_NOT_ALLOWED: {
    status: 401,
    message: 'only RS256 tokens are accepted',
    rest: 'signed with anything but RS256 (HS256, `none`, …)',
    signaling: 'as in REST',
  },
  TOKEN_INVALID_SIGNATURE: { status: 401, message: 'the token signature is not valid', rest: 'tampered, or signed by another key', signaling: 'as in REST' },
  TOKEN_KEY_UNKNOWN: {
    status: 401,
    message: 'the token was signed by a key this server does not know',
    rest: 'the `kid` in the token header is neither the current key nor one of `JWT_PREVIOUS_PUBLIC_KEYS` (a retired key, or another issuer)',
    signaling: 'as in REST',
  },
  TOKEN_EXPIRED: { status: 401, message: 'the token has expired', rest: '`exp` has passed', signaling: 'as in REST' },
  TOKEN_NOT_YET_VALID: { status: 401, message: 'the token is not valid yet', rest: '`nbf` is in the future', signaling: 'as in REST' },
  TOKEN_CLAIM_INVALID: {
    status: 401,
    message: 'a token claim is not valid',
    rest: 'wrong `iss` or `aud`, a required claim (`sub`, `role`, `iat`, `exp`, `jti`) missing, or a claim of the wrong type or value',
    signaling: 'as in REST',
  },
  AUTH_TIMEOUT: { status: 401, message: 'not authenticated in time', signaling: 'not authenticated within `AUTH_TIMEOUT_MS`; the connection is closed' },
  ALREADY_AUTHENTICATED: {
    status: 409,
    message: 'this connection is authenticated as another user',
    signaling: '`auth` as another user on an authenticated connection',
  },

  // ---- token issuance --------------------------------------------------------------------
  TTL_TOO_LONG: { status: 400, message: 'ttl_seconds exceeds the maximum', rest: '`ttl_seconds` exceeds `TOKEN_MAX_TTL_SECONDS`' },
  ROOM_REQUIRED_FOR_ROLE: { status: 400, message: 'a host or moderator token needs a room', rest: 'a host or moderator token was requested without `room`' },

  // ---- authorisation ---------------------------------------------------------------------
  FORBIDDEN: {
    status: 403,
    message: 'not allowed',
    rest: "the caller's role may not do this, or the endpoint needs the API key, or the token has no room scope",
    signaling: 'the role does not allow it',
  },
  ROOM_SCOPE_MISMATCH: {
    status: 403,
    message: 'this token is scoped to another room',
    rest: 'the token is scoped to another room',
    signaling: 'the token is for another room',
  },

  // ---- calls -------------------------------------------------------------------------------
  CALL_NOT_FOUND: { status: 404, message: 'no such call', rest: 'no call with that id', signaling: 'no call in progress and this token may not open one' },
  CALL_ALREADY_ACTIVE: { status: 409, message: 'the room already has a call that has not ended', rest: 'the room already has a call that has not ended' },
  CALL_ALREADY_ENDED: {
    status: 409,
    message: 'this call has ended',
    rest: 'ending a call that has ended; or starting an upload (`POST /calls/:id/uploads`) more than 1 h after the call ended',
    signaling: 'the call has ended',
  },

  // ---- infrastructure --------------------------------------------------------------------
  DATABASE_UNAVAILABLE: { status: 503, message: 'the database is unavailable; try again later', rest: 'the database does not answer; retry later' },
  CLUSTER_UNAVAILABLE: {
    status: 503,
    message: 'the shared room state (Redis) is unavailable; try again shortly',
    rest: 'a request that reads the live state of a room (the rights of a token on a call) while this node cannot reach Redis; retry later',
    signaling:
      'this node cannot reach Redis, or is restoring the room state it owns after Redis came back empty: the call goes on (media flows, the participant keeps its place); retry shortly',
  },
  WEB_CLIENT_NOT_BUILT: {
    status: 503,
    message: 'the web client is not built; run `npm run build` and restart the server',
    rest: '`/` or `/admin` on a server whose web client (`dist/web`) was not built: run `npm run build`',
  },

  // ---- signaling: connections and rooms --------------------------------------------------
  SERVER_FULL: { status: 503, message: 'this node has reached MAX_CONNECTIONS', signaling: 'this node takes no more connections (`MAX_CONNECTIONS`)' },
  SERVER_DRAINING: { status: 503, message: 'this node is shutting down; connect again', signaling: 'this node is shutting down; connect again' },
  ROOM_BUSY: {
    status: 503,
    message: 'the room is busy; try again',
    signaling: "the room's lock could not be taken in time (several nodes, Redis slow or a node stuck); try again",
  },
  TOO_MANY_CONNECTIONS: {
    status: 429,
    message: 'too many connections from this address',
    signaling: 'this client address holds `MAX_CONNECTIONS_PER_IP` connections on this node',
  },
  ROOM_QUOTA_EXCEEDED: {
    status: 429,
    message: 'you have opened too many rooms that are still in progress',
    signaling: 'this user opened `MAX_ROOMS_PER_USER` rooms (by joining) that are still in progress',
  },
  TOO_MANY_CONSUMERS: {
    status: 429,
    message: 'you hold too many consumers',
    signaling: 'this participant holds `MAX_CONSUMERS_PER_PARTICIPANT` consumers; close some first',
  },
  TOO_MANY_ROOMS: { status: 503, message: 'MAX_ROOMS rooms are in progress', signaling: '`MAX_ROOMS` rooms are in progress' },
  ROOM_FULL: { status: 409, message: 'the room is full', signaling: 'the room has `MAX_PARTICIPANTS_PER_ROOM` participants' },
  NOT_JOINED: { status: 409, message: 'join a room first', signaling: 'join first (or the call has ended)' },
  ALREADY_JOINED: { status: 409, message: 'this connection has joined a room already; leave it first', signaling: 'this connection is in a room already' },
  CALL_ID_MISMATCH: { status: 400, message: 'call_id is not the call you joined', signaling: '`call_id` is not the joined call' },
  PARTICIPANT_NOT_FOUND: { status: 404, message: 'no such participant in this room', signaling: 'no such participant in this room' },
  TARGET_REQUIRED: {
    status: 409,
    message: '`to` is required unless the call has exactly two participants',
    signaling: '`to` is required with more than two participants',
  },
  TARGET_NOT_CONNECTED: { status: 409, message: 'that participant is reconnecting; try again', signaling: 'the target is reconnecting' },
  MUTED_BY_MODERATOR: { status: 403, message: 'this track was muted by a moderator', signaling: 'the track is locked by a moderator' },
  CANNOT_TARGET_SELF: { status: 409, message: 'this action cannot target yourself', rest: 'inviting yourself', signaling: 'the action cannot target oneself' },
  REMOVED_FROM_CALL: { status: 403, message: 'you were removed from this call', signaling: 'removed by a host or moderator' },
  INVALID_DTMF: { status: 400, message: 'tones must be 1 to 100 of 0-9 * # A-D and , (pause)', signaling: 'tones outside `0-9 * # A-D ,` or too many' },

  // ---- invitations, inbox, chat -----------------------------------------------------------
  INVITATION_NOT_FOUND: { status: 404, message: 'no such invitation of yours', signaling: 'no such invitation of yours' },
  INVITATION_NOT_PENDING: {
    status: 409,
    message: 'this invitation is not ringing any more',
    signaling: 'the invitation was answered already, expired, or its call ended',
  },
  USER_NOT_IN_CALL: {
    status: 404,
    message: 'that user is neither in this call nor invited to it',
    signaling: 'a private message to a user who is neither in the call nor invited',
  },

  // ---- SFU media ---------------------------------------------------------------------------
  MODE_MISMATCH: { status: 409, message: 'this call is peer-to-peer (mode p2p): use offer/answer/ice-candidate', signaling: 'media request in a `p2p` call' },
  TRANSPORT_NOT_FOUND: { status: 404, message: 'no such transport of yours', signaling: 'no such transport of yours' },
  PRODUCER_NOT_FOUND: { status: 404, message: 'no such producer', signaling: 'no such producer of yours (or in the room)' },
  CONSUMER_NOT_FOUND: { status: 404, message: 'no such consumer of yours', signaling: 'no such consumer of yours' },
  PRODUCER_EXISTS: { status: 409, message: 'one producer per source', signaling: 'one producer per source' },
  TOO_MANY_TRANSPORTS: { status: 409, message: 'at most 4 transports per participant', signaling: 'at most 4 transports per participant' },
  INCOMPATIBLE_CAPABILITIES: {
    status: 400,
    message: 'your RTP capabilities cannot receive that producer',
    signaling: 'your RTP capabilities cannot receive that producer',
  },
  PUBLISH_NOT_ALLOWED: { status: 403, message: 'this token may not publish media', signaling: 'the token was issued with `can_publish: false`' },
  MEDIA_REQUEST_FAILED: { status: 400, message: 'mediasoup refused the parameters', signaling: 'mediasoup refused the parameters (the message says why)' },
  MEDIA_UNAVAILABLE: {
    status: 503,
    message: 'the media server of this room is being replaced; wait for media-reset',
    signaling: "the room's media is being re-created, or its media node does not answer; wait for `media-reset`",
  },

  // ---- recording -------------------------------------------------------------------------
  FFMPEG_UNAVAILABLE: {
    status: 503,
    message: 'this server has no ffmpeg: recording is unavailable',
    rest: 'as in signaling',
    signaling: 'this server has no ffmpeg: recording is unavailable',
  },
  RECORDING_ALREADY_ACTIVE: {
    status: 409,
    message: 'this call is being recorded already',
    rest: 'as in signaling',
    signaling: 'the call is being recorded already',
  },
  CALL_NOT_IN_PROGRESS: {
    status: 409,
    message: 'nobody is in the call through the SFU: nothing to record',
    rest: 'as in signaling',
    signaling: 'nobody is in the call through the SFU, nothing to record',
  },
  RECORDING_NOT_FOUND: { status: 404, message: 'no such recording', rest: 'no recording with that id' },
  RECORDING_IN_PROGRESS: {
    status: 409,
    message: 'the recording is still being written',
    rest: 'downloading or deleting a recording whose file is still being written (`status: recording`)',
  },
  FILE_MISSING: {
    status: 410,
    message: 'the file is missing',
    rest: "the recording's row exists but its file is no longer in `RECORDINGS_DIR`; or an upload's partial file is gone (the upload fails: start a new one)",
  },
  RANGE_NOT_SATISFIABLE: {
    status: 416,
    message: 'the range is outside the file',
    rest: 'the `Range` header asks for bytes beyond the end of the file; `content-range: bytes */<size>` gives the size',
  },
  RECORDING_PATH_INVALID: {
    status: 500,
    message: 'the recording has a stored file path outside the recordings directory; it is not served',
    rest: "the recording's stored `file_path` resolves outside `RECORDINGS_DIR` (absolute, `..`, or a symlink leading out); the file is never served or deleted",
  },

  // ---- client-side recording uploads -----------------------------------------------------
  UPLOAD_NOT_ALLOWED: {
    status: 403,
    message: 'this token may not upload to this call',
    rest: "starting an upload to a call the token's user never took part in",
  },
  UPLOAD_NOT_FOUND: {
    status: 404,
    message: 'no such upload',
    rest: "no upload with that id, or it is another user's (the same answer, so ids reveal nothing)",
  },
  UPLOAD_OFFSET_MISMATCH: {
    status: 409,
    message: "upload-offset is not the upload's current offset",
    rest: "a chunk's `upload-offset` is not the upload's current offset; the response's `upload-offset` header (and `details.offset`) is the one to resume from",
  },
  UPLOAD_BUSY: {
    status: 409,
    message: 'another request is writing a chunk of this upload; retry when it has ended',
    rest: 'no longer answered: a new tus `PATCH` takes an upload over from one still in flight',
  },
  UPLOAD_CLOSED: {
    status: 409,
    message: 'this upload is closed',
    rest: 'a `PATCH` or `DELETE` for an upload that is `completed` (it is a recording now); GET it for its `recording_id`',
  },
  UPLOAD_TOO_LARGE: {
    status: 413,
    message: 'the upload is too large',
    rest: 'the length (`Upload-Length`, `size_bytes`) exceeds `UPLOAD_MAX_BYTES`, or a chunk goes beyond the declared length',
  },
  CHECKSUM_MISMATCH: {
    status: 422,
    message: "the file's SHA-256 is not the declared one; the upload failed",
    rest: "the uploaded file's SHA-256 is not the declared `sha256`; the upload failed and its bytes were deleted",
  },
  UPLOAD_CHECKSUM_MISMATCH: {
    status: 460,
    message: 'the chunk does not match its Upload-Checksum; nothing of it was kept',
    rest: "tus checksum extension: a `PATCH`'s bytes do not match its `Upload-Checksum`; none of them were stored (the offset did not move): send the chunk again",
  },
  UPLOAD_GONE: {
    status: 410,
    message: 'this upload no longer exists; start a new one',
    rest: 'the upload was terminated (`DELETE`), failed (checksum) or expired (24 h after creation, `Upload-Expires`); tus clients then start a new upload',
  },
  UPLOAD_QUOTA_EXCEEDED: {
    status: 413,
    message: "the call's uploads would exceed UPLOAD_QUOTA_BYTES",
    rest: "creating (or declaring the length of, or sending a chunk of a deferred) upload would bring the call's uploads past `UPLOAD_QUOTA_BYTES`",
  },
  INSUFFICIENT_STORAGE: {
    status: 507,
    message: 'not enough free disk space for this upload',
    rest: "the upload's length (plus what uploads in progress were promised) would leave less than `UPLOAD_DISK_RESERVE_BYTES` free on `RECORDINGS_DIR`; a server condition that may pass (tus clients retry)",
  },
  TUS_VERSION_UNSUPPORTED: {
    status: 412,
    message: 'Tus-Resumable must be 1.0.0',
    rest: 'a tus request (`HEAD`, `PATCH`, `DELETE /uploads/:id`, a tus `POST /calls/:id/uploads`) without `Tus-Resumable: 1.0.0`; the answer carries `Tus-Version: 1.0.0`',
  },

  // ---- webhooks admin REST ---------------------------------------------------------------
  WEBHOOK_DELIVERY_NOT_FOUND: {
    status: 404,
    message: 'no such webhook delivery',
    rest: 'no webhook delivery with that id (delivered rows are pruned after 7 days)',
  },
  WEBHOOK_DELIVERY_NOT_FAILED: {
    status: 409,
    message: 'only a failed delivery can be retried',
    rest: 'retrying a webhook delivery that is not `failed` (it is still pending, or was delivered)',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;
export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export const isErrorCode = (v: unknown): v is ErrorCode => typeof v === 'string' && Object.hasOwn(ERRORS, v);

/** The token codes, as a group (both surfaces refuse a token with them). */
export const TOKEN_ERRORS = [
  'TOKEN_MALFORMED',
  'TOKEN_ALGORITHM_NOT_ALLOWED',
  'TOKEN_INVALID_SIGNATURE',
  'TOKEN_KEY_UNKNOWN',
  'TOKEN_EXPIRED',
  'TOKEN_NOT_YET_VALID',
  'TOKEN_CLAIM_INVALID',
] as const satisfies readonly ErrorCode[];
