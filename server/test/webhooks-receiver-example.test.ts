import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { issueToken } from './helpers/app';
import { freePort, mediaPorts, tempDir } from './helpers/env';
import { requireBuiltMain, runServer, waitReady } from './helpers/process';
import { useSignalingApp } from './helpers/signaling';
import { until } from './helpers/wait';
import { PATIENT, Receiver, SECRET } from './helpers/webhookReceiver';

/**
 * The README's receiver example, run as written (extracted from README.md) in its
 * own process with the `standardwebhooks` library: it accepts every delivery of a
 * real call, deduplicates a retry, and rejects forged, altered and replayed
 * requests. And main.ts's development secret: generated, logged, kept; refused
 * missing in production.
 */
const ROOT = path.resolve(__dirname, '..', '..');

function readmeReceiver(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = /<!-- receiver-example -->\n(?:<!-- readme-test: [^\n]*-->\n)?```js\n([\s\S]*?)```\n<!-- \/receiver-example -->/.exec(readme);
  if (!m?.[1]) throw new Error('README.md has no receiver example between its markers');
  return m[1];
}

describe('webhooks: the README receiver example', () => {
  const dir = tempDir('sb-receiver-');
  let child: ChildProcess;
  let out = '';
  let url = '';
  const lines = () =>
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; type: string; data: { call_id: string } });
  const check = new Receiver(SECRET); // svix and standardwebhooks, side by side

  beforeAll(async () => {
    const file = path.join(dir.dir, 'receiver.js');
    writeFileSync(file, readmeReceiver());
    const port = await freePort();
    url = `http://127.0.0.1:${port}/hook`;
    child = spawn(process.execPath, [file], {
      env: { PATH: process.env.PATH ?? '', WEBHOOK_SECRET: SECRET, PORT: String(port), NODE_PATH: path.join(ROOT, 'node_modules') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout!.on('data', (d) => (out += d));
    await until('the example receiver listening', async () => (await fetch(url, { method: 'POST', body: '' }).catch(() => null))?.status === 400);
    await check.start();
  });
  const app = useSignalingApp('postgres', () => ({ WEBHOOK_URLS: `${url},${check.url}`, WEBHOOK_SECRET: SECRET }));
  afterAll(async () => {
    child?.kill();
    await check.stop();
    dir.remove();
  });

  it('accepts every delivery of a real call (0 rejections), once each', async () => {
    const room = 'readme-call';
    const H = app.client({ token: await issueToken(app.t, { user_id: 'hana', room, role: 'host', display_name: 'Hana' }) });
    const P = app.client({ token: await issueToken(app.t, { user_id: 'pia', room }) });
    await H.connected();
    await H.join(room);
    await P.connected();
    await P.join(room, 'Pia 🎉');
    await H.next('peer-joined');
    await P.ok('leave', { call_id: P.callId });
    await H.next('peer-left');
    await H.ok('end-call', { call_id: H.callId });
    const callId = H.callId;
    const types = ['call.started', 'participant.joined', 'participant.joined', 'participant.left', 'call.ended', 'participant.left'];
    await until('the example printed the call', () => lines().filter((l) => l.data.call_id === callId).length === 6, PATIENT);
    expect(lines().map((l) => l.type)).toEqual(types);
    const checked = await check.waitForEvents(callId, 6);
    expect(check.requests.every((r) => r.valid && Object.keys(r.rejectedBy).length === 0)).toBe(true);
    expect(lines().map((l) => l.id)).toEqual(checked.map((e) => e.webhookId));
    // Delivered at the first attempt: the example answered 204 to each.
    const rows = await app.t.db.prisma.webhookDelivery.findMany({ where: { callId, endpoint: url } });
    expect(rows.map((r) => [r.status, r.attempts, r.lastStatus])).toEqual(Array(6).fill(['delivered', 1, 204]));
  });

  it('rejects forged, altered and replayed requests; a retry is answered but handled once', async () => {
    const body = JSON.stringify({ type: 'call.ended', timestamp: new Date().toISOString(), data: { call_id: randomUUID(), room: 'x', at: '' } });
    const msgId = `msg_${randomUUID()}`;
    const signed = (secret: string, payload: string, at = new Date()) => ({
      'content-type': 'application/json',
      'webhook-id': msgId,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': new Webhook(secret).sign(msgId, at, payload),
    });
    const send = async (headers: Record<string, string>, payload = body) => {
      const res = await fetch(url, { method: 'POST', headers, body: payload });
      return { status: res.status, text: await res.text() };
    };
    const before = lines().length;
    const forger = `whsec_${Buffer.from('not-the-secret-but-32-bytes-long').toString('base64')}`;
    expect(await send(signed(forger, body))).toEqual({ status: 400, text: 'rejected: No matching signature found' });
    expect(await send(signed(SECRET, body), body.replace('call.ended', 'call.started'))).toEqual({
      status: 400,
      text: 'rejected: No matching signature found',
    });
    const sixMinutesAgo = new Date(Date.now() - 6 * 60_000);
    expect(await send(signed(SECRET, body, sixMinutesAgo))).toEqual({ status: 400, text: 'rejected: Message timestamp too old' });
    expect(await send({ ...signed(SECRET, body, sixMinutesAgo), 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) })).toMatchObject({ status: 400 });
    expect(await send({ 'content-type': 'application/json' })).toEqual({ status: 400, text: 'rejected: Missing required headers' });
    expect(lines().length).toBe(before);
    // The genuine one, twice (a retry): 204 both times, handled once.
    expect((await send(signed(SECRET, body))).status).toBe(204);
    expect((await send(signed(SECRET, body))).status).toBe(204);
    await until('the genuine one printed', () => lines().length === before + 1);
    expect(lines().at(-1)).toMatchObject({ id: msgId, type: 'call.ended' });
  });
});

describe('webhooks: the development secret (main.ts)', () => {
  it('is generated into DATA_DIR/keys/webhook-secret and logged; production refuses to start without one', async () => {
    requireBuiltMain();
    const data = tempDir();
    const ports = await mediaPorts();
    const port = await freePort();
    const env = {
      DATA_DIR: data.dir,
      PORT: String(port),
      HOST: '127.0.0.1',
      MEDIASOUP_WORKERS: '1',
      MEDIASOUP_LISTEN_IP: '127.0.0.1',
      ...ports.env,
      LOG_FORMAT: 'json',
      WEBHOOK_URLS: 'http://127.0.0.1:9/hook',
    };
    try {
      const dev = await runServer({ ...env, NODE_ENV: 'development' });
      try {
        await waitReady(dev, () => fetch(`http://127.0.0.1:${port}/ready`), { timeoutMs: 60_000 });
        const secret = readFileSync(path.join(data.dir, 'keys', 'webhook-secret'), 'utf8').trim();
        expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
        const line = dev
          .out()
          .split('\n')
          .find((l) => l.includes('WEBHOOK_SECRET is not set'));
        expect(JSON.parse(line!)).toMatchObject({ secret, generated: true, file: path.join(data.dir, 'keys', 'webhook-secret') });
      } finally {
        dev.child.kill('SIGINT');
        await dev.exited;
      }
      const prod = await runServer({
        ...env,
        NODE_ENV: 'production',
        API_KEYS: 'k'.repeat(16),
        JWT_PRIVATE_KEY_FILE: path.join(data.dir, 'keys', 'jwt-private.pem'),
      });
      expect(await prod.exited).toBe(1);
      expect(prod.out()).toMatch(/WEBHOOK_SECRET: is required in production when WEBHOOK_URLS is set/);
    } finally {
      await ports.release();
      data.remove();
    }
  });
});
