import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { admin, type TestApp } from './app';
import { sleep, until } from './wait';

/**
 * A webhook receiver for tests, on 127.0.0.1: every request is verified by the
 * Standard Webhooks libraries receivers use (`standardwebhooks` and `svix`, never
 * code of ours), recorded, and answered as a test tells it to.
 */
/** A secret in the spec's form: whsec_ + base64 of 32 bytes. */
export const SECRET = `whsec_${Buffer.from('switchboard-test-webhook-key-32b').toString('base64')}`;
/** Backoffs and polls short enough for a test to see several attempts. */
export const FAST = { backoffBaseMs: 50, backoffMaxMs: 400, pollIntervalMs: 100 };

/** The Standard Webhooks envelope. */
export interface Body {
  type: string;
  timestamp: string;
  data: { call_id: string; reason?: string; participant_id?: string; user_id?: string; seq?: number; [k: string]: unknown };
}
/** A delivered event: its body and its webhook-id. */
export type Event = Body & { webhookId: string };
export interface Received {
  webhookId: string;
  timestamp: string;
  /** Both libraries accepted it. */
  valid: boolean;
  /** Each library's verdict: undefined when it accepted, else its error message. */
  rejectedBy: { standardwebhooks?: string; svix?: string };
  status: number;
  raw: string;
  body: Body;
  headers: IncomingMessage['headers'];
  /** Date.now() when the request had arrived (before the answer). */
  at: number;
}

const headerRecord = (h: IncomingMessage['headers']): Record<string, string> =>
  Object.fromEntries(Object.entries(h).flatMap(([k, v]) => (typeof v === 'string' ? [[k, v]] : Array.isArray(v) ? [[k, v.join(', ')]] : [])));

/** svix ships only as an ES module: imported once, dynamically. */
let svix: Promise<typeof import('svix', { with: { 'resolution-mode': 'import' } })> | undefined;
const loadSvix = () => (svix ??= import('svix'));

/**
 * What the README's receiver does: `standardwebhooks` verifies (signature over the
 * raw body, timestamp within 5 minutes); `svix` must agree. Returns each one's
 * error, nothing when both accept.
 */
export async function libraryVerdicts(
  secret: string,
  headers: IncomingMessage['headers'] | Record<string, string>,
  raw: string,
  opts?: { format: 'raw' },
): Promise<Received['rejectedBy']> {
  const SvixWebhook = (await loadSvix()).Webhook;
  const h = headerRecord(headers);
  const out: Received['rejectedBy'] = {};
  try {
    new StandardWebhook(secret, opts).verify(raw, h);
  } catch (err) {
    out.standardwebhooks = (err as Error).message;
  }
  try {
    new SvixWebhook(secret, opts).verify(raw, h);
  } catch (err) {
    out.svix = (err as Error).message;
  }
  return out;
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

  constructor(
    private readonly secret: string,
    /** `raw`: a legacy plain secret. */
    private readonly format?: { format: 'raw' },
  ) {}

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
    const at = Date.now();
    const rejectedBy = await libraryVerdicts(this.secret, req.headers, raw, this.format);
    const valid = req.method === 'POST' && !rejectedBy.standardwebhooks && !rejectedBy.svix;
    let body: Body;
    try {
      body = JSON.parse(raw) as Body;
    } catch {
      body = { type: 'unparseable', timestamp: '', data: { call_id: '' } };
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
      rejectedBy,
      status,
      raw,
      body,
      headers: req.headers,
      at,
    });
    res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : `nope ${status}`);
  }

  /** Accepted requests, deduplicated by webhook-id (at-least-once), in arrival order. */
  delivered(): Received[] {
    const seen = new Set<string>();
    return this.requests.filter((r) => r.status >= 200 && r.status < 300 && !seen.has(r.webhookId) && seen.add(r.webhookId));
  }

  /** Waits until exactly `count` events of the call were delivered (or at least `count`), and returns them. */
  waitForEvents(callId: string, count: number, { atLeast = false } = {}): Promise<Event[]> {
    return until(
      `${atLeast ? 'at least ' : ''}${count} events of call ${callId}`,
      () => {
        const e = this.eventsFor(callId);
        return (atLeast ? e.length >= count : e.length === count) && e;
      },
      PATIENT,
    );
  }

  eventsFor(callId: string): Event[] {
    return this.delivered()
      .filter((r) => r.body.data.call_id === callId)
      .map((r) => ({ ...r.body, webhookId: r.webhookId }));
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
