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
 * Prints `LISTENING <port>` on stdout once it accepts connections; SIGTERM/SIGINT close it.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(ROOT, 'package.json'));
const { Server } = require('socket.io');

const rawPort = process.argv[2] ?? process.env.PORT ?? '0';
const port = Number(rawPort);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`bench-signaling-bare: bad port ${JSON.stringify(rawPort)}`);
  process.exit(2);
}
const host = process.env.HOST || '127.0.0.1';

const httpServer = http.createServer((_req, res) => {
  res.writeHead(404).end();
});
const io = new Server(httpServer, { serveClient: false, maxHttpBufferSize: 128 * 1024 });

io.on('connection', (socket) => {
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

let closing = false;
function stop() {
  if (closing) return;
  closing = true;
  io.disconnectSockets(true);
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 3_000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

httpServer.listen(port, host, () => {
  console.log(`LISTENING ${httpServer.address().port}`);
});
