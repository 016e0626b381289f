import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config/config';
import { loadSigningKeys } from '../auth/keys';
import { problemsOf, variablesRead } from './helpers/config';
import { README, readmeEnvTable } from './helpers/readme';
import { tempDir } from './helpers/env';

describe('configuration', () => {
  it('starts on embedded defaults with no variables', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.host).toBe('0.0.0.0');
    expect(c.databaseUrl).toBeUndefined();
    expect(c.env).toBe('development');
    expect(c.jwt.defaultTtlSeconds).toBe(3600);
    expect(c.jwt.maxTtlSeconds).toBe(86400);
    expect(c.mediasoup.numWorkers).toBeGreaterThanOrEqual(1);
    expect(c.recordingsDir).toMatch(/recordings$/);
    expect(c.corsOrigins).toEqual([]);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://root@localhost/db'],
    ['LOG_LEVEL', 'loud'],
    ['NODE_ENV', 'staging'],
    ['MEDIASOUP_WORKERS', '0'],
    ['MEDIASOUP_LOG_LEVEL', 'verbose'],
    ['BODY_LIMIT_BYTES', '12x'],
    ['TRUST_PROXY', 'maybe'],
    ['CORS_ORIGINS', 'not an origin'],
    ['API_KEYS', 'short'],
    ['TOKEN_MAX_TTL_SECONDS', '5'],
    ['JWT_PRIVATE_KEY', 'not a pem'],
    ['JWT_PRIVATE_KEY_FILE', '/nonexistent/key.pem'],
    ['SHUTDOWN_TIMEOUT_MS', '-1'],
    ['RATE_LIMIT_MAX', 'many'],
    ['ICE_SERVERS', 'stun:example.org'],
    ['ICE_SERVERS', '[{"urls":"http://example.org"}]'],
    ['ICE_SERVERS', '[{"urls":["turn:t.example.org"],"username":5}]'],
    ['AUTO_CREATE_ROOMS', 'everyone'],
    ['MAX_PARTICIPANTS_PER_ROOM', '1'],
    ['RECONNECT_GRACE_SECONDS', 'soon'],
    ['MAX_SDP_BYTES', '200000'],
    ['METRICS_MEDIA_SAMPLE_MS', '50'],
    ['METRICS_MEDIA_SAMPLE_MS', 'often'],
    ['METRICS_MEDIA_SAMPLE_MAX', '0'],
  ])('names %s when it is %j', (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name}: `));
  });

  it('reads signaling settings', () => {
    const c = loadConfig({
      ICE_SERVERS: '[{"urls":"stun:stun.example.org:3478"},{"urls":["turn:t.example.org?transport=tcp"],"username":"u","credential":"p"}]',
      AUTO_CREATE_ROOMS: 'host',
      RECONNECT_GRACE_SECONDS: '5',
    });
    expect(c.signaling.iceServers).toHaveLength(2);
    expect(c.signaling.autoCreateRooms).toBe('host');
    expect(c.signaling.reconnectGraceMs).toBe(5000);
    expect(loadConfig({}).signaling).toMatchObject({ maxConnections: 10000, maxParticipantsPerRoom: 100, reconnectGraceMs: 15000, iceServers: [] });
  });

  it('samples media stats every 10 s by default, or never with 0', () => {
    expect(loadConfig({}).metrics).toEqual({ mediaSampleMs: 10_000, mediaSampleMax: 1000 });
    expect(loadConfig({ METRICS_MEDIA_SAMPLE_MS: '0', METRICS_MEDIA_SAMPLE_MAX: '50' }).metrics).toEqual({ mediaSampleMs: 0, mediaSampleMax: 50 });
  });

  it('reports every bad variable at once', () => {
    const problems = problemsOf({ PORT: 'x', LOG_LEVEL: 'y', MEDIASOUP_WORKERS: 'z' });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['LOG_LEVEL', 'MEDIASOUP_WORKERS', 'PORT']);
  });

  it('rejects a default TTL above the maximum, and an inverted port range', () => {
    expect(problemsOf({ TOKEN_TTL_SECONDS: '7200', TOKEN_MAX_TTL_SECONDS: '3600' })[0]).toMatch(/^TOKEN_TTL_SECONDS: /);
    expect(problemsOf({ MEDIASOUP_RTC_MIN_PORT: '50000', MEDIASOUP_RTC_MAX_PORT: '40000' }).join()).toMatch(/MEDIASOUP_RTC_MIN_PORT: /);
  });

  it('requires keys and API keys in production', () => {
    const problems = problemsOf({ NODE_ENV: 'production' });
    expect(problems.some((p) => p.startsWith('JWT_PRIVATE_KEY: '))).toBe(true);
    expect(problems.some((p) => p.startsWith('API_KEYS: '))).toBe(true);
  });

  it('does not echo a database password in its message', () => {
    const problems = problemsOf({ DATABASE_URL: 'mysql://user:s3cret@db/x' });
    expect(problems[0]).not.toContain('s3cret');
  });

  it('reads key material inline (with \\n escapes) or from a file, and checks it', () => {
    const tmp = tempDir();
    try {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      const file = path.join(tmp.dir, 'k.pem');
      writeFileSync(file, pem);
      const fromFile = loadConfig({ JWT_PRIVATE_KEY_FILE: file });
      expect(fromFile.jwt.privateKeyPem).toBe(pem);
      const inline = loadConfig({ JWT_PRIVATE_KEY: pem.replace(/\n/g, '\\n') });
      expect(inline.jwt.privateKeyPem?.trim()).toBe(pem.trim());
      expect(problemsOf({ JWT_PRIVATE_KEY: pem, JWT_PRIVATE_KEY_FILE: file })[0]).toMatch(/^JWT_PRIVATE_KEY: /);

      // A public key that does not belong to the private key is refused, naming JWT_PUBLIC_KEY.
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
      expect(() => loadSigningKeys({ privateKeyPem: pem, publicKeyPem: other, dataDir: tmp.dir })).toThrow(/JWT_PUBLIC_KEY/);
      const ok = loadSigningKeys({ privateKeyPem: pem, publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(), dataDir: tmp.dir });
      expect(ok.jwk.kid).toBe(ok.kid);
      // Not RSA: refused for RS256.
      const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      expect(() => loadSigningKeys({ privateKeyPem: ec, dataDir: tmp.dir })).toThrow(/JWT_PRIVATE_KEY: must be an RSA key/);
    } finally {
      tmp.remove();
    }
  });

  it('reads JWT_PREVIOUS_PUBLIC_KEYS as concatenated PEM blocks (inline or a file) and checks each key', () => {
    const tmp = tempDir();
    try {
      const spki = (k: { publicKey: KeyObject }) => k.publicKey.export({ format: 'pem', type: 'spki' }).toString();
      const current = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const [a, b] = [generateKeyPairSync('rsa', { modulusLength: 2048 }), generateKeyPairSync('rsa', { modulusLength: 2048 })];
      const bundle = `${spki(a)}\n${spki(b)}`;
      const file = path.join(tmp.dir, 'previous.pem');
      writeFileSync(file, bundle);
      expect(loadConfig({}).jwt.previousPublicKeyPems).toEqual([]);
      expect(loadConfig({ JWT_PREVIOUS_PUBLIC_KEYS_FILE: file }).jwt.previousPublicKeyPems).toHaveLength(2);
      const pems = loadConfig({ JWT_PREVIOUS_PUBLIC_KEYS: bundle.replace(/\n/g, '\\n') }).jwt.previousPublicKeyPems;
      expect(pems).toHaveLength(2);
      expect(problemsOf({ JWT_PREVIOUS_PUBLIC_KEYS: `${spki(a)} junk ${spki(b)}` })[0]).toMatch(
        /^JWT_PREVIOUS_PUBLIC_KEYS: must be one or more PEM public keys/,
      );
      expect(problemsOf({ JWT_PREVIOUS_PUBLIC_KEYS_FILE: '/nonexistent.pem' })[0]).toMatch(/^JWT_PREVIOUS_PUBLIC_KEYS_FILE: cannot read/);

      // Each becomes a verification key under its own kid; the current key (or a repeat) is dropped.
      const privateKeyPem = current.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      const keys = loadSigningKeys({ privateKeyPem, previousPublicKeyPems: [...pems, spki(current), pems[0]!], dataDir: tmp.dir });
      expect(keys.previous.map((k) => k.jwk.n)).toEqual([a, b].map((k) => k.publicKey.export({ format: 'jwk' }).n));
      expect(new Set([keys.kid, ...keys.previous.map((k) => k.kid)]).size).toBe(3);
      // Not RSA, or too small: refused, naming the variable and the key.
      const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
      const small = spki(generateKeyPairSync('rsa', { modulusLength: 1024 }));
      expect(() => loadSigningKeys({ privateKeyPem, previousPublicKeyPems: [pems[0]!, ec], dataDir: tmp.dir })).toThrow(
        /JWT_PREVIOUS_PUBLIC_KEYS: key 2 must be an RSA key/,
      );
      expect(() => loadSigningKeys({ privateKeyPem, previousPublicKeyPems: [small], dataDir: tmp.dir })).toThrow(
        /JWT_PREVIOUS_PUBLIC_KEYS: key 1: RSA key must have at least 2048 bits/,
      );
    } finally {
      tmp.remove();
    }
  });

  it('reads PUBLIC_URL (the OpenAPI server) and refuses anything but a plain http(s) URL', () => {
    expect(loadConfig({}).publicUrl).toBeUndefined();
    expect(loadConfig({ PUBLIC_URL: 'https://calls.example.com/' }).publicUrl).toBe('https://calls.example.com');
    expect(loadConfig({ PUBLIC_URL: 'https://example.com/switchboard' }).publicUrl).toBe('https://example.com/switchboard');
    for (const bad of ['calls.example.com', 'ftp://x.example.com', 'https://u:p@x.example.com', 'https://x.example.com/?a=1'])
      expect(problemsOf({ PUBLIC_URL: bad })[0]).toMatch(/^PUBLIC_URL: /);
  });

  it('generates development keys once and reuses them', () => {
    const tmp = tempDir();
    try {
      const a = loadSigningKeys({ dataDir: tmp.dir });
      const b = loadSigningKeys({ dataDir: tmp.dir });
      expect(a.generated).toBe(true);
      expect(b.generated).toBe(false);
      expect(b.kid).toBe(a.kid);
    } finally {
      tmp.remove();
    }
  });

  it('serves the web client; dev tokens outside production only', () => {
    expect(loadConfig({}).web).toEqual({ enabled: true, devTokens: true });
    expect(loadConfig({ WEB_CLIENT: 'false', DEV_TOKENS: 'false' }).web).toEqual({ enabled: false, devTokens: false });
    expect(problemsOf({ NODE_ENV: 'production', DEV_TOKENS: 'true' })).toContainEqual(expect.stringMatching(/^DEV_TOKENS: .*anyone could mint tokens/));
  });

  it('reads the cluster settings and bounds the node TTL', () => {
    const c = loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', NODE_ID: 'node-a', NODE_HEARTBEAT_MS: '1000', NODE_TTL_MS: '5000' }).cluster;
    expect(c).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      nodeId: 'node-a',
      heartbeatMs: 1000,
      nodeTtlMs: 5000,
      redisKeyPrefix: 'sb:',
      drainTimeoutMs: 30000,
      rpcTimeoutMs: 10000,
    });
    expect(loadConfig({}).cluster.redisUrl).toBeUndefined();
    expect(loadConfig({}).cluster.nodeId).toMatch(/^[A-Za-z0-9._-]+-[0-9a-f]{6}$/);
    expect(problemsOf({ REDIS_URL: 'http://x' })[0]).toMatch(/^REDIS_URL: /);
    expect(problemsOf({ NODE_ID: 'has space' })[0]).toMatch(/^NODE_ID: /);
    expect(problemsOf({ NODE_TTL_MS: '20000' })[0]).toMatch(/^NODE_TTL_MS: /);
    expect(problemsOf({ NODE_HEARTBEAT_MS: '4000', NODE_TTL_MS: '6000' })[0]).toMatch(/^NODE_TTL_MS: .*twice/);
  });

  it("lists every variable it reads in the README's table, and no other", () => {
    const read = [...variablesRead()].sort();
    const documented = [...readmeEnvTable(readFileSync(README, 'utf8'))].sort();
    expect(read.length).toBeGreaterThan(50);
    expect({ undocumented: read.filter((n) => !documented.includes(n)), notRead: documented.filter((n) => !read.includes(n)) }).toEqual({
      undocumented: [],
      notRead: [],
    });
  });
});
