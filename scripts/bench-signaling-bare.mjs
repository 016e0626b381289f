#!/usr/bin/env node
/**
 * Baseline for scripts/bench-signaling.mjs: a bare Socket.IO relay (the project's
 * own socket.io in node_modules) on a plain node:http server. No auth, no
 * validation, no state besides Socket.IO's rooms:
 *
 *   join  {room}  -> socket.join(room); ack {ok:true}
 *   offer {...}   -> socket.to(room).emit('offer', {...payload, from: socket.id}); ack {ok:true}
 *
 * Not part of the product; only the benchmark starts it.
 *
 *   node scripts/bench-signaling-bare.mjs [port]    (or PORT; default 0 = any free port; HOST default 127.0.0.1)
 *
 * Prints `LISTENING <port>` on stdout once it accepts connections; SIGTERM/SIGINT close it
 * with io.close() (bench-restart.mjs times that).
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { announceListening, portArgument } from './lib/baseline.mjs';
import { ROOT } from './lib/system.mjs';

const require = createRequire(path.join(ROOT, 'package.json'));
const { Server } = require('socket.io');

const port = portArgument('bench-signaling-bare');
const host = process.env.HOST || '127.0.0.1';

const httpServer = http.createServer((_req, res) => {
  res.writeHead(404).end();
});
const io = new Server(httpServer, { serveClient: false, maxHttpBufferSize: 128 * 1024 });

io.on('connection', (socket) => {
  /** @type {string | null} */
  let room = null;
  socket.on('join', (payload, ack) => {
    room = String(payload?.room ?? '');
    void socket.join(room);
    if (typeof ack === 'function') ack({ ok: true });
  });
  socket.on('offer', (payload, ack) => {
    if (room) socket.to(room).emit('offer', { ...payload, from: socket.id });
    if (typeof ack === 'function') ack({ ok: true });
  });
});

// io.close() closes every transport (no disconnect packet, so a client with reconnection on
// comes back by itself), then the HTTP server. The fallback says so when it, not the close, ends it;
// it leaves the close time enough (10,000 connections take seconds on a busy machine).
const CLOSE_FALLBACK_MS = 20_000;
let closing = false;
function stop() {
  if (closing) return;
  closing = true;
  io.close(() => process.exit(0));
  setTimeout(() => {
    console.error(`bench-signaling-bare: io.close() did not finish within ${CLOSE_FALLBACK_MS} ms; exiting`);
    process.exit(0);
  }, CLOSE_FALLBACK_MS).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

httpServer.listen(port, host, () => announceListening(httpServer.address()));
