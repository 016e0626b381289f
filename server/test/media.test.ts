import pino from 'pino';
import { WorkerPool } from '../media/workerPool';
import { until } from './helpers/wait';

const MEDIA_CODECS = [
  { kind: 'audio' as const, mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { kind: 'video' as const, mimeType: 'video/VP8', clockRate: 90000 },
];

describe('mediasoup worker pool', () => {
  let pool: WorkerPool;
  beforeEach(async () => {
    pool = new WorkerPool({ numWorkers: 2, rtcMinPort: 41000, rtcMaxPort: 41999, logLevel: 'warn', log: pino({ level: 'silent' }) });
    await pool.start();
  });
  afterEach(() => pool.close());

  it('starts real worker processes with disjoint port ranges and creates routers on the least-loaded one', async () => {
    expect(pool.alive).toBe(2);
    const [a, b] = pool.workers();
    expect(a!.pid).not.toBe(b!.pid);
    expect(() => process.kill(a!.pid, 0)).not.toThrow();
    const r1 = await pool.createRouter({ mediaCodecs: MEDIA_CODECS });
    const r2 = await pool.createRouter({ mediaCodecs: MEDIA_CODECS });
    expect(r1.rtpCapabilities.codecs?.map((c) => c.mimeType)).toEqual(expect.arrayContaining(['audio/opus', 'video/VP8']));
    // Two routers on two workers: the second went to the other, idle, worker.
    const usage = await Promise.all(pool.workers().map(async (w) => (await w.dump()).routerIds.length));
    expect(usage.sort()).toEqual([1, 1]);
    // A transport gets a port from its worker's slice.
    const t = await r1.createWebRtcTransport({ listenIps: [{ ip: '127.0.0.1' }] });
    const port = t.iceCandidates[0]!.port;
    expect(port).toBeGreaterThanOrEqual(41000);
    expect(port).toBeLessThanOrEqual(41999);
    r1.close();
    r2.close();
  });

  it('replaces a worker whose process is killed', async () => {
    const victim = pool.workers()[0]!;
    const died = new Promise((resolve) => victim.on('died', resolve));
    process.kill(victim.pid, 'SIGKILL');
    await died;
    expect(pool.alive).toBe(1);
    expect(pool.deaths).toBe(1);
    await until('the replacement worker', () => pool.alive === 2, { timeoutMs: 10_000 });
    expect(pool.workers().map((w) => w.pid)).not.toContain(victim.pid);
    // The replacement works.
    const r = await pool.createRouter({ mediaCodecs: MEDIA_CODECS });
    expect(r.closed).toBe(false);
  });
});
