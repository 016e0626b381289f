import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

import { DOMAIN_EVENTS } from '../events';
import type { PrismaClient, WebhookDelivery } from '../generated/prisma/client';
import { errorResponses, PAGE_LIMIT_DEFAULT, PageLimit, Uuid } from '../http/schemas';
import { SECURITY } from '../http/openapi';
import { AppError } from '../errors';

/**
 * The admin view of the webhook outbox (API key only): recent deliveries,
 * newest first, and re-queueing one that failed for good.
 */
export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;

const Status = Type.Union(
  DELIVERY_STATUSES.map((s) => Type.Literal(s)),
  {
    description:
      'pending: waiting or being retried; delivered: a 2xx was received; failed: WEBHOOK_MAX_ATTEMPTS attempts failed, or the row was set aside (the database refused it; data null, see last_error)',
  },
);
const EventType = Type.Union(DOMAIN_EVENTS.map((e) => Type.Literal(e)));
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
const DeliveryId = Type.String({ pattern: '^[1-9][0-9]{0,17}$', description: 'The delivery row (a decimal integer, as a string)' });

const DeliveryOut = Type.Object(
  {
    id: DeliveryId,
    endpoint: Type.String(),
    event_id: Type.String({ format: 'uuid', description: 'The event: the webhook-id header is msg_<event_id>, the same on every attempt' }),
    event_type: Type.String(),
    call_id: Type.Union([Uuid, Type.Null()]),
    status: Status,
    attempts: Type.Integer({ minimum: 0 }),
    last_status: Type.Union([Type.Integer(), Type.Null()], { description: 'HTTP status of the last attempt; null: no response (network error, timeout)' }),
    last_error: Type.Union([Type.String(), Type.Null()]),
    created_at: Timestamp,
    delivered_at: NullableTimestamp,
    next_attempt_at: Timestamp,
  },
  { $id: 'WebhookDelivery', title: 'WebhookDelivery' },
);

const ListQuery = Type.Object(
  {
    status: Type.Optional(Status),
    event_type: Type.Optional(EventType),
    call_id: Type.Optional(Uuid),
    limit: PageLimit,
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);
const DeliveryParams = Type.Object({ id: DeliveryId }, { additionalProperties: false });

export function deliveryJson(d: WebhookDelivery): Static<typeof DeliveryOut> {
  return {
    id: d.id.toString(),
    endpoint: d.endpoint,
    event_id: d.eventId,
    event_type: d.eventType,
    call_id: d.callId,
    status: d.status as Static<typeof Status>,
    attempts: d.attempts,
    last_status: d.lastStatus,
    last_error: d.lastError,
    created_at: d.createdAt.toISOString(),
    delivered_at: d.deliveredAt ? d.deliveredAt.toISOString() : null,
    next_attempt_at: d.nextAttemptAt.toISOString(),
  };
}

// Keyset pagination on id (desc): ids follow insertion order.
const encodeCursor = (id: bigint): string => Buffer.from(`d:${id}`).toString('base64url');
function decodeCursor(s: string): bigint {
  const m = /^d:([1-9][0-9]{0,17})$/.exec(Buffer.from(s, 'base64url').toString('utf8'));
  if (!m?.[1]) throw new AppError('INVALID_CURSOR');
  return BigInt(m[1]);
}

export interface WebhookRoutesOptions {
  prisma: PrismaClient;
  /** Called after a re-queue (wakes the dispatcher). */
  onRequeued?: () => void;
}

const security = SECURITY.apiKey;

export const webhookRoutes: FastifyPluginAsyncTypebox<WebhookRoutesOptions> = async (app, { prisma, onRequeued }) => {
  app.addSchema(DeliveryOut);

  app.get(
    '/admin/webhooks/deliveries',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'List webhook deliveries, newest first',
        operationId: 'listWebhookDeliveries',
        description: 'One row per event and endpoint. Filters combine. Paginate with next_cursor.',
        security,
        querystring: ListQuery,
        response: {
          200: Type.Object({ items: Type.Array(Type.Ref('WebhookDelivery')), next_cursor: Type.Union([Type.String(), Type.Null()]) }),
          ...errorResponses(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      app.requireAdmin(request);
      const q = request.query;
      const limit = q.limit ?? PAGE_LIMIT_DEFAULT;
      const rows = await prisma.webhookDelivery.findMany({
        where: {
          ...(q.status ? { status: q.status } : {}),
          ...(q.event_type ? { eventType: q.event_type } : {}),
          ...(q.call_id ? { callId: q.call_id } : {}),
          ...(q.cursor ? { id: { lt: decodeCursor(q.cursor) } } : {}),
        },
        orderBy: { id: 'desc' },
        take: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return { items: page.map(deliveryJson), next_cursor: rows.length > limit && last ? encodeCursor(last.id) : null };
    },
  );

  app.post(
    '/admin/webhooks/deliveries/:id/retry',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Re-queue a failed delivery',
        operationId: 'retryWebhookDelivery',
        description:
          'A `failed` delivery becomes `pending` again with its attempts reset to 0 and is sent at once, with the same webhook-id. It is the oldest pending row of its call again, so later events of that call wait for it. 409 unless the delivery is `failed`.',
        security,
        params: DeliveryParams,
        response: { 202: Type.Ref('WebhookDelivery'), ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      app.requireAdmin(request);
      const id = BigInt(request.params.id);
      // The database's clock, as the dispatcher's (next_attempt_at holds UTC). One
      // transaction: the row stays locked until it is read back, so the dispatcher
      // (FOR UPDATE SKIP LOCKED) cannot attempt it in between and the answer shows it re-queued.
      const [count, row] = await prisma.$transaction(async (tx) => {
        const n = await tx.$executeRaw`
          UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = timezone('UTC', now())
          WHERE id = ${id} AND status = 'failed'`;
        return [n, await tx.webhookDelivery.findUnique({ where: { id } })] as const;
      });
      if (!row) throw new AppError('WEBHOOK_DELIVERY_NOT_FOUND', `no webhook delivery ${id}`);
      if (count === 0) throw new AppError('WEBHOOK_DELIVERY_NOT_FAILED', `webhook delivery ${id} is ${row.status}; only a failed delivery can be retried`);
      onRequeued?.();
      return reply.code(202).send(deliveryJson(row));
    },
  );
};
