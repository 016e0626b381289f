import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TEST_API_KEY } from './helpers/app';
import { tempDir } from './helpers/env';
import { useRecordingsApp } from './helpers/recordings';
import { ROOT, run } from './helpers/sdkPackage';
import { listen } from './helpers/signaling';

/**
 * The `switchboard` CLI (package.json bin → dist/client/cli/index.js) as a
 * separate process against a live server: every command, its --help, and bad
 * input: a wrong API key (exit 1 with the server's code), an unknown room or
 * call (exit 1, CALL_NOT_FOUND), a wrong command line (exit 2).
 */
jest.setTimeout(180_000);

const BIN = path.join(ROOT, (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: { switchboard: string } }).bin.switchboard);
const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

describe('the switchboard CLI', () => {
  const rec = useRecordingsApp('pglite');
  let url: string;
  const out = tempDir('sb-cli-');
  const cli = (args: string[], env: Record<string, string> = {}, timeoutMs = 30_000) =>
    run(process.execPath, [BIN, ...args], {
      cwd: out.dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', SWITCHBOARD_URL: url, SWITCHBOARD_API_KEY: TEST_API_KEY, ...env },
      timeoutMs,
    });

  beforeAll(async () => {
    url = await listen(rec.t);
  });
  afterAll(() => out.remove());

  it('prints help for itself and each command; a wrong command line exits 2', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const c of ['token create', 'call list|get|end', 'recording list|download', 'load-test']) expect(help.stdout).toContain(c);
    expect(help.stdout).toContain('SWITCHBOARD_API_KEY');
    for (const c of ['token', 'call', 'recording', 'load-test']) {
      const h = await cli([c, '--help']);
      expect(h.code).toBe(0);
      expect(h.stdout).toMatch(/^Usage:/);
    }
    expect((await cli([])).code).toBe(2);
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    const badFlag = await cli(['call', 'list', '--colour']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain("Unknown option '--colour'");
  });

  it('token create: prints a token for the room, role and ttl; refuses bad input', async () => {
    const r = await cli(['token', 'create', '--room', 'cli-room', '--role', 'host', '--ttl', '600', '--user', 'ada', '--name', 'Ada']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const token = r.stdout.trim();
    expect(claims(token)).toMatchObject({ sub: 'ada', name: 'Ada', room: 'cli-room', role: 'host' });
    const c = claims(token) as { iat: number; exp: number };
    expect(c.exp - c.iat).toBe(600);
    // The token works on the server: it reads its room's calls.
    const calls = await fetch(`${url}/calls`, { headers: { authorization: `Bearer ${token}` } });
    expect(calls.status).toBe(200);
    const json = await cli(['token', 'create', '--room', 'cli-room', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ token: expect.any(String), expires_in: 3600 });

    const noRoom = await cli(['token', 'create']);
    expect([noRoom.code, noRoom.stderr]).toEqual([2, expect.stringContaining('--room is required')]);
    const badRole = await cli(['token', 'create', '--room', 'r', '--role', 'king']);
    expect([badRole.code, badRole.stderr]).toEqual([2, expect.stringContaining('--role must be one of host, moderator, participant')]);
    const badTtl = await cli(['token', 'create', '--room', 'r', '--ttl', 'soon']);
    expect(badTtl.code).toBe(2);
    // Below the server's minimum: the server says why (exit 1, its code).
    const shortTtl = await cli(['token', 'create', '--room', 'r', '--ttl', '5']);
    expect([shortTtl.code, shortTtl.stderr]).toEqual([1, expect.stringContaining('VALIDATION_FAILED')]);
  });

  it('refuses a wrong API key with exit 1 and the server code; no key or server is exit 2 or 1', async () => {
    for (const args of [
      ['token', 'create', '--room', 'r'],
      ['call', 'list'],
      ['recording', 'list'],
    ]) {
      const r = await cli(args, { SWITCHBOARD_API_KEY: 'wrong-key' });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/API_KEY_INVALID: .*not valid/);
      expect(r.stdout).toBe('');
    }
    // A flag beats the environment.
    expect((await cli(['call', 'list', '--api-key', 'wrong-key'])).code).toBe(1);
    const none = await cli(['call', 'list'], { SWITCHBOARD_API_KEY: '' });
    expect([none.code, none.stderr]).toEqual([2, expect.stringContaining('no API key')]);
    const down = await cli(['call', 'list', '--url', 'http://127.0.0.1:9']);
    expect([down.code, down.stderr]).toEqual([1, expect.stringContaining('CONNECTION_FAILED: cannot reach http://127.0.0.1:9')]);
  });

  it('call list, get and end, by id or by room; an unknown room or call is CALL_NOT_FOUND', async () => {
    const created = await rec.post('/calls', { room_id: 'cli-call', metadata: { topic: 'cli' } });
    const id = created.json().id as string;
    const list = await cli(['call', 'list', '--room', 'cli-call']);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^ID\s+ROOM\s+STATUS/);
    expect(list.stdout).toContain(id);
    const all = JSON.parse((await cli(['call', 'list', '--json', '--limit', '100'])).stdout) as { items: Array<{ id: string }> };
    expect(all.items.map((c) => c.id)).toEqual(expect.arrayContaining([id, rec.callA, rec.callB]));

    const get = await cli(['call', 'get', '--room', 'rec-a']);
    expect(get.code).toBe(0);
    expect(get.stdout).toContain(`call ${rec.callA}  room rec-a`);
    expect(get.stdout).toMatch(/alice\s+host/);
    expect(JSON.parse((await cli(['call', 'get', id, '--json'])).stdout)).toMatchObject({ id, room_id: 'cli-call', metadata: { topic: 'cli' } });

    const end = await cli(['call', 'end', '--room', 'cli-call']);
    expect([end.code, end.stdout.trim()]).toEqual([0, `ended ${id}`]);
    expect(JSON.parse((await cli(['call', 'get', id, '--json'])).stdout).status).toBe('ended');

    const noRoom = await cli(['call', 'get', '--room', 'no-such-room']);
    expect([noRoom.code, noRoom.stderr.trim()]).toEqual([1, "switchboard call: CALL_NOT_FOUND: room 'no-such-room' has no call"]);
    expect((await cli(['call', 'end', '--room', 'no-such-room'])).code).toBe(1);
    expect((await cli(['call', 'list', '--room', 'no-such-room'])).stdout.trim()).toBe('no calls');
    const noCall = await cli(['call', 'get', '00000000-0000-4000-8000-000000000000']);
    expect([noCall.code, noCall.stderr]).toEqual([1, expect.stringContaining('CALL_NOT_FOUND')]);
    const notId = await cli(['call', 'get', 'standup']);
    expect([notId.code, notId.stderr]).toEqual([2, expect.stringContaining('is not a call id')]);
    expect((await cli(['call', 'get'])).code).toBe(2);
    expect((await cli(['call', 'list', '--status', 'sleeping'])).code).toBe(1); // the server validates the filter
  });

  it('recording list and download', async () => {
    const a = await rec.makeRecording({ callId: rec.callA });
    const b = await rec.makeRecording({ callId: rec.callA, mimeType: 'audio/webm' });
    const list = await cli(['recording', 'list', '--call', rec.callA]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(a.id);
    expect(list.stdout).toContain(b.id);
    expect(list.stdout).toMatch(new RegExp(`${a.id}\\s+${rec.callA}\\s+completed\\s+video/webm\\s+1000\\s+1\\.2s`));
    expect((await cli(['recording', 'list', '--room', 'rec-b'])).stdout.trim()).toBe('no recordings');

    const dl = await cli(['recording', 'download', a.id]);
    expect(dl.code).toBe(0);
    expect(readFileSync(path.join(out.dir, `${a.id}.webm`)).equals(a.content)).toBe(true);
    const named = await cli(['recording', 'download', b.id, '-o', 'bob.webm']);
    expect([named.code, named.stderr]).toEqual([0, expect.stringContaining('saved bob.webm (1000 bytes, audio/webm)')]);
    expect(readFileSync(path.join(out.dir, 'bob.webm')).equals(b.content)).toBe(true);

    const missing = await cli(['recording', 'download', '00000000-0000-4000-8000-000000000000']);
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringContaining('RECORDING_NOT_FOUND')]);
    expect((await cli(['recording', 'download'])).code).toBe(2);
  });

  it('load-test: simulated participants join with real WebRTC and receive media; bad input exits 2', async () => {
    const r = await cli(['load-test', '--participants', '3', '--duration', '3', '--video-publishers', '1', '--audio-publishers', '2', '--json'], {}, 90_000);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining('load-test: 3 participants') });
    const report = JSON.parse(r.stdout) as {
      joined: number;
      join_latency_ms: { p50: number; p95: number; max: number };
      per_participant: Array<{ participant: number; video_frames: number; bytes_received: number }>;
    };
    expect(report.joined).toBe(3);
    expect(report.join_latency_ms.p50).toBeGreaterThan(0);
    expect(report.join_latency_ms.max).toBeGreaterThanOrEqual(report.join_latency_ms.p95);
    // Participants 1 and 2 see participant 0's video; participant 0 hears participant 1.
    for (const p of report.per_participant.slice(1)) expect(p.video_frames).toBeGreaterThan(5);
    for (const p of report.per_participant) expect(p.bytes_received).toBeGreaterThan(1000);

    const text = await cli(['load-test', '--participants', '2', '--duration', '1'], {}, 60_000);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^joined 2\/2 {2}join latency p50 \d+ ms {2}p95 \d+ ms {2}max \d+ ms/);

    expect((await cli(['load-test', '--participants', '0'])).code).toBe(2);
    expect((await cli(['load-test', '--duration', '-1'])).code).toBe(2);
    expect((await cli(['load-test', '--video-publishers', '0', '--audio-publishers', '0'])).code).toBe(2);
    const wrong = await cli(['load-test', '--participants', '1', '--duration', '1'], { SWITCHBOARD_API_KEY: 'wrong-key' });
    expect([wrong.code, wrong.stderr]).toEqual([1, expect.stringContaining('API_KEY_INVALID')]);
  });
});
