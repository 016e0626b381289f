/**
 * The signaling connection: a socket.io-client socket typed by the protocol
 * (server/protocol), requests answered by acknowledgements (with a timeout),
 * and the token, fixed or refreshed by a function before it expires.
 */
import { io, type Socket } from 'socket.io-client';
import type { AckResponse, AckResult, ClientEvent, ClientToServerEvents, Payload, ServerToClientEvents } from '../../server/protocol';
import { asError, connectError, SwitchboardError } from './errors';
import type { SwitchboardOptions } from './types';

export type ProtocolSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** Default wait for an acknowledgement, and for connect(). */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** A refreshed token is asked for when the current one has less than this left. */
const TOKEN_REFRESH_MARGIN_MS = 30_000;

export class Connection {
  readonly socket: ProtocolSocket;
  readonly timeoutMs: number;
  private lastToken: string;

  constructor(
    private readonly opts: SwitchboardOptions,
    initialToken: string,
    onTokenError: (err: SwitchboardError) => void,
  ) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.lastToken = initialToken;
    this.socket = io(opts.url, {
      transports: ['websocket'],
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      ...opts.socket,
      autoConnect: false,
      auth: (cb) => {
        this.currentToken().then(
          (token) => cb({ token }),
          (err: unknown) => {
            // The refresher failed: try the last token (the server says why it is refused).
            onTokenError(asError(err));
            cb({ token: this.lastToken });
          },
        );
      },
    }) as ProtocolSocket;
  }

  /** Opens the socket; resolves once authenticated, rejects with the server's code or CONNECTION_FAILED. */
  open(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const s = this.socket;
      const done = (err?: SwitchboardError) => {
        clearTimeout(timer);
        s.off('connect', onConnect);
        s.off('connect_error', onError);
        if (err) {
          s.disconnect();
          reject(err);
        } else resolve();
      };
      const onConnect = () => done();
      const onError = (err: Error & { data?: { code?: string; message?: string } }) => done(connectError(err));
      const timer = setTimeout(
        () => done(new SwitchboardError('CONNECTION_FAILED', `no connection to ${this.opts.url} within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      s.once('connect', onConnect);
      s.once('connect_error', onError);
      s.connect();
    });
  }

  /** Sends a protocol event and resolves with its acknowledgement; rejects with a SwitchboardError. */
  request<E extends ClientEvent>(event: E, payload: Payload<E>): Promise<AckResult<E>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new SwitchboardError('TIMEOUT', `no answer to ${event} within ${this.timeoutMs} ms`)), this.timeoutMs);
      // Socket.IO's emit cannot relate a generic event to its own arguments: the one cast of the SDK.
      const emit = this.socket.emit as (ev: E, p: Payload<E>, ack: (r: AckResponse<E> | undefined) => void) => void;
      emit.call(this.socket, event, payload, (res) => {
        clearTimeout(timer);
        if (res && 'ok' in res) resolve(res);
        else reject(new SwitchboardError(res?.error.code ?? 'INTERNAL_ERROR', res?.error.message ?? 'request failed'));
      });
    });
  }

  private async currentToken(): Promise<string> {
    const t = this.opts.token;
    if (typeof t === 'string') return t;
    // A refresher: use the last token while it is valid for a while longer, else ask for a new one.
    const exp = tokenExpiry(this.lastToken);
    if (exp !== null && exp * 1000 - Date.now() > TOKEN_REFRESH_MARGIN_MS) return this.lastToken;
    this.lastToken = await t();
    return this.lastToken;
  }
}

/** The `exp` of a JWT (seconds), without verifying it; null when unreadable. */
export function tokenExpiry(token: string): number | null {
  try {
    const part = token.split('.')[1];
    if (!part) return null;
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp : null;
  } catch {
    return null;
  }
}
