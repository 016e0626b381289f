import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { admin, type TestApp } from './app';
import { sleep, until } from './wait';

/**
 * A webhook receiver for tests, on 127.0.0.1: it checks every signature
 * itself, records each request and answers as a test tells it to.
 */
export const SECRET = 'whsec-test-0123456789abcdef0123456789abcdef';
/** Backoffs and polls short enough for a test to see several attempts. */
export const FAST = { backoffBaseMs: 50, backoffMaxMs: 400, pollIntervalMs: 100 };

export interface Body {
  id: string;
  type: string;
  created_at: string;
  data: { call_id: string; reason?: string; participant_id?: string; user_id?: string; seq?: number; [k: string]: unknown };
}
export interface Received {
  webhookId: string;
  timestamp: string;
  valid: boolean;
  status: number;
  raw: string;
  body: Body;
  headers: IncomingMessage['headers'];
}

/**
 * What a receiver does (written here from the documentation, not with the
 * server's own helper): HMAC-SHA256 over "<timestamp>.<raw body>", compared in
 * constant time, timestamp within 5 minutes.
 */
export function receiverVerifies(secret: string, headers: Record<string, string | string[] | undefined>, raw: string, nowMs = Date.now()): boolean {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sig = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sig !== 'string') return false;
  if (!/^\d+$/.test(ts) || Math.abs(nowMs / 1000 - Number(ts)) > 300) return false;
  const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(`${ts}.${raw}`).digest('hex')}`);
  return sig.split(' ').some((s) => {
    const given = Buffer.from(s);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** A webhook endpoint on 127.0.0.1 that verifies, records and answers as told. */
export class Receiver {
  private server: Server | undefined;
  port = 0;
  readonly requests: Received[] = [];
  /** Answer 503 to this many requests first. */
  failFirst = 0;
  /** Otherwise: a status to answer instead of 200 (null: 200), possibly after a while. */
  answer: (b: Body) => number | null | Promise<number | null> = () => null;
  delayMs = 0;

  constructor(private readonly secret: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async start(port = this.port): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const valid = req.method === 'POST' && receiverVerifies(this.secret, req.headers, raw);
    let body: Body;
    try {
      body = JSON.parse(raw) as Body;
    } catch {
      body = { id: '', type: 'unparseable', created_at: '', data: { call_id: '' } };
    }
    if (this.delayMs) await sleep(Math.random() * this.delayMs);
    let status = 200;
    if (!valid) status = 400;
    else if (this.failFirst > 0) {
      this.failFirst--;
      status = 503;
    } else status = (await this.answer(body)) ?? 200;
    this.requests.push({
      webhookId: String(req.headers['webhook-id']),
      timestamp: String(req.headers['webhook-timestamp']),
      valid,
      status,
      raw,
      body,
      headers: req.headers,
    });
    res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : `nope ${status}`);
  }

  /** Accepted requests, deduplicated by webhook-id (at-least-once), in arrival order. */
  delivered(): Received[] {
    const seen = new Set<string>();
    return this.requests.filter((r) => r.status >= 200 && r.status < 300 && !seen.has(r.webhookId) && seen.add(r.webhookId));
  }

  /** Waits until exactly `count` events of the call were delivered (or at least `count`), and returns them. */
  waitForEvents(callId: string, count: number, { atLeast = false } = {}): Promise<Body[]> {
    return until(
      `${atLeast ? 'at least ' : ''}${count} events of call ${callId}`,
      () => {
        const e = this.eventsFor(callId);
        return (atLeast ? e.length >= count : e.length === count) && e;
      },
      PATIENT,
    );
  }

  eventsFor(callId: string): Body[] {
    return this.delivered()
      .filter((r) => r.body.data.call_id === callId)
      .map((r) => r.body);
  }
}

/** Deliveries go through backoffs and restarts: wait longer than until's default. */
export const PATIENT = { timeoutMs: 15_000 };

/** A row of GET /admin/webhooks/deliveries. */
export type DeliveryJson = {
  id: string;
  endpoint: string;
  event_id: string;
  event_type: string;
  call_id: string | null;
  status: string;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
  next_attempt_at: string;
};

/** The app's delivery rows of a call (GET /admin/webhooks/deliveries), newest first. */
export async function deliveriesOf(t: TestApp, callId: string): Promise<DeliveryJson[]> {
  return (await t.app.inject({ method: 'GET', url: `/admin/webhooks/deliveries?call_id=${callId}&limit=100`, headers: admin })).json().items as DeliveryJson[];
}

/** Waits until the app lists `count` delivery rows of the call, all delivered, and returns them. */
export function deliveredRows(t: TestApp, callId: string, count: number): Promise<DeliveryJson[]> {
  return until(
    `${count} delivered rows of call ${callId}`,
    async () => {
      const d = await deliveriesOf(t, callId);
      return d.length === count && d.every((x) => x.status === 'delivered') && d;
    },
    PATIENT,
  );
}
