/**
 * Numbers and tables the benchmarks report: rounding, nearest-rank percentiles, medians,
 * the latency summary most of them print, and plain-text tables.
 */

/**
 * x rounded to `digits` decimals; null for null, undefined and NaN (so a missing figure stays
 * missing in the JSON and shows as '-' in a table).
 * @param {number | null | undefined} x
 * @param {number} digits
 * @returns {number | null}
 */
export const round = (x, digits) => (x == null || Number.isNaN(x) ? null : Math.round(x * 10 ** digits) / 10 ** digits);
/** @param {number | null | undefined} x */
export const r1 = (x) => round(x, 1);
/** @param {number | null | undefined} x */
export const r2 = (x) => round(x, 2);
/** @param {number | null | undefined} x */
export const r3 = (x) => round(x, 3);

/**
 * KiB to MiB, one decimal; null stays null.
 * @param {number | null | undefined} kb
 */
export const mb = (kb) => (kb == null ? null : Math.round((kb / 1024) * 10) / 10);

/**
 * Nearest-rank percentile p (0-100) of an ascending array (non-empty).
 * @param {ArrayLike<number>} sorted
 * @param {number} p
 * @returns {number}
 */
export const nearestRank = (sorted, p) => /** @type {number} */ (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]);

/**
 * The finite numbers of xs, ascending.
 * @param {Iterable<number | null | undefined>} xs
 * @returns {number[]}
 */
export const finiteSorted = (xs) => /** @type {number[]} */ ([...xs].filter((x) => x != null && Number.isFinite(x))).sort((a, b) => a - b);

/**
 * Median of the values that are not null or undefined (with `finiteOnly`, of the finite
 * ones), or null if none.
 * @param {Iterable<number | null | undefined>} xs
 * @param {{ finiteOnly?: boolean }} [options]
 * @returns {number | null}
 */
export function median(xs, { finiteOnly = false } = {}) {
  const a = finiteOnly ? finiteSorted(xs) : /** @type {number[]} */ ([...xs].filter((x) => x != null)).sort((x, y) => x - y);
  if (!a.length) return null;
  const mid = a.length / 2;
  if (a.length % 2) return /** @type {number} */ (a[(a.length - 1) / 2]);
  const lo = /** @type {number} */ (a[mid - 1]);
  const hi = /** @type {number} */ (a[mid]);
  return (lo + hi) / 2;
}

/**
 * Mean of the finite values, or null if none.
 * @param {Iterable<number | null | undefined>} xs
 */
export function mean(xs) {
  const a = /** @type {number[]} */ ([...xs].filter((x) => x != null && Number.isFinite(x)));
  return a.length ? a.reduce((s, v) => s + v, 0) / a.length : null;
}

/** @typedef {{ n: number, p50: number | null, p90: number | null, p99: number | null, max: number | null, mean: number | null }} LatencySummary */

/**
 * n, nearest-rank p50/p90/p99, max and mean of latencies in ms, three decimals.
 * @param {ArrayLike<number>} values
 * @returns {LatencySummary}
 */
export function latencySummary(values) {
  if (!values.length) return { n: 0, p50: null, p90: null, p99: null, max: null, mean: null };
  const a = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of a) sum += v;
  return {
    n: a.length,
    p50: r3(nearestRank(a, 50)),
    p90: r3(nearestRank(a, 90)),
    p99: r3(nearestRank(a, 99)),
    max: r3(a[a.length - 1]),
    mean: r3(sum / a.length),
  };
}

/**
 * Sum of `pick` over xs.
 * @template T
 * @param {readonly T[]} xs
 * @param {(x: T) => number} pick
 */
export const sumOf = (xs, pick) => xs.reduce((s, x) => s + pick(x), 0);

/**
 * Adds the counts of each `counts` into one object (error codes seen by several generators).
 * @param {Iterable<Record<string, number>>} all
 */
export function addCounts(all) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const counts of all) for (const [k, v] of Object.entries(counts)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/**
 * A plain-text table: the first column left-aligned (right-aligned with firstColumn:
 * 'right'), the others right-aligned, null cells as '-'.
 * @param {string[]} headers
 * @param {ReadonlyArray<ReadonlyArray<unknown>>} rows
 * @param {{ firstColumn?: 'left' | 'right' }} [options]
 */
export function table(headers, rows, { firstColumn = 'left' } = {}) {
  const cells = rows.map((r) => r.map((c) => (c == null ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  /** @param {string[]} r */
  const line = (r) => r.map((c, i) => (i === 0 && firstColumn === 'left' ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

/**
 * The closing line of a report: "FAILED:" and one line per failure, or `ok`.
 * @param {readonly string[]} failures
 * @param {string} ok
 */
export const verdict = (failures, ok) => (failures.length ? `FAILED:\n${failures.map((f) => `  - ${f}`).join('\n')}` : ok);
