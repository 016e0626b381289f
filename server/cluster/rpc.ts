import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { AppError, isErrorCode } from '../errors';
import { MEDIA_METHODS, type MediaMethod, type MediaService } from '../mediaNode/service';

/**
 * Media requests forwarded between nodes over Redis pub/sub, the way LiveKit's
 * signal nodes reach RTC nodes: a node's socket handler calls a MediaService;
 * when the room's media lives on another node, the call is published on that
 * node's channel, run there against its LocalMediaService, and the result (or
 * the AppError, with its status and code) comes back on the caller's reply
 * channel. A target with no subscriber fails at once; a silent one after
 * RPC_TIMEOUT_MS, both as MEDIA_UNAVAILABLE.
 */
interface Request {
  id: string;
  from: string;
  method: MediaMethod;
  args: unknown[];
  /** Positions of undefined arguments (JSON would turn them into null). */
  undef: number[];
}
interface Reply {
  id: string;
  ok?: unknown;
  error?: { status: number; code: string; message: string };
}

export class MediaRpc {
  private readonly pending = new Map<string, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  private readonly remotes = new Map<string, MediaService>();
  private readonly reqChannel: string;
  private readonly replyChannel: string;
  /** Requests served for other nodes, and sent to them (metrics, benchmarks). */
  served = 0;
  sent = 0;

  constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly prefix: string,
    private readonly nodeId: string,
    private readonly local: MediaService,
    private readonly timeoutMs: number,
    private readonly log: FastifyBaseLogger,
  ) {
    this.reqChannel = `${prefix}rpc:${nodeId}`;
    this.replyChannel = `${prefix}rpc-reply:${nodeId}`;
  }

  async start(): Promise<void> {
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      const ch = channel.toString();
      if (ch === this.reqChannel) void this.serve(message.toString());
      else if (ch === this.replyChannel) this.settle(message.toString());
    });
    await this.sub.subscribe(this.reqChannel, this.replyChannel);
  }

  /** The media service of a node: this process's, or one that forwards to it. */
  at(nodeId: string): MediaService {
    if (nodeId === this.nodeId) return this.local;
    let remote = this.remotes.get(nodeId);
    if (!remote) {
      const r: Partial<Record<MediaMethod, (...args: unknown[]) => Promise<unknown>>> = {};
      for (const m of MEDIA_METHODS) r[m] = (...args: unknown[]) => this.call(nodeId, m, args);
      remote = r as unknown as MediaService;
      this.remotes.set(nodeId, remote);
    }
    return remote;
  }

  forget(nodeId: string): void {
    this.remotes.delete(nodeId);
  }

  private async call(nodeId: string, method: MediaMethod, args: unknown[]): Promise<unknown> {
    const id = randomUUID();
    const req: Request = { id, from: this.nodeId, method, args, undef: args.flatMap((a, i) => (a === undefined ? [i] : [])) };
    const result = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new AppError('MEDIA_UNAVAILABLE', `the media node of this room (${nodeId}) did not answer; wait for media-reset`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
    // The timer may fire while publish is still pending (a Redis stall), or after
    // it failed: neither may leave a rejection unhandled (that ends the process).
    result.catch(() => undefined);
    this.sent++;
    let receivers: number;
    try {
      receivers = await this.pub.publish(`${this.prefix}rpc:${nodeId}`, JSON.stringify(req));
    } catch (err) {
      const p = this.pending.get(id);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(id);
      }
      throw err;
    }
    if (receivers === 0) {
      const p = this.pending.get(id);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(new AppError('MEDIA_UNAVAILABLE', `the media node of this room (${nodeId}) is gone; wait for media-reset`));
      }
    }
    return result;
  }

  private settle(raw: string): void {
    let reply: Reply;
    try {
      reply = JSON.parse(raw) as Reply;
    } catch {
      return;
    }
    const p = this.pending.get(reply.id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(reply.id);
    if (reply.error) p.reject(new AppError(isErrorCode(reply.error.code) ? reply.error.code : 'INTERNAL_ERROR', reply.error.message));
    else p.resolve(reply.ok);
  }

  private async serve(raw: string): Promise<void> {
    let req: Request;
    try {
      req = JSON.parse(raw) as Request;
    } catch {
      return;
    }
    if (!(MEDIA_METHODS as readonly string[]).includes(req.method) || !Array.isArray(req.args)) return;
    this.served++;
    const args = req.args.map((a, i) => (req.undef?.includes(i) ? undefined : a));
    let reply: Reply;
    try {
      const fn = this.local[req.method] as (...a: unknown[]) => Promise<unknown>;
      const ok = await fn.apply(this.local, args);
      reply = { id: req.id, ok: ok ?? null };
    } catch (err) {
      if (!(err instanceof AppError)) this.log.error({ err, method: req.method }, 'forwarded media request failed');
      const e = err instanceof AppError ? err : new AppError('INTERNAL_ERROR');
      reply = { id: req.id, error: { status: e.status, code: e.code, message: e.message } };
    }
    await this.pub
      .publish(`${this.prefix}rpc-reply:${req.from}`, JSON.stringify(reply))
      .catch((err: unknown) => this.log.warn({ err }, 'could not answer a media request'));
  }

  close(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new AppError('MEDIA_UNAVAILABLE', 'this node is shutting down'));
    }
    this.pending.clear();
  }
}
