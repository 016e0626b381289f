import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { freePort } from './env';
import { frames, spawnPeer, type MediaPeer } from './mediaPeers';
import { runServer, waitReady, type Proc } from './process';
import { until } from './wait';

/**
 * For the crash-recovery tests: real server processes, a recording under way
 * with two real peers, and what to check of the files afterwards.
 */
export const API_KEY = 'crash-recovery-test-api-key-0123456789';

export interface RecordingJson {
  id: string;
  participant_id: string;
  status: string;
  size_bytes: number | null;
  duration_ms: number | null;
  error: string | null;
  file_path: string;
  ended_at: string | null;
}

export function probe(file: string): { streams: string[]; duration: number } {
  const out = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,codec_type:format=duration', '-of', 'json', file]).toString();
  const j = JSON.parse(out) as { streams: Array<{ codec_name: string; codec_type: string }>; format: { duration?: string } };
  return { streams: j.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort(), duration: Number.parseFloat(j.format.duration ?? 'NaN') };
}

/** Running processes whose command line names a file under `dir` (an ffmpeg writing a recording). */
export function writersUnder(dir: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
        return state !== 'Z' && args.some((a) => a.startsWith(dir + path.sep));
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** A PKCS#8 RSA key in `dir`, for JWT_PRIVATE_KEY_FILE (the restarted server signs as the first did). */
export function keyFileIn(dir: string): string {
  const file = path.join(dir, 'key.pem');
  writeFileSync(file, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
  return file;
}

/** Collects webhook bodies (their signatures are the webhook tests' concern). */
export async function webhookSink(): Promise<{ url: string; events(callId: string): Array<{ type: string; data: any }>; close(): Promise<void> }> {
  const bodies: Array<{ type: string; data: any }> = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(raw) as { type: string; data: any });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    events: (callId) => bodies.filter((b) => b.data.call_id === callId),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface Server {
  proc: Proc;
  url: string;
}

/** The built server on a free port, once ready. */
export async function serve(env: Record<string, string>): Promise<Server> {
  const port = await freePort();
  const proc = await runServer({ ...env, PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(proc, () => fetch(`${url}/ready`), { timeoutMs: 60_000 });
  return { proc, url };
}

/** A REST call with an API key; `json` is null for a file. */
export async function api<T = any>(
  s: { url: string },
  method: string,
  route: string,
  body?: unknown,
  key = API_KEY,
): Promise<{ status: number; json: T; raw: Buffer }> {
  const headers: Record<string, string> = body === undefined ? { 'x-api-key': key } : { 'x-api-key': key, 'content-type': 'application/json' };
  const res = await fetch(`${s.url}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const raw = Buffer.from(await res.arrayBuffer());
  let json: any = null;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    // a file
  }
  return { status: res.status, json: json as T, raw };
}

/** A host and a participant, each publishing audio and video through `signalingUrl`, seeing each other. */
export async function twoPublishers(
  signalingUrl: string,
  room: string,
  token: (userId: string, role: string) => Promise<string>,
): Promise<{ H: MediaPeer; P: MediaPeer; h: string; p: string; callId: string }> {
  const H = spawnPeer({ name: `${room}-host` });
  const P = spawnPeer({ name: `${room}-part` });
  const hs = await H.start({ url: signalingUrl, token: await token(`${room}-h`, 'host'), room, publish: { audio: true, video: true } });
  const ps = await P.start({ url: signalingUrl, token: await token(`${room}-p`, 'participant'), room, publish: { audio: true, video: true } });
  await H.waitFor((s) => frames(s, ps.participant_id) > 10, 20_000);
  await P.waitFor((s) => frames(s, hs.participant_id) > 10, 20_000);
  return { H, P, h: hs.participant_id, p: ps.participant_id, callId: hs.call_id! };
}

/** Starts the call's recording over REST and waits until its two files are being written (past 50 kB). */
export async function recordingUnderWay(s: { url: string }, callId: string, recordingsDir: string, key = API_KEY): Promise<RecordingJson[]> {
  expect((await api(s, 'POST', `/calls/${callId}/recordings`, {}, key)).status).toBe(201);
  const files = await until(
    'two recording files being written',
    async () => {
      const items = (await api<{ items: RecordingJson[] }>(s, 'GET', `/recordings?call_id=${callId}`, undefined, key)).json.items;
      return items.length === 2 && items.every((r) => r.status === 'recording') && items;
    },
    { timeoutMs: 20_000, intervalMs: 200 },
  );
  await until('both files past 50 kB', () => files.every((f) => sizeOf(recordingsDir, f) > 50_000), { timeoutMs: 20_000, intervalMs: 200 });
  return files;
}

export const sizeOf = (dir: string, f: RecordingJson): number => (existsSync(path.join(dir, f.file_path)) ? statSync(path.join(dir, f.file_path)).size : 0);

/** A recovered file: interrupted, its row matching a valid WebM (VP8 + Opus, with a duration), served whole. */
export async function expectRecovered(s: { url: string }, r: RecordingJson, recordingsDir: string, error: string | RegExp, key = API_KEY): Promise<void> {
  expect(r).toMatchObject({ status: 'interrupted', error: typeof error === 'string' ? expect.stringContaining(error) : expect.stringMatching(error) });
  expect(r.size_bytes).toBeGreaterThan(50_000);
  expect(r.duration_ms).toBeGreaterThan(1000);
  const abs = path.join(recordingsDir, r.file_path);
  expect(statSync(abs).size).toBe(r.size_bytes);
  const info = probe(abs);
  expect(info.streams).toEqual(['audio:opus', 'video:vp8']);
  expect(Math.abs(info.duration * 1000 - r.duration_ms!)).toBeLessThan(50);
  const dl = await api(s, 'GET', `/recordings/${r.id}/download`, undefined, key);
  expect(dl.status).toBe(200);
  expect(dl.raw.equals(readFileSync(abs))).toBe(true);
}

/** The JSON log line of `proc` containing `msg`. */
export function logLine<T = Record<string, unknown>>(out: string, msg: string): T {
  const line = out.split('\n').find((l) => l.includes(msg));
  if (!line) throw new Error(`no log line "${msg}" in:\n${out.slice(-4000)}`);
  return JSON.parse(line) as T;
}
