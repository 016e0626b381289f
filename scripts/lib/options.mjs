/**
 * Command-line options of the benchmarks: declared once (type, range, default, help), parsed
 * with node:util parseArgs, checked against their ranges, and the usage text written from the
 * same declarations. Any bad option prints what is wrong and the usage, and exits 2;
 * -h/--help prints the usage and exits 0.
 */
import { parseArgs } from 'node:util';

/**
 * @typedef {{ type: 'integer', default: number, min: number, max: number, arg?: string, help: string }} IntegerOption
 * @typedef {{ type: 'number', default: number, min: number, max: number, arg?: string, help: string }} NumberOption
 * @typedef {{ type: 'integers', default: number[], min: number, max: number, arg?: string, help: string }} IntegerListOption comma-separated
 * @typedef {{ type: 'string', default?: string, arg?: string, help: string }} StringOption
 * @typedef {{ type: 'boolean', help: string }} BooleanOption
 * @typedef {IntegerOption | NumberOption | IntegerListOption | StringOption | BooleanOption} OptionSpec
 */

/**
 * @template {OptionSpec} S
 * @typedef {S extends { type: 'integer' | 'number' } ? number
 *   : S extends { type: 'integers' } ? number[]
 *   : S extends { type: 'boolean' } ? boolean
 *   : S extends { default: string } ? string
 *   : string | undefined} OptionValue
 */

/** --out FILE, as most benchmarks have it. */
export const OUT_OPTION = /** @type {const} */ ({ type: 'string', arg: 'FILE', help: 'also write the results as JSON to FILE' });

/** @param {OptionSpec} s */
function describe(s) {
  switch (s.type) {
    case 'integer':
    case 'number':
      return `${s.help} (${s.min}-${s.max}; default ${s.default})`;
    case 'integers':
      return `${s.help} (each ${s.min}-${s.max}; default ${s.default.join(',')})`;
    case 'string':
      return s.default === undefined ? s.help : `${s.help} (default ${s.default})`;
    case 'boolean':
      return s.help;
  }
}

/** @param {OptionSpec} s */
function argName(s) {
  if (s.type === 'boolean') return '';
  return ` ${s.arg ?? (s.type === 'integers' ? 'N,N,...' : s.type === 'string' ? 'VALUE' : 'N')}`;
}

/**
 * Parses process.argv against `spec`. `about` (optional) is printed under the usage line.
 * Returns the typed values and `fail`, which prints a message and the usage and exits 2
 * (for checks that involve several options).
 * @template {Record<string, OptionSpec>} S
 * @param {string} command how the usage line names the script, e.g. 'node scripts/bench-http.mjs'
 * @param {S} spec
 * @param {string} [about]
 * @returns {{ values: { [K in keyof S]: OptionValue<S[K]> }, fail: (message: string) => never }}
 */
export function parseOptions(command, spec, about) {
  const rows = Object.entries(spec).map(([name, s]) => [`--${name}${argName(s)}`, describe(s)]);
  rows.push(['-h, --help', 'print this text']);
  const width = Math.max(...rows.map(([left]) => (left ?? '').length));
  const usage = [`usage: ${command} [options]`, ...(about ? [about] : []), ...rows.map(([left, right]) => `  ${(left ?? '').padEnd(width)}  ${right}`)].join(
    '\n',
  );
  /** @param {number} code @returns {never} */
  const exitWithUsage = (code) => {
    (code ? console.error : console.log)(usage);
    process.exit(code);
  };
  /** @param {string} message @returns {never} */
  const fail = (message) => {
    console.error(message);
    return exitWithUsage(2);
  };

  /** @type {Record<string, { type: 'string' | 'boolean', default?: string | boolean, short?: string }>} */
  const config = { help: { type: 'boolean', short: 'h', default: false } };
  for (const [name, s] of Object.entries(spec)) {
    if (s.type === 'boolean') config[name] = { type: 'boolean', default: false };
    else if (s.type === 'string') config[name] = s.default === undefined ? { type: 'string' } : { type: 'string', default: s.default };
    else config[name] = { type: 'string', default: s.type === 'integers' ? s.default.join(',') : String(s.default) };
  }
  /** @type {Record<string, string | boolean | undefined>} */
  let raw = {};
  try {
    raw = parseArgs({ options: config, strict: true }).values;
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  if (raw.help) exitWithUsage(0);

  /** @type {Record<string, unknown>} */
  const values = {};
  for (const [name, s] of Object.entries(spec)) {
    const given = raw[name];
    if (s.type === 'integer') values[name] = integerIn(name, String(given), s.min, s.max, fail);
    else if (s.type === 'number') values[name] = numberIn(name, String(given), s.min, s.max, fail);
    else if (s.type === 'integers')
      values[name] = String(given)
        .split(',')
        .map((part) => integerIn(name, part.trim(), s.min, s.max, fail));
    else values[name] = given;
  }
  return { values: /** @type {{ [K in keyof S]: OptionValue<S[K]> }} */ (values), fail };
}

/**
 * Number(raw) if it is an integer in [min, max]; otherwise `fail`s with
 * "--<name> must be an integer from <min> to <max> (got ...)".
 * @param {string} name
 * @param {string} raw
 * @param {number} min
 * @param {number} max
 * @param {(message: string) => never} fail
 */
export function integerIn(name, raw, min, max, fail) {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return n;
}

/**
 * Number(raw) if it is a finite number in [min, max]; otherwise `fail`s.
 * @param {string} name
 * @param {string} raw
 * @param {number} min
 * @param {number} max
 * @param {(message: string) => never} fail
 */
function numberIn(name, raw, min, max, fail) {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) fail(`--${name} must be a number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return n;
}
