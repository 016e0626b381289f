/**
 * Requests and replies over a forked child's IPC channel, the protocol of
 * server/test/helpers/media-peer.mjs that the benchmarks' own children speak too:
 *   parent -> child  { id, cmd, args }
 *   child -> parent  { id, ok: true, result } or { id, ok: false, error: { message } }
 * Messages without an id are events (e.g. { type: 'ready' }).
 */

/** @typedef {import('./processes.mjs').Proc} Proc */

/**
 * @typedef {{ resolve: (value: any) => void, reject: (err: Error) => void, timer: NodeJS.Timeout }} Pending
 */

/** The parent's side: one request at a time or many, each with its own timeout. */
export class IpcClient {
  #nextId = 1;
  /** @type {Map<number, Pending>} */
  #pending = new Map();

  /**
   * @param {Proc} proc a child forked with an IPC channel
   * @param {(message: any) => void} [onEvent]
   */
  constructor(proc, onEvent) {
    this.proc = proc;
    proc.child.on('message', (/** @type {any} */ msg) => {
      if (msg?.id === undefined) return void onEvent?.(msg);
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`[${proc.name}] ${msg.error?.message ?? 'failed'}`));
    });
    proc.exited.then((e) => {
      for (const [id, p] of this.#pending) {
        clearTimeout(p.timer);
        p.reject(new Error(`[${proc.name}] exited (code ${e.code}, signal ${e.signal})${proc.tail() ? `:\n${proc.tail()}` : ''}`));
        this.#pending.delete(id);
      }
    });
  }

  /**
   * Sends `cmd` and resolves with the child's result. `beforeSend` runs synchronously right
   * before the message is handed to the channel (to timestamp the send).
   * @param {string} cmd
   * @param {object} [args]
   * @param {number} [timeoutMs]
   * @param {() => void} [beforeSend]
   * @returns {Promise<any>}
   */
  request(cmd, args = {}, timeoutMs = 15_000, beforeSend) {
    const { proc } = this;
    if (proc.exitInfo || !proc.child.connected) return Promise.reject(new Error(`[${proc.name}] not running`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`[${proc.name}] '${cmd}' got no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      beforeSend?.();
      proc.child.send({ id, cmd, args }, (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new Error(`[${proc.name}] IPC send failed: ${err.message}`));
      });
    });
  }
}

/**
 * The child's side: answers each request with commands[cmd](args), and says { type: 'ready' }.
 * @param {Record<string, (args: any) => unknown>} commands
 */
export function serveIpc(commands) {
  const send = /** @type {NonNullable<typeof process.send>} */ (process.send).bind(process);
  process.on('message', async (/** @type {any} */ msg) => {
    const { id, cmd, args } = msg ?? {};
    const fn = Object.hasOwn(commands, cmd) ? commands[cmd] : undefined;
    if (!fn) return void send({ id, ok: false, error: { message: `unknown command ${cmd}` } });
    try {
      send({ id, ok: true, result: await fn(args ?? {}) });
    } catch (err) {
      send({ id, ok: false, error: { message: err instanceof Error ? err.stack : String(err) } });
    }
  });
  send({ type: 'ready', pid: process.pid });
}
