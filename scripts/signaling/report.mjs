/**
 * What bench-signaling.mjs records (its --out JSON) and the tables it prints from it.
 */
import { table, verdict } from '../lib/stats.mjs';

/** @typedef {import('../lib/stats.mjs').LatencySummary} LatencySummary */
/** @typedef {import('./metrics.mjs').MetricsProbe} MetricsProbe */
/** @typedef {{ stop_ms: number, exit_code: number | null, signal: string | null, forced_kill: boolean }} ServerStop */

/**
 * One relay measurement (all generators, one target, one rate).
 * @typedef {object} RelayRow
 * @property {string} label
 * @property {number} target_rate
 * @property {number} pairs
 * @property {number | null} achieved_send_rate
 * @property {number | null} achieved_receive_rate
 * @property {number} measured_sent
 * @property {number} measured_received
 * @property {number} total_sent
 * @property {number} error_acks
 * @property {number} missing_acks
 * @property {number} lost
 * @property {number} strays
 * @property {Record<string, number>} errors
 * @property {number} max_send_backlog
 * @property {LatencySummary} latency_ms
 * @property {number | null} server_cpu_cores over warm-up + measure + drain
 * @property {number | null} generators_cpu_cores
 */

/**
 * Medians over the repeats of one target at one rate.
 * @typedef {object} RelaySummary
 * @property {string} target
 * @property {number} target_rate
 * @property {number} runs
 * @property {number | null} achieved_send_rate
 * @property {number | null} achieved_receive_rate
 * @property {number | null} p50
 * @property {number | null} p90
 * @property {number | null} p99
 * @property {number | null} max
 * @property {(number | null)[]} p99_each
 * @property {number} error_acks
 * @property {number} lost
 * @property {number | null} server_cpu_cores
 * @property {number | null} generators_cpu_cores
 * @property {number | null} [p99_ratio_vs_bare]
 * @property {number | null} [p50_ratio_vs_bare]
 */

/**
 * @typedef {object} BareConnections
 * @property {number} joined
 * @property {number} failed
 * @property {number | null} ramp_s
 * @property {number | null} ramp_joins_per_s
 * @property {LatencySummary} ramp_connect_to_ack_ms
 * @property {number | null} rss_before_mb
 * @property {number | null} rss_after_mb
 * @property {number | null} rss_peak_mb
 * @property {number | null} kb_per_connection
 */

/**
 * Phase (a). `generators` is the count until the phase replaces it with their stats.
 * @typedef {object} ConnectionsResult
 * @property {string} db
 * @property {number} n
 * @property {number | object[]} generators
 * @property {number} ramp_concurrency
 * @property {number} ready_ms
 * @property {number | null} [rss_before_mb]
 * @property {MetricsProbe} [metrics_before]
 * @property {number} [joined]
 * @property {number} [failed]
 * @property {Record<string, number>} [errors]
 * @property {number | null} [ramp_s]
 * @property {number | null} [ramp_joins_per_s]
 * @property {number | null} [ramp_server_cpu_cores]
 * @property {LatencySummary} [ramp_connect_to_ack_ms]
 * @property {LatencySummary} [ramp_join_emit_to_ack_ms]
 * @property {string[]} [local_addresses]
 * @property {number | null} [settle_s]
 * @property {number | null} [rss_after_mb]
 * @property {number | null} [rss_peak_mb]
 * @property {number | null} [kb_per_connection]
 * @property {MetricsProbe} [metrics_after]
 * @property {number | null} [heap_used_delta_mb]
 * @property {number | null} [heap_kb_per_connection]
 * @property {boolean} [gauges_match]
 * @property {RelayRow[]} [loaded_relay]
 * @property {ServerStop} [stop]
 * @property {BareConnections} [bare]
 */

