import { issueToken, startTestApp } from './helpers/app';
import { Client, listen } from './helpers/signaling';
import { OPUS_RTP } from './helpers/rtp';

async function setup(env: Record<string, string>) {
  const t = await startTestApp('pglite', env);
  const url = await listen(t);
  const clients: Client[] = [];
  const connect = async (user: string, room: string) => {
    const c = new Client(url, { token: await issueToken(t, { user_id: user, room }) });
    clients.push(c);
    await c.connected();
    await c.join(room);
    return c;
  };
  return {
    t,
    connect,
    close: async () => {
      clients.forEach((c) => c.close());
      await t.close();
    },
  };
}

describe('SFU and mediasoup workers', () => {
  it('spreads receivers of a busy room to a router on another worker, fed by pipeToRouter', async () => {
    const s = await setup({ MEDIASOUP_WORKERS: '2', MEDIASOUP_CONSUMERS_PER_ROUTER: '1' });
    try {
      const room = 'spread';
      const A = await s.connect('a', room);
      const B = await s.connect('b', room);
      const C = await s.connect('c', room);
      const caps = (await A.ok('get-router-rtp-capabilities', {})).rtp_capabilities;
      const send = await A.ok('create-transport', { direction: 'send' });
      const produced = await A.ok('produce', { transport_id: send.transport_id, kind: 'audio', rtp_parameters: OPUS_RTP(1234), source: 'mic' });
      const rb = await B.ok('create-transport', { direction: 'recv' });
      await B.ok('consume', { transport_id: rb.transport_id, producer_id: produced.producer_id, rtp_capabilities: caps });
      const rc = await C.ok('create-transport', { direction: 'recv' });
      const cc = await C.ok('consume', { transport_id: rc.transport_id, producer_id: produced.producer_id, rtp_capabilities: caps });
      await C.ok('resume-consumer', { consumer_id: cc.consumer_id });

      const media = s.t.sfu.get(room)!;
      expect(media.routers).toHaveLength(2);
      const [primary, second] = media.routers;
      const workerOf = (r: typeof primary) => (r!.appData as { worker: { pid: number } }).worker.pid;
      expect(workerOf(primary)).not.toBe(workerOf(second));
      const secondDump = JSON.stringify(await second!.dump());
      expect(secondDump).toContain(rc.transport_id as string);
      expect(secondDump).toContain(produced.producer_id as string); // the piped producer keeps its id
      expect(JSON.stringify(await primary!.dump())).toContain(rb.transport_id as string);
    } finally {
      await s.close();
    }
  });

  it('re-creates a room whose worker was killed and tells its clients to negotiate again', async () => {
    const s = await setup({ MEDIASOUP_WORKERS: '1' });
    try {
      const room = 'phoenix';
      const A = await s.connect('a', room);
      const B = await s.connect('b', room);
      const send = await A.ok('create-transport', { direction: 'send' });
      await A.ok('produce', { transport_id: send.transport_id, kind: 'audio', rtp_parameters: OPUS_RTP(999), source: 'mic' });
      await B.next('new-producer');
      await A.ok('mute', { call_id: A.callId, track: 'video' });

      const victim = s.t.workers.workers()[0]!;
      process.kill(victim.pid, 'SIGKILL');
      const resetA = await A.next('media-reset', 10_000);
      expect(resetA).toEqual({ call_id: A.callId, reason: 'worker-died' });
      expect(await B.next('media-reset', 10_000)).toEqual({ call_id: B.callId, reason: 'worker-died' });
      expect(s.t.workers.workers()[0]!.pid).not.toBe(victim.pid);

      // The old media is gone; the call, the participants and their state are not.
      expect((await A.request('connect-transport', { transport_id: send.transport_id, dtls_parameters: { fingerprints: [] } })).error?.code).toBe(
        'TRANSPORT_NOT_FOUND',
      );
      const again = await A.ok('create-transport', { direction: 'send' });
      const p = await A.ok('produce', { transport_id: again.transport_id, kind: 'audio', rtp_parameters: OPUS_RTP(1000), source: 'mic' });
      expect(await B.next('new-producer')).toMatchObject({ producer_id: p.producer_id, participant_id: A.participantId });
      const C = await s.connect('c', room);
      expect(C.callId).toBe(A.callId);
      expect((await s.t.app.inject('/ready')).json().checks.media_workers).toEqual({ ok: true, detail: '1/1 alive' });
    } finally {
      await s.close();
    }
  });
});

describe('the worker pool while the server stops', () => {
  it('does not replace a worker that dies once stopping began (a signal to the whole process group)', async () => {
    const t = await startTestApp('pglite', { MEDIASOUP_WORKERS: '1' });
    try {
      const pid = t.workers.workers()[0]!.pid;
      let started = 0;
      t.workers.on('started', () => started++);
      t.workers.stopReplacing();
      process.kill(pid, 'SIGKILL');
      // Past the respawn delay (1 s): nothing came back.
      await new Promise((r) => setTimeout(r, 1800));
      expect(t.workers.alive).toBe(0);
      expect(started).toBe(0);
    } finally {
      await t.close();
    }
  });
});
