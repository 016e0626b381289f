import { execFileSync } from 'node:child_process';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import proxyAddr from '@fastify/proxy-addr';
import { loadConfig } from '../config/config';
import { compileTrust, forwardedClientIp, type TrustProxy } from '../http/trustProxy';
import { issueToken, startTestApp, type TestApp } from './helpers/app';
import { problemsOf } from './helpers/config';
import { freePort, mediaPorts, tempDir } from './helpers/env';
import { requireBuiltMain, runServer, waitReady, type Proc } from './helpers/process';
import { Client, listen } from './helpers/signaling';
import { sleep, until } from './helpers/wait';

/**
 * TLS served by the process itself (TLS_CERT/TLS_KEY: HTTPS and WSS, reloaded on
 * SIGHUP and on file changes without dropping connections), the start-up checks
 * of the pair, the production warning for plain HTTP, and TRUST_PROXY's list of
 * trusted proxies (participants' client_ip).
 */
const API_KEY = 'tls-test-api-key-0123456789';

interface Pair {
  cert: string;
  key: string;
  fingerprint256: string;
}

/** A self-signed certificate for localhost and 127.0.0.1, made by openssl. */
function selfSigned(dir: string, name: string): Pair {
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-days',
      '1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'pipe' },
  );
  const cert = readFileSync(certFile, 'utf8');
  return { cert, key: readFileSync(keyFile, 'utf8'), fingerprint256: new X509Certificate(cert).fingerprint256 };
}

/** Replaces a file in one step (as certbot and Kubernetes do), so a reload never reads half a file. */
function replaceFile(file: string, content: string): void {
  writeFileSync(`${file}.tmp`, content);
  renameSync(`${file}.tmp`, file);
}

function httpsRequest(
  url: string,
  ca: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: opts.method ?? 'GET', headers: opts.headers, ca, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end(opts.body);
  });
}

/** The certificate a new TLS handshake gets. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

/** What this file waits for (a reload, a row written behind signaling) comes within seconds. */
const SOON = { timeoutMs: 8000, intervalMs: 100 };

