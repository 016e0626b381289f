/**
 * The Switchboard gauges bench-signaling.mjs reads from GET /metrics (Prometheus text).
 */
import { request } from '../lib/net.mjs';
import { r1, r2 } from '../lib/stats.mjs';

/**
 * @typedef {object} ServerMetrics
 * @property {number | null} socket_connections
 * @property {number | null} participants
 * @property {number | null} rooms
 * @property {number | null} heap_used_mb
 * @property {number | null} heap_total_mb
 * @property {number | null} external_mb
 * @property {number | null} process_rss_mb
 * @property {number | null} eventloop_lag_p99_ms
 * @property {Record<string, number>} signaling_errors by error code
 * @property {number | null} db_write_failures
 */
/** What metrics() answers: the gauges, or { error } when /metrics did not answer 200. */
/** @typedef {Partial<ServerMetrics> & { error?: number | string }} MetricsProbe */

/**
 * Sample name (with labels) -> value; comments skipped.
 * @param {string | undefined} text
 */
function parseMetrics(text) {
  /** @type {Record<string, number>} */
  const m = {};
  for (const line of (text ?? '').split('\n')) {
    if (!line || line[0] === '#') continue;
    const sp = line.lastIndexOf(' ');
    m[line.slice(0, sp)] = Number(line.slice(sp + 1));
  }
  return m;
}

/**
 * @param {number} port
 * @returns {Promise<MetricsProbe>}
 */
export async function metrics(port) {
  const res = await request(port, 'GET', '/metrics', { timeoutMs: 10_000 });
  if (res.status !== 200) return { error: res.status || res.error };
  const m = parseMetrics(res.text);
  /** @param {number | undefined} bytes */
  const mib = (bytes) => (bytes != null ? r1(bytes / 2 ** 20) : null);
  const errors = Object.fromEntries(
    Object.entries(m)
      .filter(([k]) => k.startsWith('switchboard_signaling_errors_total{'))
      .map(([k, v]) => [/code="([^"]*)"/.exec(k)?.[1] ?? k, v]),
  );
  return {
    socket_connections: m.switchboard_socket_connections ?? null,
    participants: m.switchboard_participants ?? null,
    rooms: m.switchboard_rooms ?? null,
    heap_used_mb: mib(m.switchboard_nodejs_heap_size_used_bytes),
    heap_total_mb: mib(m.switchboard_nodejs_heap_size_total_bytes),
    external_mb: mib(m.switchboard_nodejs_external_memory_bytes),
    process_rss_mb: mib(m.switchboard_process_resident_memory_bytes),
    eventloop_lag_p99_ms: m.switchboard_nodejs_eventloop_lag_p99_seconds != null ? r2(m.switchboard_nodejs_eventloop_lag_p99_seconds * 1000) : null,
    signaling_errors: errors,
    db_write_failures: m.switchboard_db_write_failures_total ?? null,
  };
}
