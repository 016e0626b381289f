import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import { cpus, hostname, networkInterfaces } from 'node:os';
import path from 'node:path';
import { ConfigError, Reader, type Env } from './reader';
import type { ClusterConfig, Config } from './types';
import { parseWebhookSecret, type WebhookSecret } from './webhookSecret';

export { ConfigError } from './reader';
export type * from './types';
export type { WebhookSecret } from './webhookSecret';

/**
 * All configuration comes from environment variables, read once at start-up.
 * loadConfig() validates every variable and reports every bad one at once,
 * each message naming the variable, so an operator fixes them in one go.
 * The README's configuration table lists the same variables.
 */
/** This host's first non-internal IPv4 address, for ICE candidates when listening on 0.0.0.0. */
function firstHostAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** UPLOAD_CHUNK_MAX_BYTES's default; deploy/nginx and deploy/kubernetes carry chunks of this size (a test compares). */
export const DEFAULT_UPLOAD_CHUNK_MAX_BYTES = 64 * 1024 ** 2;

export const DEFAULT_UPLOAD_TYPES = ['video/webm', 'audio/webm', 'video/mp4', 'audio/ogg', 'audio/mp4'];

/** UPLOAD_TYPES: comma-separated `type/subtype`, no parameters (a client's `;codecs=…` is always allowed). */
function uploadTypes(r: Reader): string[] {
  const given = r.list('UPLOAD_TYPES');
  if (given.length === 0) return [...DEFAULT_UPLOAD_TYPES];
  for (const t of given) {
    if (!/^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/i.test(t))
      r.fail('UPLOAD_TYPES', 'must be comma-separated mime types like video/webm (no parameters)', t);
  }
  return [...new Set(given.map((t) => t.toLowerCase()))];
}

