import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';

/**
 * UDP port pairs (RTP on an even port, RTCP on the next) for ffmpeg to listen
 * on, from RECORDING_MIN_PORT..RECORDING_MAX_PORT. A pair is handed out once
 * until released, and only after both ports were seen free, so two recordings
 * (or anything else on the machine) never collide.
 */
export class PortPairs {
  private readonly used = new Set<number>();
  private next: number;

  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {
    this.next = min + (min % 2);
  }

  async take(): Promise<number> {
    const slots = Math.floor((this.max - this.min) / 2);
    for (let i = 0; i < slots; i++) {
      const port = this.next;
      this.next = this.next + 2 > this.max - 1 ? this.min + (this.min % 2) : this.next + 2;
      if (this.used.has(port)) continue;
      this.used.add(port);
      if ((await udpFree(port)) && (await udpFree(port + 1))) return port;
      this.used.delete(port);
    }
    throw new Error(`no free UDP port pair in ${this.min}-${this.max}`);
  }

  release(port: number): void {
    this.used.delete(port);
  }

  get inUse(): number {
    return this.used.size;
  }
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Whether something listens on these UDP ports (ffmpeg is ready to receive): read from /proc/net/udp. */
export async function udpBound(ports: number[]): Promise<boolean> {
  let table = '';
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) table += await readFile(f, 'utf8').catch(() => '');
  const bound = new Set<number>();
  for (const line of table.split('\n').slice(1)) {
    const local = line.trim().split(/\s+/)[1];
    const hex = local?.split(':')[1];
    if (hex) bound.add(parseInt(hex, 16));
  }
  return ports.every((p) => bound.has(p));
}
