import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents } from '../../protocol';
import { issueToken, startTestApp, type TestApp } from './app';
import type { Backend } from './env';
import { sleep } from './wait';

/**
 * A real socket.io-client over a real port, with helpers to await acks and
 * server events. Every server event is queued per name; next() takes the oldest
 * (or waits), none() asserts nothing arrives.
 */
export type AnyAck = { ok?: true; error?: { code: string; message: string }; [k: string]: unknown };

export async function listen(t: TestApp): Promise<string> {
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const addr = t.app.server.address() as { port: number };
  return `http://127.0.0.1:${addr.port}`;
}

export type ClientOptions = { token?: string; auth?: Record<string, unknown>; io?: Partial<ManagerOptions & SocketOptions> };

export class Client {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private readonly queues = new Map<string, unknown[]>();
  private readonly waiters = new Map<string, Array<(v: unknown) => void>>();
  participantId = '';
  callId = '';

  /** opts.io: more socket.io-client options (e.g. `ca` for WSS, `extraHeaders`). */
  constructor(url: string, opts: ClientOptions = {}) {
    this.socket = io(url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      auth: opts.auth ?? (opts.token ? { token: opts.token } : {}),
      ...opts.io,
    }) as Socket<ServerToClientEvents, ClientToServerEvents>;
    this.socket.onAny((event: string, payload: unknown) => this.push(event, payload));
    this.socket.on('disconnect', (reason) => this.push('disconnect', reason));
    this.socket.on('connect_error', (err) => this.push('connect_error', err));
  }

  private push(event: string, payload: unknown): void {
    const w = this.waiters.get(event);
    if (w && w.length) return w.shift()!(payload);
    const q = this.queues.get(event) ?? [];
    q.push(payload);
    this.queues.set(event, q);
  }

  connected(): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', reject);
    });
  }

  /** Sends `event` and resolves with the acknowledgement. */
  request(event: string, payload?: unknown, timeoutMs = 5000): Promise<AnyAck> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ack for ${event} within ${timeoutMs} ms`)), timeoutMs);
      const args = payload === undefined ? [] : [payload];
      (this.socket.emit as (...a: unknown[]) => void)(event, ...args, (res: AnyAck) => {
        clearTimeout(timer);
        resolve(res);
      });
    });
  }

  /** Like request, but fails unless the ack is ok. */
  async ok(event: string, payload?: unknown): Promise<AnyAck> {
    const res = await this.request(event, payload);
    if (!res.ok) throw new Error(`${event} failed: ${JSON.stringify(res.error)}`);
    return res;
  }

  async join(room: string, display_name?: string): Promise<AnyAck> {
    const res = await this.ok('join', { room, ...(display_name ? { display_name } : {}) });
    this.participantId = res.participant_id as string;
    this.callId = (res.room_state as { call_id: string }).call_id;
    await this.next('joined');
    return res;
  }

  next<T = any>(event: string, timeoutMs = 5000): Promise<T> {
    const q = this.queues.get(event);
    if (q && q.length) return Promise.resolve(q.shift() as T);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
      const list = this.waiters.get(event) ?? [];
      list.push((v) => {
        clearTimeout(timer);
        resolve(v as T);
      });
      this.waiters.set(event, list);
    });
  }

  /** Events of this name received and not yet taken. */
  pending(event: string): unknown[] {
    return this.queues.get(event) ?? [];
  }

  /** Waits `ms` and asserts that no `event` arrived meanwhile. */
  async none(event: string, ms = 200): Promise<void> {
    await sleep(ms);
    const q = this.pending(event);
    if (q.length) throw new Error(`unexpected ${event}: ${JSON.stringify(q)}`);
  }

  close(): void {
    this.socket.disconnect();
  }
}

/** Records every event `c` receives from now on, in order, as [event, payload]. */
export function recordEvents(c: Client): Array<[string, any]> {
  const seen: Array<[string, any]> = [];
  c.socket.onAny((event: string, payload: unknown) => seen.push([event, payload]));
  return seen;
}

/** A test app listening on a port, and the clients of one test file. */
export interface SignalingApp {
  /** The app; set before the first test. */
  t: TestApp;
  /** Its base URL (http://127.0.0.1:<port>). */
  url: string;
  /** A client of the app, closed after the file's tests. */
  client(opts?: ClientOptions): Client;
  /** A client authenticated in the handshake with `token`, once connected. */
  connect(token: string): Promise<Client>;
  /** A client with a token issued for `claims`, connected and joined to `room`. */
  join(claims: Parameters<typeof issueToken>[1], room: string, displayName?: string): Promise<Client>;
}

/**
 * Starts an app on `backend` with `env` (a function when it depends on other
 * fixtures, e.g. a receiver's URL) before the file's tests, and closes every
 * client and the app after them; `beforeClose` runs first (to stop media peers).
 */
export function useSignalingApp(
  backend: Backend,
  env: Record<string, string> | (() => Record<string, string>) = {},
  opts: { deps?: Parameters<typeof startTestApp>[2]; beforeClose?: () => Promise<void> } = {},
): SignalingApp {
  const clients: Client[] = [];
  const s: SignalingApp = {
    t: undefined as unknown as TestApp,
    url: '',
    client(clientOpts = {}) {
      const c = new Client(s.url, clientOpts);
      clients.push(c);
      return c;
    },
    async connect(token) {
      const c = s.client({ token });
      await c.connected();
      return c;
    },
    async join(claims, room, displayName) {
      const c = await s.connect(await issueToken(s.t, claims));
      await c.join(room, displayName);
      return c;
    },
  };
  beforeAll(async () => {
    s.t = await startTestApp(backend, typeof env === 'function' ? env() : env, opts.deps);
    s.url = await listen(s.t);
  });
  afterAll(async () => {
    await opts.beforeClose?.();
    clients.forEach((c) => c.close());
    await s.t?.close();
  });
  return s;
}