export function loadConfig(env: Env = process.env): Config {
  const r = new Reader(env);
  const nodeEnv = r.oneOf('NODE_ENV', 'development', ['development', 'production', 'test'] as const);

  const databaseUrl = r.raw('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\/.+/.test(databaseUrl)) {
    r.fail('DATABASE_URL', 'must be a postgres:// or postgresql:// URL (leave it unset for the embedded database)', databaseUrl.replace(/:[^:@/]*@/, ':***@'));
  }

  const privateKeyPem = r.pem('JWT_PRIVATE_KEY', 'PRIVATE KEY');
  const publicKeyPem = r.pem('JWT_PUBLIC_KEY', 'PUBLIC KEY');
  if (publicKeyPem && !privateKeyPem && !r.problems.some((p) => p.startsWith('JWT_PRIVATE_KEY'))) {
    r.fail('JWT_PRIVATE_KEY', 'is required when JWT_PUBLIC_KEY is set');
  }
  if (nodeEnv === 'production' && !privateKeyPem && !r.problems.some((p) => p.startsWith('JWT_PRIVATE_KEY'))) {
    r.fail('JWT_PRIVATE_KEY', 'is required in production (or JWT_PRIVATE_KEY_FILE); development keys are never generated when NODE_ENV=production');
  }

  // Checked as keys (RSA, size) by loadSigningKeys, like JWT_PRIVATE_KEY.
  const previousPublicKeyPems = r.publicKeyBundle('JWT_PREVIOUS_PUBLIC_KEYS');

  const publicUrl = r.raw('PUBLIC_URL');
  if (publicUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(publicUrl);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash)
      r.fail('PUBLIC_URL', 'must be an http:// or https:// URL without credentials, query or fragment, like https://calls.example.com', publicUrl);
  }

  const defaultTtl = r.int('TOKEN_TTL_SECONDS', 3600, 10, 31 * 24 * 3600);
  const maxTtl = r.int('TOKEN_MAX_TTL_SECONDS', 24 * 3600, 10, 31 * 24 * 3600);
  if (defaultTtl > maxTtl) r.fail('TOKEN_TTL_SECONDS', `must not exceed TOKEN_MAX_TTL_SECONDS (${maxTtl})`, String(defaultTtl));

  const apiKeys = r.list('API_KEYS');
  for (const key of apiKeys) {
    if (key.length < 16) r.fail('API_KEYS', 'each key must be at least 16 characters long');
  }
  if (nodeEnv === 'production' && apiKeys.length === 0) {
    r.fail('API_KEYS', 'is required in production (comma-separated keys, at least 16 characters each)');
  }

  const cors = r.list('CORS_ORIGINS');
  let corsOrigins: string[] | '*' = [];
  if (cors.length === 1 && cors[0] === '*') corsOrigins = '*';
  else {
    for (const origin of cors) {
      if (!/^https?:\/\/[^/\s]+$/.test(origin)) r.fail('CORS_ORIGINS', 'must be * or a comma-separated list of origins like https://app.example.com', origin);
    }
    corsOrigins = cors;
  }

  const rtcMinPort = r.int('MEDIASOUP_RTC_MIN_PORT', 40100, 1024, 65535);
  const rtcMaxPort = r.int('MEDIASOUP_RTC_MAX_PORT', 49999, 1024, 65535);
  const numWorkers = r.int('MEDIASOUP_WORKERS', Math.max(1, cpus().length), 1, 256);
  if (rtcMaxPort - rtcMinPort + 1 < numWorkers) {
    r.fail(
      'MEDIASOUP_RTC_MAX_PORT',
      `the range MEDIASOUP_RTC_MIN_PORT..MEDIASOUP_RTC_MAX_PORT must hold at least one port per worker (${numWorkers})`,
      String(rtcMaxPort),
    );
  }

  const webRtcBasePort = r.int('MEDIASOUP_WEBRTC_PORT', 40000, 1024, 65535 - numWorkers);
  if (webRtcBasePort + numWorkers - 1 >= rtcMinPort && webRtcBasePort <= rtcMaxPort) {
    r.fail(
      'MEDIASOUP_WEBRTC_PORT',
      `ports ${webRtcBasePort}..${webRtcBasePort + numWorkers - 1} (one per worker) must lie outside MEDIASOUP_RTC_MIN_PORT..MEDIASOUP_RTC_MAX_PORT`,
      String(webRtcBasePort),
    );
  }
  const listenIp = r.string('MEDIASOUP_LISTEN_IP', '0.0.0.0');
  if (isIP(listenIp) === 0) r.fail('MEDIASOUP_LISTEN_IP', 'must be an IPv4 or IPv6 address', listenIp);
  const announcedAddress = r.raw('MEDIASOUP_ANNOUNCED_ADDRESS') ?? (listenIp === '0.0.0.0' || listenIp === '::' ? firstHostAddress() : listenIp);
  const turnUrls = r.list('TURN_URLS');
  for (const u of turnUrls) if (!/^turns?:/.test(u)) r.fail('TURN_URLS', 'must be comma-separated turn: or turns: URLs', u);
  const turnSecret = r.raw('TURN_SECRET');
  if (turnUrls.length > 0 && !turnSecret) r.fail('TURN_SECRET', 'is required when TURN_URLS is set (the static-auth-secret of coturn)');

  const webhookUrls: string[] = [];
  for (const u of r.list('WEBHOOK_URLS')) {
    let url: URL | undefined;
    try {
      url = new URL(u);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname)
      r.fail('WEBHOOK_URLS', 'must be comma-separated http:// or https:// URLs', u);
    else if (url.username || url.password)
      r.fail('WEBHOOK_URLS', 'must not contain credentials (user:password@); requests are authenticated by webhook-signature', url.host);
    else if (!webhookUrls.includes(url.href)) webhookUrls.push(url.href);
  }
  // Space-separated: every one signs (a v1 signature each), so a secret can be rotated.
  const webhookSecrets: WebhookSecret[] = [];
  for (const s of (r.raw('WEBHOOK_SECRET') ?? '').split(/\s+/).filter(Boolean)) {
    const parsed = parseWebhookSecret(s);
    if ('error' in parsed) r.fail('WEBHOOK_SECRET', parsed.error);
    else webhookSecrets.push(parsed);
  }
  if (webhookSecrets.length === 0 && webhookUrls.length > 0 && nodeEnv === 'production' && !r.problems.some((p) => p.startsWith('WEBHOOK_SECRET')))
    r.fail(
      'WEBHOOK_SECRET',
      'is required in production when WEBHOOK_URLS is set (whsec_<base64>, e.g. "whsec_$(openssl rand -base64 32)"); development generates one',
    );
  const dataDir = path.resolve(r.string('DATA_DIR', './data'));
  const devTokens = r.bool('DEV_TOKENS', nodeEnv !== 'production');
  if (devTokens && nodeEnv === 'production') {
    r.fail('DEV_TOKENS', 'must not be true in production: anyone could mint tokens through POST /dev/token (your backend issues them with POST /auth/token)');
  }
  const config: Omit<Config, 'cluster'> & { cluster?: ClusterConfig } = {
    env: nodeEnv,
    port: r.int('PORT', 8080, 0, 65535),
    host: r.string('HOST', '0.0.0.0'),
    publicUrl: publicUrl?.replace(/\/+$/, ''),
    databaseUrl,
    dataDir,
    jwt: {
      privateKeyPem,
      publicKeyPem,
      previousPublicKeyPems,
      issuer: r.string('JWT_ISSUER', 'switchboard'),
      audience: r.string('JWT_AUDIENCE', 'switchboard'),
      defaultTtlSeconds: defaultTtl,
      maxTtlSeconds: maxTtl,
    },
    apiKeys,
    corsOrigins,
    logLevel: r.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    // Lines for people in a development terminal, JSON for log collectors everywhere else.
    logFormat: r.oneOf('LOG_FORMAT', nodeEnv === 'development' && process.stdout.isTTY ? 'pretty' : 'json', ['pretty', 'json'] as const),
    bodyLimitBytes: r.int('BODY_LIMIT_BYTES', 64 * 1024, 1024, 64 * 1024 * 1024),
    rateLimit: {
      max: r.int('RATE_LIMIT_MAX', 1200, 0, 10_000_000),
      windowSeconds: r.int('RATE_LIMIT_WINDOW_SECONDS', 60, 1, 86_400),
    },
    trustProxy: r.trustProxy('TRUST_PROXY'),
    tls: r.tls(),
    shutdownTimeoutMs: r.int('SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    mediasoup: {
      numWorkers,
      rtcMinPort,
      rtcMaxPort,
      logLevel: r.oneOf('MEDIASOUP_LOG_LEVEL', 'warn', ['debug', 'warn', 'error', 'none'] as const),
      listenIp,
      announcedAddress,
      webRtcBasePort,
      limits: {
        consumersPerRouter: r.int('MEDIASOUP_CONSUMERS_PER_ROUTER', 500, 1, 100_000),
        consumersPerParticipant: r.int('MAX_CONSUMERS_PER_PARTICIPANT', 400, 1, 100_000),
      },
    },
    turn: {
      urls: turnUrls,
      secret: turnSecret,
      ttlSeconds: r.int('TURN_CREDENTIAL_TTL_SECONDS', 86_400, 60, 30 * 86_400),
    },
    recordingsDir: path.resolve(r.string('RECORDINGS_DIR', './recordings')),
    recording: {
      ffmpegPath: r.raw('FFMPEG_PATH'),
      minPort: r.int('RECORDING_MIN_PORT', 50000, 1024, 65534),
      maxPort: r.int('RECORDING_MAX_PORT', 50999, 1025, 65535),
    },
    uploads: {
      maxBytes: r.int('UPLOAD_MAX_BYTES', 2 * 1024 ** 3, 1, 2 ** 40),
      chunkMaxBytes: r.int('UPLOAD_CHUNK_MAX_BYTES', DEFAULT_UPLOAD_CHUNK_MAX_BYTES, 1024, 1024 ** 3),
      types: uploadTypes(r),
      quotaBytes: r.int('UPLOAD_QUOTA_BYTES', 20 * 1024 ** 3, 1, 2 ** 50),
      diskReserveBytes: r.int('UPLOAD_DISK_RESERVE_BYTES', 1024 ** 3, 0, 2 ** 50),
    },
    signaling: {
      maxConnections: r.int('MAX_CONNECTIONS', 10_000, 1, 1_000_000),
      maxRooms: r.int('MAX_ROOMS', 10_000, 1, 1_000_000),
      maxParticipantsPerRoom: r.int('MAX_PARTICIPANTS_PER_ROOM', 100, 2, 10_000),
      maxConnectionsPerIp: r.int('MAX_CONNECTIONS_PER_IP', 200, 1, 1_000_000),
      maxRoomsPerUser: r.int('MAX_ROOMS_PER_USER', 10, 1, 1_000_000),
      maxMessageBytes: r.int('MAX_MESSAGE_BYTES', 128 * 1024, 1024, 16 * 1024 * 1024),
      maxSdpBytes: r.int('MAX_SDP_BYTES', 64 * 1024, 256, 16 * 1024 * 1024),
      rateLimitPerSecond: r.int('SOCKET_RATE_LIMIT_PER_SECOND', 50, 1, 1_000_000),
      rateLimitBurst: r.int('SOCKET_RATE_LIMIT_BURST', 200, 1, 1_000_000),
      authTimeoutMs: r.int('AUTH_TIMEOUT_MS', 10_000, 100, 600_000),
      reconnectGraceMs: r.int('RECONNECT_GRACE_SECONDS', 15, 0, 3600) * 1000,
      emptyRoomTimeoutMs: r.int('EMPTY_ROOM_TIMEOUT_SECONDS', 20, 0, 86_400) * 1000,
      autoCreateRooms: r.oneOf('AUTO_CREATE_ROOMS', 'any', ['any', 'host', 'none'] as const),
      iceServers: r.iceServers('ICE_SERVERS'),
      invitationTimeoutMs: r.int('INVITATION_TIMEOUT_SECONDS', 30, 1, 600) * 1000,
      inboxRetentionDays: r.int('INBOX_RETENTION_DAYS', 30, 1, 3650),
      inboxMaxItems: r.int('INBOX_MAX_ITEMS', 500, 1, 100_000),
    },
    web: {
      enabled: r.bool('WEB_CLIENT', true),
      devTokens,
    },
    webhooks: {
      urls: webhookUrls,
      secrets: webhookSecrets,
      maxAttempts: r.int('WEBHOOK_MAX_ATTEMPTS', 12, 1, 100),
      timeoutMs: r.int('WEBHOOK_TIMEOUT_MS', 5000, 100, 120_000),
      concurrencyPerEndpoint: r.int('WEBHOOK_CONCURRENCY_PER_ENDPOINT', 8, 1, 1000),
    },
    metrics: {
      mediaSampleMs: r.int('METRICS_MEDIA_SAMPLE_MS', 10_000, 0, 3_600_000),
      mediaSampleMax: r.int('METRICS_MEDIA_SAMPLE_MAX', 1000, 1, 1_000_000),
    },
  };
  if (config.recording.maxPort - config.recording.minPort < 3) {
    r.fail('RECORDING_MAX_PORT', 'RECORDING_MIN_PORT..RECORDING_MAX_PORT must hold at least 4 ports', String(config.recording.maxPort));
  }
  if (config.recording.minPort <= rtcMaxPort && config.recording.maxPort >= rtcMinPort) {
    r.fail(
      'RECORDING_MIN_PORT',
      `RECORDING_MIN_PORT..RECORDING_MAX_PORT must not overlap MEDIASOUP_RTC_MIN_PORT..MEDIASOUP_RTC_MAX_PORT (${rtcMinPort}-${rtcMaxPort})`,
      String(config.recording.minPort),
    );
  }
  if (config.signaling.maxSdpBytes >= config.signaling.maxMessageBytes) {
    r.fail('MAX_SDP_BYTES', `must be smaller than MAX_MESSAGE_BYTES (${config.signaling.maxMessageBytes})`, String(config.signaling.maxSdpBytes));
  }
  const sampleMs = config.metrics.mediaSampleMs;
  if (sampleMs > 0 && sampleMs < 100) r.fail('METRICS_MEDIA_SAMPLE_MS', 'must be 0 (off) or at least 100', String(sampleMs));
  if (rtcMinPort > rtcMaxPort) r.fail('MEDIASOUP_RTC_MIN_PORT', `must not exceed MEDIASOUP_RTC_MAX_PORT (${rtcMaxPort})`, String(rtcMinPort));

  const redisUrl = r.raw('REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\/[^\s]+$/.test(redisUrl)) r.fail('REDIS_URL', 'must be a redis:// or rediss:// URL', redisUrl);
  const nodeId = r.string(
    'NODE_ID',
    `${hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 48)}-${randomBytes(3).toString('hex')}`,
  );
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(nodeId)) r.fail('NODE_ID', 'must be 1-64 characters of A-Z a-z 0-9 . _ -', nodeId);
  const heartbeatMs = r.int('NODE_HEARTBEAT_MS', 2000, 100, 10_000);
  const nodeTtlMs = r.int('NODE_TTL_MS', 6000, 300, 10_000);
  if (nodeTtlMs < heartbeatMs * 2) r.fail('NODE_TTL_MS', `must be at least twice NODE_HEARTBEAT_MS (${heartbeatMs})`, String(nodeTtlMs));
  config.cluster = {
    redisUrl,
    redisKeyPrefix: r.string('REDIS_KEY_PREFIX', 'sb:'),
    nodeId,
    nodeAddress: r.string('NODE_ADDRESS', `${firstHostAddress()}:${config.port}`),
    heartbeatMs,
    nodeTtlMs,
    drainTimeoutMs: r.int('DRAIN_TIMEOUT_MS', 30_000, 0, 3_600_000),
    rpcTimeoutMs: r.int('RPC_TIMEOUT_MS', 10_000, 100, 120_000),
  };

  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config as Config;
}
