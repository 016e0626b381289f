/**
 * Artillery processor for scripts/load/artillery.yml. mintToken asks Switchboard for a
 * token the way an application's backend does (POST /auth/token with the API key in
 * SWITCHBOARD_API_KEY); the Socket.IO engine connects before the first step, so the
 * token is sent with the `auth` message rather than in the handshake. The join clock
 * reports `switchboard.join_ack_ms` (join emitted → ack) as its own histogram.
 *
 * Environment: SWITCHBOARD_API_KEY (required), SWITCHBOARD_URL (default: the target),
 * LOAD_ROOM_SIZE (users per room, default 4), LOAD_RUN_ID (prefix of rooms and users,
 * default a random one per run).
 */
import { randomBytes } from 'node:crypto';

const RUN_ID = process.env.LOAD_RUN_ID || `load-${randomBytes(3).toString('hex')}`;
const ROOM_SIZE = Math.max(1, Number(process.env.LOAD_ROOM_SIZE) || 4);
const TOKEN_TTL_SECONDS = 600;
let users = 0;

/**
 * Artillery's per-virtual-user context and event emitter (the fields used here).
 * @typedef {{ vars: Record<string, unknown> }} Context
 * @typedef {{ emit(type: 'counter' | 'histogram', name: string, value: number): void }} Events
 */

/** @param {Context} context */
function baseUrl(context) {
  const url = process.env.SWITCHBOARD_URL || String(context.vars.target ?? '');
  if (!url) throw new Error('set SWITCHBOARD_URL (or the target) to the Switchboard server');
  return url.replace(/\/$/, '');
}

/**
 * A token for a new user of this run, in room `<run>-<n>` (ROOM_SIZE users each; the first one hosts).
 * @param {Context} context
 * @param {Events} events
 */
export async function mintToken(context, events) {
  const apiKey = process.env.SWITCHBOARD_API_KEY;
  if (!apiKey) throw new Error('set SWITCHBOARD_API_KEY to one of the server API_KEYS');
  const n = users++;
  const room = `${RUN_ID}-${Math.floor(n / ROOM_SIZE)}`;
  const userId = `${RUN_ID}-user-${n}`;
  const res = await fetch(`${baseUrl(context)}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify({
      user_id: userId,
      display_name: `Load ${n}`,
      room,
      role: n % ROOM_SIZE === 0 ? 'host' : 'participant',
      ttl_seconds: TOKEN_TTL_SECONDS,
    }),
  });
  if (res.status !== 201) throw new Error(`POST /auth/token answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  const { token } = /** @type {{ token: string }} */ (await res.json());
  context.vars.token = token;
  context.vars.room = room;
  context.vars.name = `Load ${n}`;
  events.emit('counter', 'switchboard.tokens', 1);
}

/** @param {Context} context */
export async function startJoinClock(context) {
  context.vars.joinStartedAt = performance.now();
}

/**
 * Runs only after the join ack matched `ok: true` (a failed match ends the virtual user).
 * @param {Context} context
 * @param {Events} events
 */
export async function stopJoinClock(context, events) {
  events.emit('histogram', 'switchboard.join_ack_ms', performance.now() - Number(context.vars.joinStartedAt));
  events.emit('counter', 'switchboard.join_ok', 1);
}
