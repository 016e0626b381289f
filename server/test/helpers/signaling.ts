import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents } from '../../protocol';
import type { TestApp } from './app';
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

export class Client {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private readonly queues = new Map<string, unknown[]>();
  private readonly waiters = new Map<string, Array<(v: unknown) => void>>();
  participantId = '';
  callId = '';

  /** opts.io: more socket.io-client options (e.g. `ca` for WSS, `extraHeaders`). */
  constructor(url: string, opts: { token?: string; auth?: Record<string, unknown>; io?: Partial<ManagerOptions & SocketOptions> } = {}) {
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
