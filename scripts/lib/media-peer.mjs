/**
 * A real WebRTC client for the media benchmarks: one server/test/helpers/media-peer.mjs
 * child (mediasoup-client on @roamhq/wrtc), driven over IPC, as server/test/helpers/mediaPeers.ts
 * drives it in the tests.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { IpcClient } from './ipc.mjs';
import { ROOT, machineMeta, memTotalGb, packageVersion } from './system.mjs';

const PEER_SCRIPT = path.join(ROOT, 'server', 'test', 'helpers', 'media-peer.mjs');

/** @typedef {import('./runner.mjs').BenchRun} BenchRun */

/** The machine fields, then the versions of the media stack, as the media benchmarks record them. */
export const mediaMeta = () => ({
  ...machineMeta(),
  mem_total_gb: memTotalGb(),
  mediasoup: packageVersion('mediasoup'),
  mediasoup_client: packageVersion('mediasoup-client'),
  wrtc: packageVersion('@roamhq/wrtc'),
});

export class MediaPeer {
  /** @type {{ where: string, message: string | undefined }[]} */
  errors = [];
  stopping = false;

  /**
   * @param {BenchRun} run stops the peer at cleanup, before the servers
   * @param {string} name
   * @param {{ log: (line: string) => void, readyTimeoutMs: number, pollMs: number }} options
   */
  constructor(run, name, { log, readyTimeoutMs, pollMs }) {
    this.name = name;
    this.readyTimeoutMs = readyTimeoutMs;
    this.pollMs = pollMs;
    this.proc = run.forkNode(name, PEER_SCRIPT, {
      env: { ...process.env },
      tailBytes: 4096,
      order: 0,
      stopWith: () => this.stop(3_000).catch(() => this.kill()),
    });
    /** @type {(ready: boolean) => void} */
    let setReady = () => {};
    /** @type {Promise<boolean>} */
    this.ready = new Promise((resolve) => (setReady = resolve));
    this.ipc = new IpcClient(this.proc, (msg) => {
      if (msg?.type === 'ready') setReady(true);
      else if (msg?.type === 'error') {
        this.errors.push({ where: msg.where, message: msg.error?.message });
        log(`  [peer ${name}] ${msg.where}: ${msg.error?.message}`);
      }
    });
    this.proc.exited.then(() => setReady(false));
  }

  get pid() {
    return this.proc.pid;
  }

  get exitInfo() {
    return this.proc.exitInfo;
  }

  get exited() {
    return this.proc.exited;
  }

  tail() {
    return this.proc.tail();
  }

  async waitReady(timeoutMs = this.readyTimeoutMs) {
    const ok = await Promise.race([this.ready, sleep(timeoutMs).then(() => null)]);
    if (ok !== true)
      throw new Error(`[${this.name}] child not ready (${ok === null ? 'timeout' : `exited ${JSON.stringify(this.exitInfo)}`}):\n${this.tail()}`);
  }

  /**
   * @param {string} cmd
   * @param {object} [args]
   * @param {number} [timeoutMs]
   * @param {() => void} [beforeSend] runs synchronously right before the IPC message is sent
   */
  request(cmd, args = {}, timeoutMs = 15_000, beforeSend) {
    return this.ipc.request(cmd, args, timeoutMs, beforeSend);
  }

  /** The peer's snapshot; with `transport`, its transports' RTCPeerConnection stats too. */
  stats(transport = false) {
    return this.request('stats', { transport });
  }

  /**
   * A signaling event with its ack; throws on an error ack.
   * @param {string} event
   * @param {object} payload
   * @param {number} [timeoutMs]
   */
  async emit(event, payload, timeoutMs = 20_000) {
    const res = await this.request('emit', { event, payload, timeoutMs }, timeoutMs + 2_000);
    if (!res || res.ok !== true) throw new Error(`[${this.name}] ${event} failed: ${JSON.stringify(res?.error ?? res)}`);
    return res;
  }

  /**
   * Polls stats() until pred(stats) is truthy; returns those stats.
   * @param {(stats: any) => unknown} pred
   * @param {number} timeoutMs
   * @param {number} [intervalMs]
   * @param {string} [what]
   */
  async waitFor(pred, timeoutMs, intervalMs = this.pollMs, what = 'condition') {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.stats();
      if (pred(s)) return s;
      if (Date.now() > deadline) throw new Error(`[${this.name}] ${what} not reached within ${timeoutMs} ms`);
      await sleep(intervalMs);
    }
  }

  /** The child's own stop (closes its transports, replies, exits); SIGKILL if it hangs. */
  async stop(timeoutMs = 5_000) {
    if (this.exitInfo) return;
    if (this.stopping) return void (await this.exited);
    this.stopping = true;
    try {
      await this.request('stop', {}, timeoutMs);
    } catch {
      /* not answered or died first */
    }
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill() {
    if (!this.exitInfo) this.proc.child.kill('SIGKILL');
  }
}