/**
 * Phase (b).
 * @typedef {object} RelayResult
 * @property {string} db
 * @property {number} pairs
 * @property {number} sdp_bytes
 * @property {number} seconds
 * @property {number} warmup_s
 * @property {number} repeats
 * @property {(RelayRow & { target: string, rep: number })[]} runs
 * @property {RelaySummary[]} summary
 * @property {MetricsProbe} [switchboard_metrics_after]
 * @property {ServerStop} [stop_switchboard]
 * @property {ServerStop} [stop_bare]
 */

/**
 * One target of phase (c).
 * @typedef {object} JoinRow
 * @property {string} target
 * @property {number} target_rate
 * @property {number} seconds
 * @property {number} total
 * @property {number | null} server_cpu_cores
 * @property {number | null} generators_cpu_cores
 * @property {number} started
 * @property {number} joined
 * @property {number} failed
 * @property {Record<string, number>} errors
 * @property {number | null} start_span_s
 * @property {number | null} last_ack_s
 * @property {number | null} achieved_joins_per_s
 * @property {number | null} max_start_lag_ms
 * @property {LatencySummary} connect_start_to_join_ack_ms
 * @property {LatencySummary} connect_start_to_connected_ms
 * @property {LatencySummary} join_emit_to_ack_ms
 * @property {number[]} acks_per_second joins acknowledged per 1 s bucket
 * @property {string[]} local_addresses
 * @property {MetricsProbe} [metrics_after]
 * @property {number | null} [rss_after_mb]
 */

/**
 * @typedef {object} SignalingResults
 * @property {Record<string, any>} meta
 * @property {Record<string, unknown>} options
 * @property {ConnectionsResult | null} connections
 * @property {RelayResult | null} relay
 * @property {{ db: string, rows: JoinRow[], stop?: ServerStop } | null} joins
 * @property {string[]} failures
 * @property {boolean} ok
 */

/**
 * What the report says about the run's settings.
 * @typedef {{ connections: number, sdpBytes: number, relayPairs: number, relaySeconds: number, warmup: number, repeats: number, joinRate: number, joinSeconds: number }} ReportOptions
 */

/**
 * The tables of one run, on stdout.
 * @param {SignalingResults} results
 * @param {ReportOptions} opts
 * @param {{ generators: number, db: string }} setup
 */
