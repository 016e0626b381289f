import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Server as SocketServer } from 'socket.io';
import { admin, issueToken, startTestApp, type TestApp } from './helpers/app';
import { installPackedSdk, ROOT, run } from './helpers/sdkPackage';
import { listen } from './helpers/signaling';

/**
 * The SDK as a user installs it: `npm pack ./client`, installed with
 * @roamhq/wrtc into a folder outside the repository, then
 * - its ESM and CommonJS entries load, and its declarations type-check a user's
 *   file there (the protocol's types are inlined: nothing points into the repo);
 * - Node without a WebRTC implementation fails with DEVICE_UNSUPPORTED, not a raw error; an
 *   unreachable server is CONNECTION_FAILED, an acknowledgement that never comes TIMEOUT;
 * - client/examples/node/index.mjs runs as written, twice (a host and a guest) against
 *   the real server: join, publish synthetic tracks, receive the other's frames,
 *   record as host while media flows (non-empty files), leave.
 */
jest.setTimeout(400_000);

const node = (args: string[], cwd: string, env: Record<string, string> = {}, timeoutMs = 60_000) =>
  run(process.execPath, args, { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeoutMs });

describe('the packed SDK, installed outside the repository', () => {
  let t: TestApp;
  let url: string;
  let pkg: { dir: string; remove(): void };

  beforeAll(async () => {
    [t, pkg] = await Promise.all([startTestApp('pglite'), installPackedSdk('node')]);
    url = await listen(t);
  });
  afterAll(async () => {
    await t?.close();
    pkg?.remove();
  });

  it('is outside the repository and loads as ESM and as CommonJS', async () => {
    expect(path.relative(ROOT, pkg.dir).startsWith('..')).toBe(true);
    const esm = await node(['--input-type=module', '-e', "const m = await import('@switchboard/client'); console.log(Object.keys(m).sort().join())"], pkg.dir);
    expect(esm.stderr).toBe('');
    expect(esm.stdout.trim()).toBe('SDK_ERROR_CODES,SwitchboardClient,SwitchboardError,installWebRtc,tokenExpiry');
    const cjs = await node(
      ['-e', "const m = require('@switchboard/client'); console.log(typeof m.SwitchboardClient, m.SDK_ERROR_CODES.includes('DEVICE_UNSUPPORTED'))"],
      pkg.dir,
    );
    expect(cjs.stderr).toBe('');
    expect(cjs.stdout.trim()).toBe('function true');
  });

  it("type-checks a user's code against its declarations", async () => {
    writeFileSync(
      path.join(pkg.dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, lib: ['es2023', 'dom'], types: [] },
        files: ['check.mts', 'check.cts'],
      }),
    );
    const body = `
const code: SwitchboardErrorCode = 'ROOM_FULL';
const sdkCode: SwitchboardErrorCode = 'DEVICE_UNSUPPORTED';
// @ts-expect-error not a code of the registry or the SDK
const wrong: SwitchboardErrorCode = 'NO_SUCH_CODE';
async function use(token: string): Promise<RoomState> {
  const call = await SwitchboardClient.connect({ url: 'http://localhost:8080', token, handlerName: 'Chrome111' });
  call.on('track', ({ participantId, track }: RemoteTrack) => console.log(participantId, track.kind));
  call.on('error', (e) => console.log(e instanceof SwitchboardError && e.code));
  const state = await call.join('standup', { displayName: 'Ada' });
  state.participants.map((p: ParticipantState) => p.role satisfies Role);
  return state;
}
console.log(code, sdkCode, wrong, use);
`;
    writeFileSync(
      path.join(pkg.dir, 'check.mts'),
      `import { SwitchboardClient, SwitchboardError, type ParticipantState, type RemoteTrack, type Role, type RoomState, type SwitchboardErrorCode } from '@switchboard/client';\n${body}`,
    );
    writeFileSync(
      path.join(pkg.dir, 'check.cts'),
      `import { SwitchboardClient, SwitchboardError, type ParticipantState, type RemoteTrack, type Role, type RoomState, type SwitchboardErrorCode } from '@switchboard/client';\n${body}`,
    );
    const tsc = await node([path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', pkg.dir], pkg.dir);
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.code).toBe(0);
  });

  it('turns an acknowledgement that never comes into TIMEOUT', async () => {
    // A Socket.IO server that accepts the connection and never answers.
    const http = createServer();
    const silent = new SocketServer(http, { transports: ['websocket'] });
    const port = await new Promise<number>((resolve) => http.listen(0, '127.0.0.1', () => resolve((http.address() as AddressInfo).port)));
    const script = `
import { SwitchboardClient, SwitchboardError } from '@switchboard/client';
const call = await SwitchboardClient.connect({ url: process.env.URL, token: 'x.e30.x', timeoutMs: 500 });
try {
  await call.join('anywhere');
} catch (e) {
  console.log(JSON.stringify({ sdk: e instanceof SwitchboardError, code: e.code, message: e.message }));
}
call.close();
process.exit(0);
`;
    try {
      const r = await node(['--input-type=module', '-e', script], pkg.dir, { URL: `http://127.0.0.1:${port}` });
      expect(JSON.parse(r.stdout.trim())).toEqual({ sdk: true, code: 'TIMEOUT', message: 'no answer to join within 500 ms' });
    } finally {
      await silent.close();
    }
  });

  it('fails with DEVICE_UNSUPPORTED in Node without a WebRTC implementation', async () => {
    const token = await issueToken(t, { user_id: 'bare', room: 'pkg-bare', role: 'host' });
    const script = `
import { SwitchboardClient, SwitchboardError } from '@switchboard/client';
const call = await SwitchboardClient.connect({ url: process.env.URL, token: process.env.TOKEN });
try {
  await call.join('pkg-bare');
  console.log('joined?');
} catch (e) {
  console.log(JSON.stringify({ sdk: e instanceof SwitchboardError, code: e.code, message: e.message }));
}
call.close();
try {
  await SwitchboardClient.connect({ url: 'http://127.0.0.1:9', token: process.env.TOKEN, timeoutMs: 3000 });
} catch (e) {
  console.log(JSON.stringify({ sdk: e instanceof SwitchboardError, code: e.code }));
}
process.exit(0);
`;
    const r = await node(['--input-type=module', '-e', script], pkg.dir, { URL: url, TOKEN: token });
    const [unsupported, unreachable] = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(unsupported).toMatchObject({ sdk: true, code: 'DEVICE_UNSUPPORTED', message: expect.stringContaining('@roamhq/wrtc') });
    expect(unreachable).toEqual({ sdk: true, code: 'CONNECTION_FAILED' });
  });

  it('runs the Node example as a host and a guest: media both ways, a recording, leave', async () => {
    const room = 'pkg-example';
    const host = await issueToken(t, { user_id: 'ada', room, role: 'host', display_name: 'Ada' });
    const guest = await issueToken(t, { user_id: 'bob', room, display_name: 'Bob' });
    const example = (token: string, name: string, stay: string) =>
      node(['index.mjs'], pkg.dir, { SWITCHBOARD_URL: url, SWITCHBOARD_TOKEN: token, SWITCHBOARD_NAME: name, STAY_SECONDS: stay, RECORD_SECONDS: '5' }, 90_000);
    const [h, g] = await Promise.all([example(host, 'Ada', '12'), example(guest, 'Bob', '14')]);
    const summary = (r: { stdout: string; stderr: string }, who: string) => {
      const last = r.stdout.trim().split('\n').pop() ?? '';
      try {
        return JSON.parse(last);
      } catch {
        throw new Error(`${who}'s example printed no summary:\n${r.stdout}\n${r.stderr}`);
      }
    };
    const hs = summary(h, 'host');
    const gs = summary(g, 'guest');
    expect(h.stdout).toContain('no camera or microphone here: publishing synthetic tracks'); // MEDIA_DEVICE_UNAVAILABLE handled
    expect(hs).toMatchObject({ ok: true, role: 'host', room });
    expect(gs).toMatchObject({ ok: true, role: 'participant', room, recording: null });
    expect(hs.frames_received).toBeGreaterThan(10);
    expect(gs.frames_received).toBeGreaterThan(10);
    expect(h.code).toBe(0);
    expect(g.code).toBe(0);
    // The host recorded both participants while their media flowed: real, non-empty files.
    expect(hs.recording.files.length).toBeGreaterThanOrEqual(2);
    const res = await t.app.inject({ method: 'GET', url: `/recordings?call_id=${hs.call_id}`, headers: admin });
    const files = (res.json() as { items: Array<{ status: string; size_bytes: number | null }> }).items;
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const f of files) {
      expect(f.status).toBe('completed');
      expect(f.size_bytes).toBeGreaterThan(1000);
    }
    // Both left: the call has nobody in it any more.
    const call = await t.app.inject({ method: 'GET', url: `/calls/${hs.call_id}`, headers: admin });
    expect((call.json() as { participants: Array<{ left_at: string | null }> }).participants.every((p) => p.left_at !== null)).toBe(true);
  });
});
