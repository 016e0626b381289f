import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Principal } from '../auth/roles';
import { errorResponses, PAGE_LIMIT_DEFAULT, PageLimit, RoomId, Uuid } from '../http/schemas';
import { SECURITY } from '../http/openapi';
import { CallModeSchema, CallStatusSchema, withDefault } from '../protocol';
import type { CallAccess } from './access';
import type { CallService, CallWithCount, CallWithParticipants } from './service';

const Status = CallStatusSchema;
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
const Metadata = Type.Record(Type.String(), Type.Unknown(), { description: 'Free-form JSON object of your own' });

const ParticipantOut = Type.Object({
  id: Uuid,
  user_id: Type.String(),
  display_name: Type.Union([Type.String(), Type.Null()]),
  role: Type.String(),
  joined_at: Timestamp,
  left_at: NullableTimestamp,
  client_ip: Type.Union([Type.String(), Type.Null()], { description: 'Shown to the API key only' }),
  metadata: Metadata,
});

const CallBase = {
  id: Uuid,
  room_id: Type.String(),
  status: Status,
  recording: Type.Boolean(),
  mode: CallModeSchema,
  metadata: Metadata,
  created_at: Timestamp,
  started_at: NullableTimestamp,
  ended_at: NullableTimestamp,
};
const CallOut = Type.Object({ ...CallBase, participants: Type.Array(ParticipantOut) }, { $id: 'Call', title: 'Call' });
const CallSummaryOut = Type.Object({ ...CallBase, participant_count: Type.Integer() }, { title: 'CallSummary' });

const CreateCallBody = Type.Object(
  {
    room_id: Type.Optional(RoomId),
    mode: Type.Optional(withDefault(CallModeSchema, 'sfu')),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);
const CallParams = Type.Object({ id: Uuid }, { additionalProperties: false });
const ListQuery = Type.Object(
  {
    status: Type.Optional(Status),
    room_id: Type.Optional(RoomId),
    limit: PageLimit,
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

type CallRow = Omit<CallWithParticipants, 'participants'>;

function baseJson(call: CallRow) {
  return {
    id: call.id,
    room_id: call.roomId,
    status: call.status as Static<typeof Status>,
    recording: call.recording,
    mode: call.mode as 'sfu' | 'p2p',
    metadata: call.metadata as Record<string, unknown>,
    created_at: call.createdAt.toISOString(),
    started_at: iso(call.startedAt),
    ended_at: iso(call.endedAt),
  };
}

export function callJson(call: CallWithParticipants, principal: Principal): Static<typeof CallOut> {
  return {
    ...baseJson(call),
    participants: call.participants.map((p) => ({
      id: p.id,
      user_id: p.userId,
      display_name: p.displayName,
      role: p.role,
      joined_at: p.joinedAt.toISOString(),
      left_at: iso(p.leftAt),
      client_ip: principal.kind === 'admin' ? p.clientIp : null,
      metadata: p.metadata as Record<string, unknown>,
    })),
  };
}

function summaryJson(call: CallWithCount): Static<typeof CallSummaryOut> {
  return {
    ...baseJson(call),
    participant_count: call._count.participants,
  };
}

const security = SECURITY.apiKeyOrToken;

export const callRoutes: FastifyPluginAsyncTypebox<{ calls: CallService; access: CallAccess }> = async (app, { calls, access }) => {
  app.addSchema(CallOut);

  app.post(
    '/calls',
    {
      schema: {
        tags: ['calls'],
        summary: 'Create a call room',
        operationId: 'createCall',
        description: "API key, or a host token of that room (room_id defaults to the token's room). 409 if the room already has a call that has not ended.",
        security,
        body: CreateCallBody,
        response: { 201: Type.Ref('Call'), ...errorResponses(400, 401, 403, 409, 413, 415, 503) },
      },
    },
    async (request, reply) => {
      const principal = app.authenticate(request);
      const roomId = request.body.room_id ?? (principal.kind === 'user' ? principal.room : undefined);
      await access.authorize(principal, 'create', roomId);
      const call = await calls.create({ roomId, metadata: request.body.metadata, mode: request.body.mode });
      return reply.status(201).send(callJson(call, principal));
    },
  );

  app.get(
    '/calls',
    {
      schema: {
        tags: ['calls'],
        summary: 'List calls, newest first',
        operationId: 'listCalls',
        description: 'API key: all calls. A room-scoped token: the calls of its room. Paginate with next_cursor.',
        security,
        querystring: ListQuery,
        response: {
          200: Type.Object({ items: Type.Array(CallSummaryOut), next_cursor: Type.Union([Type.String(), Type.Null()]) }),
          ...errorResponses(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const principal = app.authenticate(request);
      const q = request.query;
      await access.authorize(principal, 'list', q.room_id ?? (principal.kind === 'user' ? principal.room : undefined));
      const roomId = principal.kind === 'user' ? principal.room : q.room_id;
      const page = await calls.list({ status: q.status, roomId, limit: q.limit ?? PAGE_LIMIT_DEFAULT, cursor: q.cursor });
      return { items: page.items.map(summaryJson), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/calls/:id',
    {
      schema: {
        tags: ['calls'],
        summary: 'Get a call with its participants',
        operationId: 'getCall',
        security,
        params: CallParams,
        response: { 200: Type.Ref('Call'), ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request) => {
      const principal = app.authenticate(request);
      const call = await calls.get(request.params.id);
      await access.authorize(principal, 'read', call.roomId, call.id);
      return callJson(call, principal);
    },
  );

  app.post(
    '/calls/:id/end',
    {
      schema: {
        tags: ['calls'],
        summary: 'End a call for everyone',
        operationId: 'endCall',
        description: "API key, or a host or moderator token of the call's room. 409 if it has already ended.",
        security,
        params: CallParams,
        response: { 200: Type.Ref('Call'), ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request) => {
      const principal = app.authenticate(request);
      const existing = await calls.get(request.params.id);
      await access.authorize(principal, 'end', existing.roomId, existing.id);
      return callJson(await calls.end(existing.id), principal);
    },
  );
};
