/**
 * What bench-cluster.mjs records and the tables it prints from it.
 */
import { r2, r3, table, verdict } from '../lib/stats.mjs';
import { packageVersion } from '../lib/system.mjs';
import { sum } from './redis.mjs';

/** @typedef {import('./redis.mjs').Counts} Counts */
/** @typedef {import('../lib/stats.mjs').LatencySummary} LatencySummary */

/** Ping-pongs run per case before the cases take turns. */
export const BLOCK = 100;

/**
 * One case of the relay round trip.
 * @typedef {object} RelayRow
 * @property {string} label
 * @property {LatencySummary} stats
 * @property {number} lost
 * @property {number} errors
 * @property {number} strays
 * @property {number | null} perMsg Redis commands per relayed message (cluster cases)
 * @property {[string, number][] | null} perMsgBreakdown
 */

/**
 * @typedef {object} RelayPhase
 * @property {Counts} idle
 * @property {number} idleS
 * @property {number} wallS
 * @property {boolean} truncated stopped by the time bound
 * @property {number} lostWarm
 * @property {RelayRow[]} rows
 */

/**
 * Redis commands per join of one kind.
 * @typedef {object} JoinCounts
 * @property {string} label
 * @property {number} n
 * @property {number} windowS
 * @property {number} idleS
 * @property {number} raw
 * @property {number} background
 * @property {number} idleRaw
 * @property {[number, number]} heartbeats in the phase window, in the idle window
 * @property {number} perJoin
 * @property {number} roundTrips
 * @property {number} inScripts
 * @property {Record<string, number>} byNode
 * @property {number} foreign
 * @property {[string, number, number][]} breakdown command, total per join, top-level per join
 * @property {LatencySummary} joinMs
 * @property {object[]} joined
 * @property {number} [mediaLocal]
 */

/**
 * @typedef {object} ClusterResults
 * @property {string[]} failures
 * @property {Record<string, any>} [meta]
 * @property {RelayPhase} [relay]
 * @property {JoinCounts[]} [joins]
 */

/**
 * The tables of one run, on stdout.
 * @param {ClusterResults} results
 * @param {{ pings: number, warmup: number, joins: number, sdpBytes: number }} opts
 * @param {string[]} cleanupReport what cleanup did (it runs before the report)
 */
