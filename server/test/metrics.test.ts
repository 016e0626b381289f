import { createHash, randomBytes } from 'node:crypto';
import { admin, issueToken } from './helpers/app';
import { frames, killAllPeers, spawnPeer } from './helpers/mediaPeers';
import { parseExposition, promtool, total, type Exposition } from './helpers/metrics';
import { useSignalingApp } from './helpers/signaling';
import { sleep, until } from './helpers/wait';
import { Receiver, SECRET } from './helpers/webhookReceiver';

/**
 * /metrics after a real call: two WebRTC peers (mediasoup-client on
 * @roamhq/wrtc) publish and receive audio and video, the call is recorded
 * (one ffmpeg killed on the way), webhooks are delivered, a file is
 * uploaded, a worker dies. Prometheus' own promtool checks the exposition,
 * and each family shows what the call did.
 */
jest.setTimeout(150_000);

describe('metrics', () => {
  const receiver = new Receiver(SECRET);
  beforeAll(() => receiver.start());
  afterAll(() => receiver.stop());
  const app = useSignalingApp('postgres', () => ({ METRICS_MEDIA_SAMPLE_MS: '250', WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: SECRET }), {
    beforeClose: killAllPeers,
  });

  const scrape = async (): Promise<{ text: string; e: Exposition }> => {
    const res = await fetch(`${app.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    return { text, e: parseExposition(text) };
  };
  /** The call of the first test, ended by the second. */
  let endedCallId = '';
  const value = async (name: string, labels: Record<string, string> = {}) => total((await scrape()).e, name, labels);

  it('passes promtool check metrics after a real call, and every family counts what the call did', async () => {
    const room = 'metrics-call';
    const H = spawnPeer({ name: 'metrics-host' });
    const P = spawnPeer({ name: 'metrics-part' });
    const publish = { audio: true, video: true };
    const h = await H.start({ url: app.url, token: await issueToken(app.t, { user_id: 'mh', room, role: 'host' }), room, publish });
    const p = await P.start({ url: app.url, token: await issueToken(app.t, { user_id: 'mp', room }), room, publish });
    const callId = (endedCallId = h.call_id!);
    await H.waitFor((s) => frames(s, p.participant_id) > 10, 15_000);
    await P.waitFor((s) => frames(s, h.participant_id) > 10, 15_000);

    // REST: a route with a parameter, and a URL no route matches.
    expect((await fetch(`${app.url}/calls/${callId}`, { headers: admin })).status).toBe(200);
    expect((await fetch(`${app.url}/no/such/${callId}`)).status).toBe(404);

    // Recording, with one ffmpeg killed: it restarts into a new segment.
    expect((await fetch(`${app.url}/calls/${callId}/recordings`, { method: 'POST', headers: admin })).status).toBe(201);
    await sleep(2500);
    process.kill(app.t.recorder.processes(room)[0]!.pid, 'SIGKILL');
    await until('an ffmpeg restart counted', async () => (await value('switchboard_recording_ffmpeg_restarts_total')) === 1, { intervalMs: 100 });
    await sleep(2000);
    const stopped = await fetch(`${app.url}/calls/${callId}/recordings/stop`, { method: 'POST', headers: admin });
    expect(((await stopped.json()) as { recording: { status: string } }).recording.status).toBe('completed');

    // A client-side upload, in one chunk.
    const file = randomBytes(4096);
    const created = await fetch(`${app.url}/calls/${callId}/uploads`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ file_name: 'm.webm', mime_type: 'video/webm', size_bytes: file.length, sha256: createHash('sha256').update(file).digest('hex') }),
    });
    expect(created.status).toBe(201);
    const { upload_url } = (await created.json()) as { upload_url: string };
    const patched = await fetch(app.url + upload_url, {
      method: 'PATCH',
      headers: { ...admin, 'tus-resumable': '1.0.0', 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
      body: new Uint8Array(file),
    });
    expect(patched.status).toBeLessThan(300);

    // RTP counters are sampled (every 250 ms here); webhooks are sent as events happen.
    await until('RTP counted both ways', async () => {
      const { e } = await scrape();
      return (
        total(e, 'switchboard_rtp_bytes_total', { direction: 'in', kind: 'video' }) > 0 && total(e, 'switchboard_rtp_bytes_total', { direction: 'out' }) > 0
      );
    });
    await until('a webhook delivery counted', async () => (await value('switchboard_webhook_deliveries_total', { status: 'delivered' })) >= 1, {
      timeoutMs: 15_000,
    });

    const { text, e } = await scrape();
    const checked = promtool(['check', 'metrics'], text);
    if (checked.error) throw new Error(`promtool could not run (${checked.error.message}): install Debian's prometheus package (scripts/setup.sh does)`);
    expect(checked).toEqual({ status: 0, output: '' });

    expect(total(e, 'switchboard_join_duration_seconds_count', { result: 'ok' })).toBeGreaterThanOrEqual(2);
    expect(total(e, 'switchboard_rooms')).toBe(1);
    expect(total(e, 'switchboard_participants')).toBe(2);
    expect(total(e, 'switchboard_socket_connections')).toBe(2);
    expect(total(e, 'switchboard_media_workers')).toBe(1);
    expect(total(e, 'switchboard_media_routers', { worker: '0' })).toBe(1);
    // Per peer a send and a receive transport; per peer two producers, each consumed by the other peer.
    expect(total(e, 'switchboard_media_transports', { worker: '0', type: 'webrtc' })).toBe(4);
    expect(total(e, 'switchboard_media_producers', { worker: '0', kind: 'video' })).toBe(2);
    expect(total(e, 'switchboard_media_producers', { worker: '0', kind: 'audio' })).toBe(2);
    expect(total(e, 'switchboard_media_consumers', { worker: '0' })).toBe(4);
    for (const direction of ['in', 'out']) {
      for (const kind of ['audio', 'video']) {
        expect(total(e, 'switchboard_rtp_bytes_total', { direction, kind })).toBeGreaterThan(0);
        expect(total(e, 'switchboard_rtp_packets_total', { direction, kind })).toBeGreaterThan(0);
      }
    }
    expect(e.types.get('switchboard_rtp_packets_lost_total')).toBe('counter');
    expect(total(e, 'switchboard_media_stats_sample_duration_seconds_count')).toBeGreaterThan(0);
    expect(total(e, 'switchboard_recordings_total', { outcome: 'completed' })).toBe(1);
    expect(total(e, 'switchboard_recording_files_total', { status: 'interrupted' })).toBe(1);
    expect(total(e, 'switchboard_recording_files_total', { status: 'completed' })).toBeGreaterThanOrEqual(2);
    expect(total(e, 'switchboard_recording_ffmpeg_crashes_total')).toBe(1);
    expect(total(e, 'switchboard_webhook_delivery_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(total(e, 'switchboard_uploads_completed_total')).toBe(1);
    expect(total(e, 'switchboard_upload_bytes_total')).toBe(file.length);
    expect(total(e, 'switchboard_http_requests_total', { method: 'GET', route: '/calls/:id', status: '200' })).toBe(1);
    expect(total(e, 'switchboard_http_requests_total', { method: 'POST', route: '/calls/:id/recordings', status: '201' })).toBe(1);
    expect(total(e, 'switchboard_http_requests_total', { route: 'unmatched', status: '404' })).toBe(1);
    expect(total(e, 'switchboard_http_request_duration_seconds_count', { method: 'GET', route: '/calls/:id' })).toBe(1);
    expect(total(e, 'switchboard_signaling_messages_total', { type: 'join' })).toBe(2);
    // Node's process metrics are there, without the gauges named *_total that promtool refuses.
    expect(total(e, 'switchboard_process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(e.types.has('switchboard_nodejs_active_handles')).toBe(true);
    expect(e.types.has('switchboard_nodejs_active_handles_total')).toBe(false);

    // Bounded cardinality: no id of the call, its room or its people in any label.
    const ids = [callId, room, h.participant_id, p.participant_id, upload_url.split('/').pop()!];
    const leaks = e.samples.filter((s) => Object.values(s.labels).some((v) => ids.some((id) => v.includes(id))));
    expect(leaks).toEqual([]);

    // Everyone leaves: the gauges come back down.
    await H.stop();
    await P.stop();
    await until('the media gauges back at zero', async () => {
      const { e: after } = await scrape();
      return ['switchboard_media_transports', 'switchboard_media_producers', 'switchboard_media_consumers'].every((n) => total(after, n) === 0);
    });
  });

  it('counts a worker death, and follows its replacement', async () => {
    // The call ends first, so no room's media moves to the new worker meanwhile.
    expect((await fetch(`${app.url}/calls/${endedCallId}/end`, { method: 'POST', headers: admin })).status).toBe(200);
    await until('no router left', async () => (await value('switchboard_media_routers')) === 0);
    const [worker] = app.t.workers.workers();
    process.kill(worker!.pid, 'SIGKILL');
    await until('the death counted and a new worker watched', async () => {
      const { e } = await scrape();
      return total(e, 'switchboard_media_worker_deaths_total') === 1 && total(e, 'switchboard_media_workers') === 1;
    });
    // The replacement is followed: a router made on it is counted.
    const router = await app.t.workers.createRouter({ mediaCodecs: [{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 }] });
    expect(await value('switchboard_media_routers', { worker: '0' })).toBe(1);
    router.close();
    expect(await value('switchboard_media_routers')).toBe(0);
  });
});
