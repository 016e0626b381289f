/**
 * Ports and HTTP requests on 127.0.0.1, the only address the benchmarks talk to.
 */
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (picked by the kernel).
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

/**
 * Whether a TCP listener can bind 127.0.0.1:port.
 * @param {number} port
 * @returns {Promise<boolean>}
 */
export function tcpFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * Whether a UDP socket can bind 127.0.0.1:port.
 * @param {number} port
 * @returns {Promise<boolean>}
 */
export function udpFree(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A random port in [lo, hi) free for both TCP and UDP (WebRTC servers listen on both), not in `avoid`.
 * @param {number} [lo]
 * @param {number} [hi]
 * @param {ReadonlySet<number>} [avoid]
 */
export async function freeDualPort(lo = 20000, hi = 30000, avoid = new Set()) {
  for (let i = 0; i < 200; i++) {
    const port = lo + Math.floor(Math.random() * (hi - lo));
    if (avoid.has(port)) continue;
    if ((await tcpFree(port)) && (await udpFree(port))) return port;
  }
  throw new Error('no free TCP+UDP port found');
}

/**
 * @typedef {object} RequestOptions
 * @property {http.OutgoingHttpHeaders} [headers]
 * @property {string | Buffer} [body]
 * @property {number} [timeoutMs] default 2 s
 * @property {boolean} [keepAlive] reuse connections (Node's global agent); default: a fresh
 *   connection per request, so no pool holds the server open
 */

/** @typedef {{ status: number, text: string, error?: undefined } | { status: 0, text?: undefined, error: string }} Response */

/**
 * One HTTP request to 127.0.0.1. Never rejects: resolves { status, text } or { status: 0, error }.
 * @param {number} port
 * @param {string} method
 * @param {string} urlPath
 * @param {RequestOptions} [options]
 * @returns {Promise<Response>}
 */
export function request(port, method, urlPath, { headers = {}, body, timeoutMs = 2_000, keepAlive = false } = {}) {
  return new Promise((resolve) => {
    const options = { host: '127.0.0.1', port, method, path: urlPath, headers, timeout: timeoutMs, ...(keepAlive ? {} : { agent: false }) };
    const req = http.request(options, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', (err) => resolve({ status: 0, error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, error: err.message }));
    req.end(body);
  });
}
