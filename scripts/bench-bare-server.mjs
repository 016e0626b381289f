#!/usr/bin/env node
/**
 * Baseline for scripts/bench-http.mjs: plain Fastify (the project's own copy in
 * node_modules), no plugins, logger off, two routes:
 *   GET  /bare -> {"ok":true}
 *   POST /bare -> echoes the JSON body
 * Not part of the product; only the benchmark starts it.
 *
 *   node scripts/bench-bare-server.mjs [port]     (or PORT=<port>; default 0 = any free port)
 *   HOST defaults to 127.0.0.1.
 *
 * Prints `LISTENING <port>` on stdout once it accepts connections; SIGTERM/SIGINT close it.
 */
import Fastify from 'fastify';
import { announceListening, portArgument } from './lib/baseline.mjs';

const port = portArgument('bench-bare-server');
const host = process.env.HOST || '127.0.0.1';

const app = Fastify({ logger: false });
app.get('/bare', async () => ({ ok: true }));
app.post('/bare', async (request) => request.body);

let closing = false;
/** @param {string} signal */
function stop(signal) {
  if (closing) return;
  closing = true;
  const force = setTimeout(() => process.exit(1), 3000);
  force.unref();
  app.close().then(
    () => process.exit(0),
    (err) => {
      console.error(`bench-bare-server: close after ${signal} failed: ${err instanceof Error ? err.message : err}`);
      process.exit(1);
    },
  );
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

try {
  await app.listen({ port, host });
  announceListening(app.server.address());
} catch (err) {
  console.error(`bench-bare-server: cannot listen on ${host}:${port}: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
}
