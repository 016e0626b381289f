import type { WebhookSecret } from './webhookSecret';
import type { TrustProxy } from '../http/trustProxy';
import type { TlsConfig } from '../tls/tls';

/** The configuration's shape: loadConfig (config.ts) builds it from the environment. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type MediasoupLogLevel = 'debug' | 'warn' | 'error' | 'none';

export interface Config {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  /** PUBLIC_URL: the address clients reach this server at (the OpenAPI document's server); unset: relative ("/"). */
  publicUrl: string | undefined;
  databaseUrl: string | undefined;
  dataDir: string;
  jwt: {
    /** PEM, from JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE; undefined = development keys in DATA_DIR. */
    privateKeyPem: string | undefined;
    publicKeyPem: string | undefined;
    /**
     * JWT_PREVIOUS_PUBLIC_KEYS(_FILE): public keys (PEM blocks, concatenated) that still verify
     * tokens and are published in the JWKS next to the current key, each under its own `kid`
     * (key rotation: the old key until its last token expires, or the next key before it signs).
     */
    previousPublicKeyPems: string[];
    issuer: string;
    audience: string;
    defaultTtlSeconds: number;
    maxTtlSeconds: number;
  };
  /** Keys that authenticate the application's backend (admin rights). */
  apiKeys: string[];
  corsOrigins: string[] | '*';
  logLevel: LogLevel;
  /** pretty: one readable line per entry (development terminals); json: one JSON object per line. */
  logFormat: 'pretty' | 'json';
  bodyLimitBytes: number;
  /** REST requests per client IP per window; 0 disables the limit. */
  rateLimit: { max: number; windowSeconds: number };
  /** TRUST_PROXY: trust X-Forwarded-For from every peer (true), none (false), or the peers in this list (addresses, CIDRs). */
  trustProxy: TrustProxy;
  /** TLS_CERT + TLS_KEY (+ TLS_CA): serve HTTPS and WSS; undefined: plain HTTP. Checked at load (a matching pair). */
  tls: TlsConfig | undefined;
  shutdownTimeoutMs: number;
  mediasoup: {
    numWorkers: number;
    rtcMinPort: number;
    rtcMaxPort: number;
    logLevel: MediasoupLogLevel;
    /** Address the WebRtcServers and transports listen on. */
    listenIp: string;
    /** Address put in ICE candidates (public IP or host name); defaults to listenIp, or this host's first IPv4 address when listenIp is 0.0.0.0. */
    announcedAddress: string;
    /** Worker i's WebRtcServer uses this port + i, UDP and TCP. */
    webRtcBasePort: number;
    limits: {
      /** Consumers on a room's router before its new receive transports go to a router on another worker (piped). */
      consumersPerRouter: number;
      /** Consumers one participant may hold (TOO_MANY_CONSUMERS above). */
      consumersPerParticipant: number;
    };
  };
  turn: {
    urls: string[];
    secret: string | undefined;
    ttlSeconds: number;
  };
  recordingsDir: string;
  recording: {
    /** FFMPEG_PATH; unset: ffmpeg-static's binary, then ffmpeg on PATH. */
    ffmpegPath: string | undefined;
    /** UDP ports ffmpeg receives RTP on (two per recorded track). */
    minPort: number;
    maxPort: number;
  };
  /** Recordings made in the browser and uploaded (server/uploads). */
  uploads: {
    /** UPLOAD_MAX_BYTES: the largest file (size_bytes) accepted. */
    maxBytes: number;
    /** UPLOAD_CHUNK_MAX_BYTES: the largest body of one PATCH. */
    chunkMaxBytes: number;
    /** UPLOAD_TYPES: accepted mime types, without parameters (lower case). */
    types: string[];
    /** UPLOAD_QUOTA_BYTES: total bytes of one call's uploads (uploading or completed). */
    quotaBytes: number;
    /** UPLOAD_DISK_RESERVE_BYTES: free space on RECORDINGS_DIR that uploads never take. */
    diskReserveBytes: number;
  };
  signaling: SignalingConfig;
  cluster: ClusterConfig;
  web: WebConfig;
  webhooks: WebhooksConfig;
  metrics: MetricsConfig;
}