/** Production settings of a server process on its own ports. */
async function productionEnv(dir: string): Promise<{ env: Record<string, string>; port: number; release(): Promise<void> }> {
  const jwtFile = path.join(dir, 'jwt.pem');
  writeFileSync(jwtFile, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const port = await freePort();
  const ports = await mediaPorts();
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  return {
    port,
    release: ports.release,
    env: {
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: path.join(dir, 'data'),
      RECORDINGS_DIR: path.join(dir, 'recordings'),
      JWT_PRIVATE_KEY_FILE: jwtFile,
      API_KEYS: API_KEY,
      MEDIASOUP_WORKERS: '1',
      MEDIASOUP_LISTEN_IP: '127.0.0.1',
      ...ports.env,
    },
  };
}

async function tokenOver(base: string, ca: string, body: { user_id: string; room: string; role?: string }): Promise<string> {
  const res = await httpsRequest(`${base}/auth/token`, ca, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`token: ${res.status} ${res.body}`);
  return (JSON.parse(res.body) as { token: string }).token;
}

const INSECURE = /INSECURE: serving plain HTTP in production/;

describe('TLS served by the server process (TLS_CERT/TLS_KEY files)', () => {
  const dir = tempDir('sb-tls-');
  const pairs = path.join(dir.dir, 'pairs');
  const live = path.join(dir.dir, 'live');
  let pair1: Pair, pair2: Pair, pair3: Pair;
  let proc: Proc;
  let port: number;
  let base: string;
  let release: () => Promise<void> = async () => {};
  const clients: Client[] = [];

  beforeAll(async () => {
    requireBuiltMain();
    mkdirSync(pairs);
    mkdirSync(live);
    pair1 = selfSigned(pairs, 'one');
    pair2 = selfSigned(pairs, 'two');
    pair3 = selfSigned(pairs, 'three');
    writeFileSync(path.join(live, 'tls.crt'), pair1.cert);
    writeFileSync(path.join(live, 'tls.key'), pair1.key);
    const prod = await productionEnv(dir.dir);
    port = prod.port;
    release = prod.release;
    base = `https://127.0.0.1:${port}`;
    // Production, to check that TLS silences the plain-HTTP warning.
    proc = await runServer({ ...prod.env, TLS_CERT: path.join(live, 'tls.crt'), TLS_KEY: path.join(live, 'tls.key') });
    await waitReady(proc, () => httpsRequest(`${base}/ready`, pair1.cert));
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    if (proc && proc.child.exitCode === null) {
      proc.child.kill('SIGTERM');
      const code = await Promise.race([proc.exited, sleep(20_000).then(() => 'timeout')]);
      if (code === 'timeout') proc.child.kill('SIGKILL');
    }
    await release();
    dir.remove();
  });

  it('serves HTTPS to a client trusting the certificate, refuses plain HTTP, and does not warn about plain HTTP', async () => {
    const ready = await httpsRequest(`${base}/ready`, pair1.cert);
    expect(ready.status).toBe(200);
    expect(await servedFingerprint(port)).toBe(pair1.fingerprint256);
    // Not trusted: the handshake fails.
    await expect(httpsRequest(`${base}/ready`, pair2.cert)).rejects.toThrow(/self[- ]signed|certificate/i);
    // Plain HTTP to the TLS port gets no answer.
    await expect(fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
    expect(proc.out()).toContain('serving HTTPS and WSS');
    expect(proc.out()).not.toMatch(INSECURE);
  });

  it('carries a full join over WSS: two clients in one room see each other', async () => {
    const ta = await tokenOver(base, pair1.cert, { user_id: 'alice', room: 'tls-room', role: 'host' });
    const tb = await tokenOver(base, pair1.cert, { user_id: 'bob', room: 'tls-room' });
    const a = new Client(base, { token: ta, io: { ca: pair1.cert } });
    clients.push(a);
    await a.connected();
    await a.join('tls-room');
    const b = new Client(base, { token: tb, io: { ca: pair1.cert } });
    clients.push(b);
    await b.connected();
    await b.join('tls-room');
    const seen = await a.next<{ participant: { user_id: string } }>('peer-joined');
    expect(seen.participant.user_id).toBe('bob');
  });

  it('reloads a new certificate on SIGHUP: new handshakes get it, connected clients stay', async () => {
    const [a, b] = clients as [Client, Client];
    const idA = a.socket.id;
    replaceFile(path.join(live, 'tls.crt'), pair2.cert);
    replaceFile(path.join(live, 'tls.key'), pair2.key);
    proc.child.kill('SIGHUP');
    await until('the new certificate is served', async () => (await servedFingerprint(port)) === pair2.fingerprint256, SOON);
    // The log line may reach us after the new certificate is served (the logger writes
    // asynchronously), and on a loaded machine the directory watcher (500 ms debounce)
    // can get there before the signal is handled: either does the same reload().
    await until('the reload is logged', () => /"reason":"(SIGHUP|file change)"[^\n]*"msg":"TLS certificate reloaded"/.test(proc.out()), SOON);
    expect(proc.child.exitCode).toBeNull();

    // A client trusting only the new certificate connects and joins; the clients
    // connected before the reload are still there and hear about it.
    const tc = await tokenOver(base, pair2.cert, { user_id: 'carol', room: 'tls-room' });
    const c = new Client(base, { token: tc, io: { ca: pair2.cert } });
    clients.push(c);
    await c.connected();
    await c.join('tls-room');
    expect((await a.next<{ participant: { user_id: string } }>('peer-joined')).participant.user_id).toBe('carol');
    expect((await b.next<{ participant: { user_id: string } }>('peer-joined')).participant.user_id).toBe('carol');
    expect(a.socket.connected).toBe(true);
    expect(a.socket.id).toBe(idA);
    expect(a.pending('disconnect')).toEqual([]);
    expect(b.pending('disconnect')).toEqual([]);
  });

  it('keeps the current certificate when the new files do not match, and reloads by itself when the files change', async () => {
    // pair3's certificate with pair2's key: refused, pair2 stays.
    replaceFile(path.join(live, 'tls.crt'), pair3.cert);
    proc.child.kill('SIGHUP');
    await until('the reload error is logged', () => /"level":50[^\n]*TLS reload failed: TLS_KEY does not match the certificate/.test(proc.out()), SOON);
    expect(await servedFingerprint(port)).toBe(pair2.fingerprint256);
    expect(proc.child.exitCode).toBeNull();

    // The matching key arrives: the watcher reloads without a signal.
    const watcherReloads = () => (proc.out().match(/"reason":"file change"[^\n]*"msg":"TLS certificate reloaded"/g) ?? []).length;
    const before = watcherReloads();
    replaceFile(path.join(live, 'tls.key'), pair3.key);
    await until('pair 3 is served', async () => (await servedFingerprint(port)) === pair3.fingerprint256, SOON);
    await until('the watcher logs its reload', () => watcherReloads() > before, SOON);
    // The connections opened before both reloads still work: bob leaves over his, alice hears it over hers.
    const [a, b] = clients as [Client, Client];
    await b.ok('leave', { call_id: b.callId });
    expect(await a.next<{ participant_id: string; reason: string }>('peer-left')).toMatchObject({ participant_id: b.participantId, reason: 'left' });
    expect(a.pending('disconnect')).toEqual([]);
  });
});

describe('TLS configuration', () => {
  const dir = tempDir('sb-tls-cfg-');
  let one: Pair, two: Pair;
  const file = (name: string) => path.join(dir.dir, name);

  beforeAll(() => {
    one = selfSigned(dir.dir, 'one');
    two = selfSigned(dir.dir, 'two');
  });
  afterAll(() => dir.remove());

  it('accepts a matching pair as files or inline PEM', () => {
    const c = loadConfig({ TLS_CERT: file('one.crt'), TLS_KEY: file('one.key') });
    expect(c.tls).toMatchObject({ cert: { variable: 'TLS_CERT', file: file('one.crt') }, key: { variable: 'TLS_KEY', file: file('one.key') } });
    const inline = loadConfig({ TLS_CERT: one.cert, TLS_KEY: one.key.replace(/\n/g, '\\n'), TLS_CA: two.cert });
    expect(inline.tls?.cert.inline).toContain('BEGIN CERTIFICATE');
    expect(inline.tls?.key.inline).toContain('\n');
    expect(loadConfig({}).tls).toBeUndefined();
  });

  it('refuses a key that does not belong to the certificate, naming TLS_KEY', () => {
    const problems = problemsOf({ TLS_CERT: file('one.crt'), TLS_KEY: file('two.key') });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^TLS_KEY: does not match the certificate of TLS_CERT/);
  });

  it.each([
    [{ TLS_CERT: 'cert' }, /^TLS_KEY: is required when TLS_CERT is set/],
    [{ TLS_KEY: 'key' }, /^TLS_CERT: is required when TLS_KEY is set/],
    [{ TLS_CA: 'ca' }, /^TLS_CA: is used only with TLS_CERT and TLS_KEY/],
    [{ TLS_CERT: '/nonexistent/tls.crt', TLS_KEY: 'key' }, /^TLS_CERT: cannot read file/],
    [{ TLS_CERT: 'one.key', TLS_KEY: 'one.key' }, /^TLS_CERT: must be a PEM certificate/],
    [{ TLS_CERT: 'one.crt', TLS_KEY: 'one.crt' }, /^TLS_KEY: is not a valid PEM private key/],
    [{ TLS_CERT: 'one.crt', TLS_KEY: 'one.key', TLS_CA: 'one.key' }, /^TLS_CA: must be a PEM certificate/],
  ])('names the variable for %j', (env, message) => {
    const resolved = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, /^one\./.test(v) ? file(v) : v]));
    const problems = problemsOf(resolved);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });

  it('serves HTTPS in-process when the app is built with a certificate (inline PEM)', async () => {
    const t = await startTestApp('pglite', { TLS_CERT: one.cert, TLS_KEY: one.key });
    try {
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = t.app.server.address() as { port: number };
      expect(t.app.server).toBeInstanceOf(tls.Server);
      expect((await httpsRequest(`https://127.0.0.1:${port}/health`, one.cert)).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('plain HTTP in production', () => {
  it('logs a loud warning when neither TLS nor TRUST_PROXY is configured', async () => {
    const dir = tempDir('sb-tls-prod-');
    const prod = await productionEnv(dir.dir);
    const proc = await runServer(prod.env);
    try {
      await waitReady(proc, () => fetch(`http://127.0.0.1:${prod.port}/ready`));
      const line = proc
        .out()
        .split('\n')
        .find((l) => INSECURE.test(l));
      expect(line).toBeDefined();
      expect(JSON.parse(line!)).toMatchObject({ level: 40 });
      expect(line).toMatch(/tokens, API keys and media keys travel in clear/);
      expect(line).toMatch(/TLS_CERT\/TLS_KEY/);
      expect(line).toMatch(/TRUST_PROXY/);
      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
    } finally {
      proc.child.kill('SIGKILL');
      await prod.release();
      dir.remove();
    }
  });
});

describe('TRUST_PROXY', () => {
  it('reads true, false and a list of addresses/CIDRs, and names TRUST_PROXY for a bad entry', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.10,::1,loopback' }).trustProxy).toEqual(['10.0.0.0/8', '192.168.1.10', '::1', 'loopback']);
    for (const bad of ['10.0.0.0/33', 'proxy.example.com', '10.0.0.1,nope', '::1/129']) {
      const problems = problemsOf({ TRUST_PROXY: bad });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^TRUST_PROXY: must be true, false, or comma-separated addresses\/CIDRs/);
    }
  });

  it('picks the client address as @fastify/proxy-addr (Fastify request.ip) does', () => {
    const cases: Array<[TrustProxy, string, string | undefined, string]> = [
      [['127.0.0.1'], '127.0.0.1', '203.0.113.7', '203.0.113.7'],
      [['127.0.0.1'], '::ffff:127.0.0.1', '203.0.113.7', '203.0.113.7'],
      [['10.0.0.1'], '127.0.0.1', '203.0.113.7', '127.0.0.1'],
      [['loopback', '10.0.0.0/8'], '127.0.0.1', '198.51.100.1, 10.1.2.3', '198.51.100.1'],
      // A client's own X-Forwarded-For entry left of the proxy's is not believed.
      [['loopback'], '127.0.0.1', '198.51.100.1, 203.0.113.9', '203.0.113.9'],
      [['loopback', 'uniquelocal'], '127.0.0.1', '192.168.1.1, 10.0.0.2', '192.168.1.1'],
      [['::1'], '::1', '2001:db8::1', '2001:db8::1'],
      [['fd00::/8'], 'fd00::5', '203.0.113.7', '203.0.113.7'],
      [['127.0.0.1'], '127.0.0.1', undefined, '127.0.0.1'],
      [true, '127.0.0.1', '198.51.100.1, 203.0.113.9', '198.51.100.1'],
      [false, '127.0.0.1', '198.51.100.1', '127.0.0.1'],
    ];
    for (const [setting, remote, xff, expected] of cases) {
      const trust = compileTrust(setting);
      const ours = forwardedClientIp(remote, xff, trust);
      const req = { socket: { remoteAddress: remote }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } } as unknown as IncomingMessage;
      const fastifys = proxyAddr(req, typeof setting === 'boolean' ? () => setting : setting);
      expect({ setting, remote, xff, ip: ours }).toEqual({ setting, remote, xff, ip: expected });
      expect(fastifys).toBe(expected);
    }
  });

  describe.each([
    ['127.0.0.1', '203.0.113.7'],
    ['10.0.0.1', '127.0.0.1'],
    ['true', '203.0.113.7'],
  ])('a participant joining through a proxy with TRUST_PROXY=%s', (trustProxy, expected) => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp('pglite', { TRUST_PROXY: trustProxy });
    });
    afterAll(async () => {
      await t.close();
    });

    it(`gets client_ip ${expected}`, async () => {
      const url = await listen(t);
      const token = await issueToken(t, { user_id: 'proxied', room: 'proxied-room', role: 'host' });
      const c = new Client(url, { token, io: { extraHeaders: { 'x-forwarded-for': '203.0.113.7' } } });
      try {
        await c.connected();
        await c.join('proxied-room');
        const row = await until(
          'the participant row to be written',
          () => t.db.prisma.participant.findUnique({ where: { id: c.participantId }, select: { clientIp: true } }),
          SOON,
        );
        expect(row.clientIp).toBe(expected);
      } finally {
        c.close();
      }
    });
  });
});
