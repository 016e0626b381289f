/**
 * Well-formed text. JSON may carry a lone UTF-16 surrogate (`"x\ud800y"` is legal
 * JSON and JSON.parse accepts it), but such a string has no UTF-8 form: PostgreSQL
 * refuses it in `jsonb` and `text`, strict JSON parsers of webhook receivers refuse
 * it, and a browser never produces one from typed text. So every string that comes
 * in over REST or signaling is checked at the edge (INVALID_TEXT), and what goes out
 * to an outbox is made well-formed as a last line of defence.
 */

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** Nested containers walked before giving up (the edges bound the depth long before). */
const MAX_DEPTH = 64;

export function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

/** The string with every lone surrogate replaced by U+FFFD (String.prototype.toWellFormed). */
export function toWellFormed(s: string): string {
  return isWellFormed(s) ? s : s.replace(LONE_SURROGATES, '\uFFFD');
}

/**
 * The path (`display_name`, `metadata.topic`, `capabilities.tags[2]`, a key
 * `metadata.(a key)`) of the first string or object key in `value`, a parsed JSON
 * value, that is not well-formed, or undefined when there is none. Objects that
 * are not plain (streams, buffers) are not looked into.
 */
export function findIllFormedText(value: unknown, path = '', depth = 0): string | undefined {
  if (typeof value === 'string') return isWellFormed(value) ? undefined : path || '(value)';
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return undefined;
  // Parsed JSON only: never a stream (an upload body), a Buffer or another object's internals.
  const proto = Object.getPrototypeOf(value) as unknown;
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findIllFormedText(value[i], `${path}[${i}]`, depth + 1);
      if (found) return found;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    const here = path ? `${path}.${k}` : k;
    if (!isWellFormed(k)) return `${path ? `${path}.` : ''}(a key)`;
    const found = findIllFormedText(v, here, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** Text PostgreSQL stores (in text and jsonb alike): well-formed, without NUL characters. */
export function storableText(s: string): string {
  return toWellFormed(s.includes('\u0000') ? s.replaceAll('\u0000', '') : s);
}
