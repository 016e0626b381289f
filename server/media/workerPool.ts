import * as mediasoup from 'mediasoup';
import { EventEmitter } from 'node:events';
import type { Router, RouterOptions, WebRtcServer, Worker } from 'mediasoup/types';
import type { FastifyBaseLogger } from 'fastify';
import type { MediasoupLogLevel } from '../config/config';

/**
 * The mediasoup worker processes this node routes media with. Each worker gets
 * its own slice of the RTC port range so workers never compete for a port. A
 * worker that dies is replaced (after RESPAWN_DELAY_MS, so a worker that dies at
 * once does not spin the CPU); rooms on it are the SFU layer's business.
 */
export interface WorkerPoolOptions {
  numWorkers: number;
  rtcMinPort: number;
  rtcMaxPort: number;
  logLevel: MediasoupLogLevel;
  log: FastifyBaseLogger;
  /** One WebRtcServer per worker (a single UDP and TCP port each) for WebRTC transports. */
  webRtc?: { listenIp: string; announcedAddress: string; basePort: number };
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  webRtcServer: WebRtcServer | undefined;
  minPort: number;
  maxPort: number;
  routers: number;
}

/** Wait before replacing a dead worker. */
const RESPAWN_DELAY_MS = 1000;

export interface WorkerPoolEvents {
  /** A worker died (its routers are closed); a replacement is being started. */
  died: [worker: Worker];
  /** A worker (first or replacement) is up. */
  started: [worker: Worker];
}

export class WorkerPool extends EventEmitter<WorkerPoolEvents> {
  private readonly slots: Slot[];
  private closed = false;
  private stopping = false;
  /** Worker deaths seen since start; exposed for /ready and metrics. */
  deaths = 0;

  constructor(private readonly opts: WorkerPoolOptions) {
    super();
    const span = opts.rtcMaxPort - opts.rtcMinPort + 1;
    const per = Math.floor(span / opts.numWorkers);
    this.slots = Array.from({ length: opts.numWorkers }, (_, i) => ({
      index: i,
      worker: undefined,
      webRtcServer: undefined,
      minPort: opts.rtcMinPort + i * per,
      maxPort: i === opts.numWorkers - 1 ? opts.rtcMaxPort : opts.rtcMinPort + (i + 1) * per - 1,
      routers: 0,
    }));
  }

  async start(): Promise<void> {
    await Promise.all(this.slots.map((s) => this.spawn(s)));
  }

  private async spawn(slot: Slot): Promise<void> {
    const worker = await mediasoup.createWorker({
      logLevel: this.opts.logLevel === 'none' ? 'none' : this.opts.logLevel,
      rtcMinPort: slot.minPort,
      rtcMaxPort: slot.maxPort,
      appData: { slot: slot.index },
    });
    if (this.opts.webRtc) {
      const { listenIp, announcedAddress, basePort } = this.opts.webRtc;
      const port = basePort + slot.index;
      const announce = announcedAddress && announcedAddress !== listenIp ? { announcedAddress } : {};
      try {
        slot.webRtcServer = await worker.createWebRtcServer({
          listenInfos: [
            { protocol: 'udp', ip: listenIp, port, ...announce },
            { protocol: 'tcp', ip: listenIp, port, ...announce },
          ],
        });
      } catch (err) {
        worker.close();
        throw new Error(`cannot listen for WebRTC on ${listenIp}:${port} (MEDIASOUP_WEBRTC_PORT + ${slot.index}): ${(err as Error).message}`);
      }
    }
    slot.worker = worker;
    slot.routers = 0;
    worker.observer.on('newrouter', (router) => {
      slot.routers++;
      router.observer.once('close', () => slot.routers--);
    });
    worker.on('died', (error) => {
      slot.worker = undefined;
      slot.webRtcServer = undefined;
      if (this.stopping) {
        // A signal to the whole process group (systemd, docker stop of a shell entrypoint) reaches the
        // workers too: while the server stops that is no death, and a replacement would outlive it.
        this.opts.log.info({ workerPid: worker.pid, slot: slot.index }, 'mediasoup worker stopped while the server stops');
        return;
      }
      this.deaths++;
      this.opts.log.error({ workerPid: worker.pid, slot: slot.index, err: error }, 'mediasoup worker died; replacing it');
      this.emit('died', worker);
      if (this.closed) return;
      setTimeout(() => {
        if (this.closed) return;
        this.spawn(slot).catch((err: unknown) => this.opts.log.error({ err, slot: slot.index }, 'could not replace mediasoup worker'));
      }, RESPAWN_DELAY_MS).unref();
    });
    this.opts.log.info({ workerPid: worker.pid, slot: slot.index, ports: `${slot.minPort}-${slot.maxPort}` }, 'mediasoup worker started');
    this.emit('started', worker);
  }

  /** Live workers, for health reporting. */
  get alive(): number {
    return this.slots.filter((s) => s.worker && !s.worker.closed && !s.worker.died).length;
  }

  get size(): number {
    return this.slots.length;
  }

  /** Shut down: workers closing now are not deaths. */
  get isClosed(): boolean {
    return this.closed;
  }

  workers(): Worker[] {
    return this.slots.flatMap((s) => (s.worker && !s.worker.closed ? [s.worker] : []));
  }

  /** The WebRtcServer of a worker of this pool. */
  webRtcServerOf(worker: Worker): WebRtcServer | undefined {
    return this.slots.find((s) => s.worker === worker)?.webRtcServer;
  }

  /** The live worker with the fewest routers (other than `exclude` when another is alive). */
  leastLoaded(exclude?: Worker): Worker {
    let best: Slot | undefined;
    for (const s of this.slots) {
      if (!s.worker || s.worker.closed || s.worker.died) continue;
      if (exclude && s.worker === exclude && this.alive > 1) continue;
      if (!best || s.routers < best.routers) best = s;
    }
    if (!best?.worker) throw new Error('no mediasoup worker is alive');
    return best.worker;
  }

  async createRouter(options: RouterOptions, exclude?: Worker): Promise<Router> {
    return this.leastLoaded(exclude).createRouter(options);
  }

  /** Resolves once at least one worker is alive (e.g. while a dead one is replaced). */
  async waitAlive(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.alive === 0) {
      if (this.closed || Date.now() > until) throw new Error('no mediasoup worker is alive');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The server is stopping (called at the signal): a worker that dies from now on is not replaced. */
  stopReplacing(): void {
    this.stopping = true;
  }

  /** Last step of a shutdown: closes every worker (and so frees its ports). */
  close(): void {
    this.stopping = true;
    this.closed = true;
    for (const s of this.slots) s.worker?.close();
  }
}