export function report(results, opts, { generators, db }) {
  const m = results.meta;
  const out = [''];
  out.push(`Switchboard signaling benchmark  ${m.date}`);
  out.push(
    `Node ${m.node} | ${m.cpu_model} | ${m.cpu_cores} cores | ${m.mem_total_gb} GB RAM | socket.io ${m.socket_io}, socket.io-client ${m.socket_io_client} | db ${db}`,
  );
  out.push(
    `N=${opts.connections} | ${generators} generator processes (source addresses: ${m.local_addresses ? 'per-generator 127.0.0.2+' : '127.0.0.1'}) | all traffic on 127.0.0.0/8; servers and generators share the cores`,
  );
  const a = results.connections;
  if (a) {
    out.push('');
    out.push(`(a) Connections: websocket, token in the handshake, join of a two-party room; ${a.ramp_concurrency} joins in flight`);
    const mb0 = a.metrics_before ?? {};
    const mb1 = a.metrics_after ?? {};
    out.push(
      table(
        [
          'joined',
          'failed',
          'ramp s',
          'joins/s',
          'RSS idle MB',
          'RSS after MB',
          'KB/conn (target <=50)',
          'heap used MB',
          'heap KB/conn',
          'gauges conn/part/rooms',
        ],
        [
          [
            `${a.joined}/${a.n}`,
            a.failed,
            a.ramp_s,
            a.ramp_joins_per_s,
            a.rss_before_mb,
            `${a.rss_after_mb} (peak ${a.rss_peak_mb})`,
            a.kb_per_connection,
            `${mb0.heap_used_mb} -> ${mb1.heap_used_mb}`,
            a.heap_kb_per_connection,
            `${mb1.socket_connections}/${mb1.participants}/${mb1.rooms}`,
          ],
        ],
      ),
    );
    if (a.bare) {
      out.push(
        `    bare Socket.IO, same N: joined ${a.bare.joined}/${a.n} in ${a.bare.ramp_s} s (${a.bare.ramp_joins_per_s}/s); RSS ${a.bare.rss_before_mb} -> ${a.bare.rss_after_mb} MB = ${a.bare.kb_per_connection} KB/connection`,
      );
    }
    if (a.ramp_connect_to_ack_ms) {
      out.push(
        `    ramp latency connect->join ack p50 ${a.ramp_connect_to_ack_ms.p50} p99 ${a.ramp_connect_to_ack_ms.p99} ms; join emit->ack p50 ${a.ramp_join_emit_to_ack_ms?.p50} p99 ${a.ramp_join_emit_to_ack_ms?.p99} ms; server CPU ${a.ramp_server_cpu_cores} cores`,
      );
    }
  }
  /** @type {unknown[][]} */
  const rows = [];
  const b = results.relay;
  if (b) {
    for (const s of b.summary) {
      rows.push([
        s.target,
        s.target_rate,
        s.achieved_send_rate,
        s.achieved_receive_rate,
        s.p50,
        s.p90,
        s.p99,
        s.max,
        s.p99_each.join('/'),
        s.p99_ratio_vs_bare ?? '',
        s.error_acks,
        s.lost,
        `${s.server_cpu_cores}/${s.generators_cpu_cores}`,
      ]);
    }
  }
  for (const l of a?.loaded_relay ?? []) {
    rows.push([
      l.label,
      l.target_rate,
      l.achieved_send_rate,
      l.achieved_receive_rate,
      l.latency_ms.p50,
      l.latency_ms.p90,
      l.latency_ms.p99,
      l.latency_ms.max,
      l.latency_ms.p99,
      '',
      l.error_acks,
      l.lost,
      `${l.server_cpu_cores}/${l.generators_cpu_cores}`,
    ]);
  }
  if (rows.length) {
    out.push('');
    out.push(
      `(b) Relay latency, one-way offer (${opts.sdpBytes} B SDP) sender -> server -> receiver, ms; ${opts.relayPairs} pairs; ${opts.relaySeconds} s after ${opts.warmup} s warm-up; ` +
        `median of ${opts.repeats} runs (alternating switchboard/bare)`,
    );
    out.push(
      table(['target', 'rate/s', 'sent/s', 'recv/s', 'p50', 'p90', 'p99', 'max', 'p99 of each run', 'p99 ratio', 'err acks', 'lost', 'cpu srv/gens'], rows),
    );
  }
  const c = results.joins;
  if (c?.rows?.length) {
    out.push('');
    out.push(
      `(c) Joins: target ${opts.joinRate}/s for ${opts.joinSeconds} s, open loop, new connections (switchboard on a fresh server; bare Socket.IO baseline); ms`,
    );
    out.push(
      table(
        ['target', 'joined', 'failed', 'joins/s', 'start->ack p50', 'p99', 'max', 'connected p50', 'p99', 'join emit->ack p50', 'p99', 'max', 'cpu srv/gens'],
        c.rows.map((r) => [
          r.target,
          `${r.joined}/${r.started}`,
          r.failed,
          r.achieved_joins_per_s,
          r.connect_start_to_join_ack_ms.p50,
          r.connect_start_to_join_ack_ms.p99,
          r.connect_start_to_join_ack_ms.max,
          r.connect_start_to_connected_ms.p50,
          r.connect_start_to_connected_ms.p99,
          r.join_emit_to_ack_ms.p50,
          r.join_emit_to_ack_ms.p99,
          r.join_emit_to_ack_ms.max,
          `${r.server_cpu_cores}/${r.generators_cpu_cores}`,
        ]),
      ),
    );
    for (const r of c.rows) out.push(`    ${r.target}: joins acked per second: ${r.acks_per_second.join(' ')}`);
  }
  out.push('');
  out.push(verdict(results.failures, 'OK: every connection joined; no error acks, no lost messages'));
  console.log(out.join('\n'));
}