export function report(results, opts, cleanupReport) {
  const m = results.meta ?? {};
  const out = [''];
  out.push(`Switchboard cluster benchmark  ${m.date}`);
  out.push(`Node ${m.node} | ${m.platform} | ${m.cpu_model} | ${m.cpu_cores} cores | ${m.mem_total_gb} GB RAM`);
  out.push(
    `socket.io ${packageVersion('socket.io')}, socket.io-client ${packageVersion('socket.io-client')}, @socket.io/redis-adapter ${packageVersion('@socket.io/redis-adapter')}, ioredis ${packageVersion('ioredis')} | Redis ${m.redis_version} | PostgreSQL (fresh database)`,
  );
  out.push(
    'Servers: node-0 + node-1 (REDIS_URL, shared Redis + PostgreSQL, 1 mediasoup worker each) and a single node without Redis (same database); all on 127.0.0.1, sharing the cores with the client.',
  );
  const rl = results.relay;
  if (rl) {
    out.push('');
    out.push(
      `(1) Relay round trip (RTT, ms): A sends offer (${opts.sdpBytes} B SDP, timestamp-tagged) to B, B answers at once; RTT on A's clock = 2 relays through the server(s).`,
    );
    out.push(
      `    ${opts.warmup} warm-up + ${opts.pings} sequential ping-pongs per case, cases interleaved in blocks of ${BLOCK}; ${rl.wallS.toFixed(1)} s measured${rl.truncated ? ' (stopped by the 60 s bound)' : ''}.`,
    );
    out.push(
      table(
        ['case', 'n', 'p50', 'p90', 'p99', 'max', 'mean', 'lost', 'errors', 'Redis cmds/msg'],
        rl.rows.map((r) => [
          r.label,
          r.stats.n,
          r.stats.p50,
          r.stats.p90,
          r.stats.p99,
          r.stats.max,
          r.stats.mean,
          r.lost,
          r.errors,
          r.perMsg != null ? r.perMsg.toFixed(2) : 'n/a',
        ]),
      ),
    );
    const base = rl.rows[2]?.stats;
    for (const r of rl.rows.slice(0, 2)) {
      const [p50, p99, b50, b99] = [r.stats.p50 ?? 0, r.stats.p99 ?? 0, base?.p50 ?? 0, base?.p99 ?? 0];
      if (b50) out.push(`    ${r.label.slice(0, 3)} vs (c): p50 +${r3(p50 - b50)} ms (x${r2(p50 / b50)}), p99 +${r3(p99 - b99)} ms (x${r2(p99 / b99)})`);
    }
    for (const r of rl.rows) {
      if (!r.perMsgBreakdown) continue;
      out.push(
        `    ${r.label.slice(0, 3)} Redis commands per relayed message: ${r.perMsgBreakdown.map(([k, v]) => `${k.toUpperCase()} ${v.toFixed(2)}`).join(', ')}`,
      );
    }
    out.push(`    (commandstats around each block minus the idle rate: ${sum(rl.idle)} commands in ${rl.idleS.toFixed(1)} s idle)`);
  }
  if (results.joins) {
    out.push('');
    out.push(
      `(2) Redis commands per join (N=${opts.joins} each; new connection + own token + join; alternating node-0/node-1, the second participant through the other node;`,
    );
    out.push('    after one warm-up join of each kind on each node, outside the windows).');
    out.push(
      '    INFO commandstats (sum of calls=, server-wide; counts commands run inside Lua scripts too) before/after, minus an idle window of the same length (>= 4 s)\n' +
        '    right after, scaled by the heartbeat scripts MONITOR saw in each window. Round trips = top-level commands from the nodes (MONITOR, heartbeats excluded).',
    );
    out.push(
      table(
        ['phase', 'window s', 'raw cmds', 'background', 'cmds/join', 'round trips/join', 'in Lua/join', 'round trips node-0/node-1', 'join ack p50/p99 ms'],
        results.joins.map((j) => [
          j.label,
          j.windowS.toFixed(2),
          j.raw,
          `${j.background.toFixed(1)} (idle ${j.idleS.toFixed(1)} s: ${j.idleRaw})`,
          j.perJoin.toFixed(2),
          j.roundTrips.toFixed(2),
          j.inScripts.toFixed(2),
          `${(j.byNode['node-0'] ?? 0).toFixed(2)}/${(j.byNode['node-1'] ?? 0).toFixed(2)}`,
          `${j.joinMs.p50}/${j.joinMs.p99}`,
        ]),
      ),
    );
    const [f, s] = /** @type {[JoinCounts, JoinCounts]} */ (results.joins);
    out.push(
      `    first joins: the room's media was placed on the joining node for ${f.mediaLocal}/${f.n} rooms, on the other node (media open forwarded over Redis pub/sub) for ${f.n - (f.mediaLocal ?? 0)}.`,
    );
    out.push('');
    out.push(
      '    Breakdown per join (commands with >= 0.05/join): total executed (commandstats, background removed) / of which top-level round trips (MONITOR)',
    );
    const names = [...new Set([...f.breakdown, ...s.breakdown].map(([k]) => k))];
    /** @param {JoinCounts} j @param {string} k @returns {[string, number, number]} */
    const get = (j, k) => j.breakdown.find(([n]) => n === k) ?? [k, 0, 0];
    names.sort((a, b) => get(f, b)[1] + get(s, b)[1] - (get(f, a)[1] + get(s, a)[1]));
    out.push(
      table(
        ['command', 'first join: total', 'top-level', 'existing room: total', 'top-level'],
        names.map((k) => [k.toUpperCase(), get(f, k)[1].toFixed(2), get(f, k)[2].toFixed(2), get(s, k)[1].toFixed(2), get(s, k)[2].toFixed(2)]),
      ),
    );
    out.push(`    Join ack latencies were taken with MONITOR on (Redis slower); they are not a join benchmark.`);
  }
  out.push('');
  out.push(
    `Redis is shared server-wide: nothing else may use it during the run. Other clients connected: ${m.other_clients_at_start ?? '?'} at start, ${m.other_clients_at_end ?? '?'} at end; ` +
      `commands from foreign connections seen by MONITOR in the join windows: ${results.joins ? results.joins.reduce((s, j) => s + j.foreign, 0) : '?'}. Own probes (INFO, CLIENT, MONITOR) are left out of the sums.`,
  );
  out.push(`Cleanup: ${cleanupReport.join('; ')}`);
  out.push(`Wall time ${m.wall_s ?? '?'} s.`);
  out.push(verdict(results.failures, 'OK: no lost messages, no signaling errors, clean counts'));
  console.log(out.join('\n'));
}