/** /metrics (server/metrics): how mediasoup's RTP stats are sampled. */
export interface MetricsConfig {
  /** METRICS_MEDIA_SAMPLE_MS: how often producers' and consumers' stats are read; 0: never (the RTP counters stay at 0). */
  mediaSampleMs: number;
  /** METRICS_MEDIA_SAMPLE_MAX: getStats() calls per sample at most (the longest unread first). */
  mediaSampleMax: number;
}

/** Signed webhooks (server/webhooks): every call event is POSTed to each URL. */
export interface WebhooksConfig {
  /** WEBHOOK_URLS: http(s) endpoints; empty: no webhooks. */
  urls: string[];
  /**
   * WEBHOOK_SECRET: the signing keys, one v1 signature each (several during a rotation).
   * Empty with urls only outside production: main.ts then generates one into DATA_DIR/keys.
   */
  secrets: WebhookSecret[];
  /** After this many failed attempts a delivery is `failed`. */
  maxAttempts: number;
  /** WEBHOOK_TIMEOUT_MS: per request (headers and body). */
  timeoutMs: number;
  /** WEBHOOK_CONCURRENCY_PER_ENDPOINT: requests in flight per URL, so a slow receiver cannot hold up another. */
  concurrencyPerEndpoint: number;
}

/** The web client served by this server (dist/web, built by npm run build). */
export interface WebConfig {
  /** WEB_CLIENT: serve the call page (/) and the recordings admin page (/admin). */
  enabled: boolean;
  /** DEV_TOKENS: POST /dev/token mints a token for anyone, so the call page works without a backend. Never in production. */
  devTokens: boolean;
}

/** Scale-out: with REDIS_URL set, nodes share room state in Redis and forward media requests to a room's media node. */
export interface ClusterConfig {
  /** unset: one node, state in memory. */
  redisUrl: string | undefined;
  redisKeyPrefix: string;
  nodeId: string;
  /** host:port others reach this node at (reported in the node registry). */
  nodeAddress: string;
  heartbeatMs: number;
  /** A node silent this long is dead: its participants are announced as left, its media rooms move. */
  nodeTtlMs: number;
  /** SIGTERM: how long calls may take to finish or move before the node closes. */
  drainTimeoutMs: number;
  /** Media requests forwarded to another node. */
  rpcTimeoutMs: number;
}

export interface SignalingConfig {
  /** Socket.IO connections one node accepts. */
  maxConnections: number;
  /** Rooms (calls in progress) one node holds. */
  maxRooms: number;
  maxParticipantsPerRoom: number;
  /** Connections one client address may hold on a node. */
  maxConnectionsPerIp: number;
  /** Rooms one user may have opened by joining that are still in progress (per node). */
  maxRoomsPerUser: number;
  /** Largest Socket.IO message; larger ones close the connection (engine.io). */
  maxMessageBytes: number;
  /** Largest SDP accepted in offer/answer (an error ack above). */
  maxSdpBytes: number;
  /** Per-socket token bucket: sustained messages per second and burst. */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  /** A socket that has not authenticated within this time is disconnected. */
  authTimeoutMs: number;
  /** How long a dropped participant keeps its place. */
  reconnectGraceMs: number;
  /** An empty room's call is ended after this long. */
  emptyRoomTimeoutMs: number;
  /** Who may open a room that has no call: anyone, hosts and moderators, or nobody (REST only). */
  autoCreateRooms: 'any' | 'host' | 'none';
  iceServers: Array<{ urls: string | string[]; username?: string; credential?: string }>;
  /** How long an invitation rings before it expires (a missed call). */
  invitationTimeoutMs: number;
  /** Unacknowledged inbox items older than this are dropped. */
  inboxRetentionDays: number;
  /** Per user; past it the oldest items go. */
  inboxMaxItems: number;
}
