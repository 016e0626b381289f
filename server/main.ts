/**
 * Entry point: read the configuration, open the database, load keys, start the
 * media workers, serve HTTP. SIGTERM/SIGINT drain and close everything in the
 * reverse order. Every failure to start is one clear line and exit code 1.
 * With TLS_CERT/TLS_KEY it serves HTTPS/WSS and SIGHUP (or a change of the files)
 * reloads the certificate without dropping connections.
 */
import type { Server as TlsServer } from 'node:tls';
import { buildApp } from './app';
import { ApiKeys, devApiKey } from './auth/apiKeys';
import { loadSigningKeys } from './auth/keys';
import { ConfigError, loadConfig, type Config } from './config/config';
import { parseWebhookSecret } from './config/webhookSecret';
import { openDatabase, type Database } from './db/database';
import { WorkerPool } from './media/workerPool';
import { Cluster } from './cluster/cluster';
import { createLogger } from './logging';
import { startupProblem, StartupError } from './startup';
import { loadTls, TlsReloader } from './tls/tls';
import { devWebhookSecret } from './webhooks/webhooks';

async function main(): Promise<void> {
  const startedAt = performance.now();
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }

  const log = createLogger(config);

  const keys = loadSigningKeys({
    privateKeyPem: config.jwt.privateKeyPem,
    publicKeyPem: config.jwt.publicKeyPem,
    previousPublicKeyPems: config.jwt.previousPublicKeyPems,
    dataDir: config.dataDir,
  });
  if (keys.previous.length > 0) {
    log.info({ kid: keys.kid, previous: keys.previous.map((k) => k.kid) }, 'tokens signed with JWT_PREVIOUS_PUBLIC_KEYS are still accepted (key rotation)');
  }
  if (!config.jwt.privateKeyPem) {
    log.warn(
      { dir: config.dataDir, generated: keys.generated },
      'using development signing keys from DATA_DIR/keys; set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE in production',
    );
  }
  let apiKeyList = config.apiKeys;
  if (apiKeyList.length === 0) {
    const dev = devApiKey(config.dataDir);
    apiKeyList = [dev.key];
    log.warn({ file: dev.file, generated: dev.generated }, 'API_KEYS is not set: using the development API key stored in this file');
  }
  if (config.webhooks.urls.length > 0 && config.webhooks.secrets.length === 0) {
    // Not in production (loadConfig refuses it there).
    const dev = devWebhookSecret(config.dataDir);
    const parsed = parseWebhookSecret(dev.secret);
    if ('error' in parsed) {
      console.error(`${dev.file}: ${parsed.error} (delete the file to generate a new one, or set WEBHOOK_SECRET)`);
      process.exit(1);
    }
    config.webhooks.secrets = [parsed];
    log.warn(
      { file: dev.file, generated: dev.generated, secret: dev.secret },
      'WEBHOOK_SECRET is not set: webhooks are signed with this development secret (give it to your receiver); set WEBHOOK_SECRET in production',
    );
  }
  if (config.env === 'production' && !config.tls && config.trustProxy === false) {
    log.warn(
      { tls: false, trustProxy: false },
      '!!! INSECURE: serving plain HTTP in production: tokens, API keys and media keys travel in clear. Configure TLS_CERT/TLS_KEY, or run behind a TLS-terminating proxy and set TRUST_PROXY !!!',
    );
  }

  let db: Database | undefined;
  let workers: WorkerPool | undefined;
  let cluster: Cluster | undefined;
  const closeResources = async (): Promise<void> => {
    await cluster?.close().catch((err: unknown) => log.error({ err }, 'closing the Redis connections failed'));
    workers?.close();
    await db?.close().catch((err: unknown) => log.error({ err }, 'closing the database failed'));
  };

  try {
    db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, log: (m) => log.info(m) }).catch((err: unknown) => {
      throw startupProblem('database', err, config);
    });
    log.info({ database: db.kind }, 'database ready');
    workers = new WorkerPool({
      ...config.mediasoup,
      log,
      webRtc: { listenIp: config.mediasoup.listenIp, announcedAddress: config.mediasoup.announcedAddress, basePort: config.mediasoup.webRtcBasePort },
    });
    await workers.start();
    if (config.cluster.redisUrl) {
      cluster = await Cluster.connect(config.cluster, log);
      log.info({ node: config.cluster.nodeId }, 'joined the cluster through Redis');
    }

    const tls = config.tls ? loadTls(config.tls) : undefined;
    const { app, drain, recover, startCluster } = await buildApp({ config, db, workers, keys, apiKeys: new ApiKeys(apiKeyList), logger: log, cluster, tls });
    // Not while other nodes write their rooms back into a Redis that came back empty: they would look orphaned.
    await cluster?.settled().catch((err: unknown) => log.warn({ err }, 'could not tell whether other nodes are restoring'));
    // What a crashed predecessor left open is closed before taking traffic; a failure here is logged, not fatal.
    await recover().catch((err: unknown) => log.error({ err }, 'crash recovery failed; starting anyway'));
    // Heartbeating (and so placeable) before taking traffic.
    await startCluster();
    await app.listen({ port: config.port, host: config.host }).catch((err: unknown) => {
      throw startupProblem('listen', err, config);
    });
    let tlsReloader: TlsReloader | undefined;
    if (config.tls && tls) {
      // New handshakes get a reloaded certificate; open connections (calls) keep theirs.
      tlsReloader = new TlsReloader({ server: app.server as unknown as TlsServer, config: config.tls, current: tls, log });
      const watched = tlsReloader.watch();
      process.on('SIGHUP', () => tlsReloader?.reload('SIGHUP'));
      log.info(
        { subject: tls.subject, fingerprint256: tls.fingerprint256, validTo: tls.validTo, watchedDirs: watched },
        'serving HTTPS and WSS; SIGHUP reloads the certificate',
      );
      if (Date.parse(tls.validTo) < Date.now()) log.warn({ validTo: tls.validTo }, 'the TLS certificate has expired');
    }
    log.info(
      {
        ms: Math.round(performance.now() - startedAt),
        database: db.kind,
        workers: workers.size,
        node: config.cluster.nodeId,
        cluster: Boolean(cluster),
        tls: Boolean(tls),
      },
      'switchboard is ready',
    );

    let stopping = false;
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      tlsReloader?.close();
      // Workers that die from here on (the signal reached the whole process group) are not replaced.
      workers?.stopReplacing();
      // SIGTERM in a cluster (an orchestrator) drains: calls move to another node first. Alone, or on
      // SIGINT, nothing waits: every client is told to come back (server-draining) and resumes once
      // a server answers again, so the process stops within SHUTDOWN_TIMEOUT_MS.
      const drainMs = signal === 'SIGTERM' && cluster ? config.cluster.drainTimeoutMs : 0;
      const force = setTimeout(() => {
        log.error('shutdown timed out; exiting');
        process.exit(1);
      }, drainMs + config.shutdownTimeoutMs);
      force.unref();
      drain(drainMs)
        .then(() => log.info('drained'))
        .then(() => app.close())
        .then(closeResources)
        .then(() => {
          log.info('stopped');
          log.flush();
          process.exit(0);
        })
        .catch((err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        });
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  } catch (err) {
    // What to do, in one line for the person at the terminal; the same in the log for collectors.
    if (err instanceof StartupError) {
      console.error(`switchboard failed to start: ${err.message}`);
      log.fatal({ variable: err.variable }, `failed to start: ${err.message}`);
    } else if (err instanceof ConfigError) {
      console.error(err.message);
    } else log.fatal({ err }, 'failed to start');
    log.flush();
    await closeResources();
    process.exit(1);
  }
}

void main();
