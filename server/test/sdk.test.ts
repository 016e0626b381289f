import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { issueToken, startTestApp, type TestApp } from './helpers/app';
import { signRs256 } from './helpers/jwt';
import { listen } from './helpers/signaling';
import { sleep, until } from './helpers/wait';

/**
 * The client SDK (client/sdk, as built into dist/client/sdk) against the real
 * server, with real WebRTC (@roamhq/wrtc) in child processes: connecting,
 * joining, publishing and receiving media, mute (own and a moderator's),
 * hold, DTMF, recording controls, reconnection with resume, removal, end.
 */
jest.setTimeout(120_000);

const PEER = path.resolve(__dirname, 'helpers', 'sdk-peer.mjs');

class SdkPeer {
  readonly child: ChildProcess;
  readonly events: Array<{ event: string; payload: any }> = [];
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: any): void; reject(e: Error): void }>();
  private readonly ready: Promise<void>;

  constructor(readonly name: string) {
    this.child = fork(PEER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve) => {
      this.child.on('message', (m: any) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'event') this.events.push({ event: m.event, payload: m.payload });
        else if (m.type === 'error') this.events.push({ event: 'process-error', payload: m.error });
        else if (m.id) {
          const p = this.pending.get(m.id);
          this.pending.delete(m.id);
          if (m.ok) p?.resolve(m.result);
          else p?.reject(Object.assign(new Error(`[${name}] ${m.error?.message}`), { code: m.error?.code }));
        }
      });
    });
  }

  async cmd<T = any>(cmd: string, args: unknown = {}): Promise<T> {
    await this.ready;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, cmd, args });
    });
  }

  call<T = any>(method: string, ...args: unknown[]): Promise<T> {
    return this.cmd('call', { method, args });
  }

  /** Waits for an SDK event matching `pred` (events already received count). */
  async waitEvent(event: string, pred: (p: any) => boolean = () => true, timeoutMs = 10_000): Promise<any> {
    const found = await until(
      () => `[${this.name}] a '${event}' event; got ${JSON.stringify(this.events.map((e) => e.event))}`,
      () => this.events.find((e) => e.event === event && pred(e.payload)),
      { timeoutMs, intervalMs: 50 },
    );
    this.events.splice(this.events.indexOf(found), 1);
    return found.payload;
  }

  async waitFrames(fromParticipant: string, min: number, timeoutMs = 20_000): Promise<number> {
    let frames = 0;
    const reached = await until(
      () => `[${this.name}] ${min} frames from ${fromParticipant} (got ${frames})`,
      async () => {
        const s = await this.cmd('state');
        frames = Object.values(s.remote as Record<string, { participantId: string; source: string; frames: number }>)
          .filter((r) => r.participantId === fromParticipant && r.source === 'camera')
          .reduce((a, r) => a + r.frames, 0);
        return frames >= min && { frames };
      },
      { timeoutMs, intervalMs: 200 },
    );
    return reached.frames;
  }

  stop(): Promise<void> {
    return this.cmd('stop').then(
      () => undefined,
      () => undefined,
    );
  }
}

