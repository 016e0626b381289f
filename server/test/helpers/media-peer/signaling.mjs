// Socket.IO signaling as the peer speaks it: server events forwarded to the parent and
// queued for waitEvent, and requests with an acknowledgement.
import { send } from './ipc.mjs';
import { S } from './state.mjs';

/** Forwards a server (or local 'peer:*') event to the parent and hands it to the oldest waiter, else queues it. */
export function pushEvent(event, payload) {
  send({ type: 'event', event, payload });
  const w = S.waiters.get(event);
  if (w && w.length) {
    const { resolve, timer } = w.shift();
    clearTimeout(timer);
    resolve(payload);
    return;
  }
  const q = S.queues.get(event) ?? [];
  q.push(payload);
  if (q.length > 500) q.shift();
  S.queues.set(event, q);
}

/** The oldest not-yet-taken payload of `event`, waiting up to `timeoutMs` for one. */
export function waitEvent(event, timeoutMs = 5000) {
  const q = S.queues.get(event);
  if (q && q.length) return Promise.resolve(q.shift());
  return new Promise((resolve, reject) => {
    const list = S.waiters.get(event) ?? [];
    const w = { resolve, timer: null };
    w.timer = setTimeout(() => {
      const i = list.indexOf(w);
      if (i >= 0) list.splice(i, 1);
      reject(new Error(`no '${event}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    list.push(w);
    S.waiters.set(event, list);
  });
}

/** Emits `event` and resolves with its ack, whatever it says. */
export function rawEmit(event, payload, timeoutMs) {
  const ms = timeoutMs ?? S.opts?.ackTimeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    if (!S.socket) return reject(new Error('not connected'));
    const cb = (err, res) => (err ? reject(new Error(`no ack for '${event}' within ${ms} ms`)) : resolve(res));
    if (payload === undefined) S.socket.timeout(ms).emit(event, cb);
    else S.socket.timeout(ms).emit(event, payload, cb);
  });
}

/** Like rawEmit, but rejects (with the error's code) unless the ack is ok. */
export async function request(event, payload) {
  const res = await rawEmit(event, payload);
  if (!res || res.ok !== true) {
    const e = new Error(`${event} failed: ${JSON.stringify(res?.error ?? res)}`);
    e.code = res?.error?.code;
    throw e;
  }
  return res;
}