describe('the client SDK with real WebRTC', () => {
  let t: TestApp;
  let url: string;
  const peers: SdkPeer[] = [];
  const peer = (name: string) => {
    const p = new SdkPeer(name);
    peers.push(p);
    return p;
  };
  beforeAll(async () => {
    t = await startTestApp('postgres', { MEDIASOUP_WORKERS: '1', RECONNECT_GRACE_SECONDS: '10' });
    url = await listen(t);
  });
  afterAll(async () => {
    await Promise.all(peers.map((p) => p.stop()));
    await Promise.all(
      peers.map((p) =>
        p.child.exitCode !== null || p.child.signalCode !== null
          ? Promise.resolve()
          : new Promise((r) => {
              p.child.once('exit', r);
              p.child.kill('SIGKILL');
            }),
      ),
    );
    await t.close();
  });

  it('refuses an expired token with TOKEN_EXPIRED', async () => {
    const p = peer('expired');
    const now = Math.floor(Date.now() / 1000);
    const token = signRs256(
      { kid: t.keys.kid },
      { sub: 'x', role: 'participant', iat: now - 100, exp: now - 10, jti: 'j', iss: 'switchboard', aud: 'switchboard' },
      t.keys.privateKeyPem,
    );
    await expect(p.cmd('connect', { url, token })).rejects.toMatchObject({ message: expect.stringContaining('expired') });
  });

  it('runs a call: media both ways, mute, hold, DTMF, recording, reconnection, removal, end', async () => {
    const room = 'sdk-call';
    const H = peer('host');
    const G = peer('guest');
    await H.cmd('connect', { url, token: await issueToken(t, { user_id: 'hal', room, role: 'host', display_name: 'Hal' }) });
    await G.cmd('connect', { url, token: await issueToken(t, { user_id: 'gia', room, display_name: 'Gia' }) });
    await H.call('join', room, { displayName: 'Hal' });
    await H.cmd('publish', { audio: true, video: true });
    await G.call('join', room, { displayName: 'Gia' });
    await G.cmd('publish', { audio: true, video: true });
    const h = await H.cmd('state');
    const g = await G.cmd('state');
    expect(h.callId).toBe(g.callId);
    expect((await H.waitEvent('participant-joined')).participant_id).toBe(g.participantId);

    // Media flows both ways (the guest got the host's existing producers at join; the host the guest's new ones).
    await G.waitFrames(h.participantId, 20);
    await H.waitFrames(g.participantId, 20);

    // The host mutes the guest's video: both see the lock; the host sees the track paused; the guest cannot lift it.
    await H.call('mute', 'video', g.participantId);
    const upd = await G.waitEvent('participant-updated', (p) => p.participant_id === g.participantId && p.muted_tracks.includes('video'));
    expect(upd.locked_tracks).toContain('video');
    await H.waitEvent('track-paused', (p) => p.participantId === g.participantId && p.paused === true);
    expect(await G.call('unmute', 'video')).toEqual({ error: expect.objectContaining({ code: 'MUTED_BY_MODERATOR' }) });
    await H.call('unmute', 'video', g.participantId);
    await G.call('unmute', 'video');
    await H.waitEvent('track-paused', (p) => p.participantId === g.participantId && p.paused === false);

    // Hold and DTMF.
    expect(await G.call('hold')).toEqual(['audio', 'video', 'screen']);
    await H.waitEvent('participant-updated', (p) => p.participant_id === g.participantId && p.held_tracks.length === 3);
    expect(await G.call('unhold')).toEqual([]);
    await G.call('sendDtmf', '12#');
    expect(await H.waitEvent('dtmf')).toEqual({ from: g.participantId, tones: '12#' });
    expect(await G.call('sendDtmf', 'xyz')).toEqual({ error: expect.objectContaining({ code: 'INVALID_DTMF' }) });

    // Recording controls: the host starts and stops; a participant may not.
    expect(await G.call('startRecording')).toEqual({ error: expect.objectContaining({ code: 'FORBIDDEN' }) });
    const started = await H.call('startRecording');
    expect(started.recordingId).toEqual(expect.any(String));
    await G.waitEvent('recording-started');
    await sleep(1500);
    const finished = await H.call('stopRecording');
    expect(finished).toMatchObject({ recording_id: started.recordingId, status: 'completed' });
    await G.waitEvent('recording-finished');

    // A network drop: socket.io-client reconnects, the SDK rejoins and resumes; the host sees no leave, media keeps flowing.
    await G.cmd('drop');
    await G.waitEvent('connection', (p) => p.state === 'reconnecting');
    expect(await G.waitEvent('joined', (p) => p.resumed === true)).toMatchObject({ resumed: true });
    expect((await G.cmd('state')).participantId).toBe(g.participantId);
    const before = await H.waitFrames(g.participantId, 1);
    await H.waitFrames(g.participantId, before + 15);
    expect(H.events.filter((e) => e.event === 'participant-left')).toEqual([]);

    // A participant may not remove the host; the host removes the guest.
    expect(await G.call('removeParticipant', h.participantId)).toEqual({ error: expect.objectContaining({ code: 'FORBIDDEN' }) });
    await H.call('removeParticipant', g.participantId, 'bye');
    expect(await G.waitEvent('removed')).toMatchObject({ reason: 'bye', by: h.participantId });
    expect(await H.waitEvent('participant-left')).toMatchObject({ participantId: g.participantId, reason: 'removed' });
    await H.waitEvent('track-ended', (p) => p.participantId === g.participantId);

    // The host ends the call.
    await H.call('endCall');
    expect(await H.waitEvent('call-state', (p) => p.status === 'ended')).toEqual({ status: 'ended', recording: false });
    expect((await H.cmd('state')).callId).toBeNull();
    expect(H.events.filter((e) => e.event === 'process-error')).toEqual([]);
  });
});
