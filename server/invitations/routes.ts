import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CallAccess } from '../calls/access';
import { callJson } from '../calls/routes';
import type { CallService } from '../calls/service';
import { AppError } from '../errors';
import { errorResponses, Uuid } from '../http/schemas';
import { SECURITY } from '../http/openapi';
import { InviteOk, UserId } from '../protocol';
import type { Invitations, InvitationStore } from './index';

/**
 * Invitations over REST (your backend rings users into a call), a call's
 * history (participants, events, messages, invitations), and messages from
 * your backend into a user's inbox, through the same service as signaling's
 * invite (index.ts), which rings on whichever node holds the devices.
 */
const security = SECURITY.apiKeyOrToken;
export const invitationRoutes: FastifyPluginAsyncTypebox<{ calls: CallService; access: CallAccess; invitations: Invitations; store: InvitationStore }> = async (
  app,
  { calls, access, invitations, store },
) => {
  app.post(
    '/calls/:id/invitations',
    {
      schema: {
        tags: ['calls'],
        summary: 'Ring users into a call in progress',
        operationId: 'inviteToCall',
        description:
          'Every connected device of each user gets incoming-call; a user with no connected device gets a missed-call in its inbox (status offline); a user in the call already is not rung (in-call). API key, or a host or moderator token of the room.',
        security,
        params: Type.Object({ id: Uuid }, { additionalProperties: false }),
        body: Type.Object(
          { user_ids: Type.Array(UserId, { minItems: 1, maxItems: 50 }), timeout_seconds: Type.Optional(Type.Integer({ minimum: 5, maximum: 600 })) },
          { additionalProperties: false },
        ),
        response: { 201: InviteOk, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const principal = app.authenticate(request);
      const call = await calls.get(request.params.id);
      await access.authorize(principal, 'end', call.roomId, call.id);
      if (call.status === 'ended') throw new AppError('CALL_ALREADY_ENDED');
      const from = principal.kind === 'user' ? { user_id: principal.userId, display_name: principal.name ?? null } : null;
      if (from && request.body.user_ids.includes(from.user_id)) throw new AppError('CANNOT_TARGET_SELF', 'you cannot invite yourself');
      return reply.status(201).send(await invitations.invite(call.id, call.roomId, request.body.user_ids, from, request.body.timeout_seconds));
    },
  );

  app.get(
    '/calls/:id/history',
    {
      schema: {
        tags: ['calls'],
        summary: "A call's history: participants, events (DTMF, moderation), chat messages, invitations",
        operationId: 'getCallHistory',
        description: 'Private messages are listed for the API key only. API key, or any token of the room.',
        security,
        params: Type.Object({ id: Uuid }, { additionalProperties: false }),
        response: { 200: Type.Unknown(), ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request) => {
      const principal = app.authenticate(request);
      const call = await calls.get(request.params.id);
      await access.authorize(principal, 'read', call.roomId, call.id);
      const json = callJson(call, principal);
      return { call: json, participants: json.participants, ...(await store.history(call.id, principal.kind === 'admin')) };
    },
  );

  app.post(
    '/users/:user_id/messages',
    {
      schema: {
        tags: ['calls'],
        summary: "Put a message in a user's inbox (delivered now to its connected devices, or when it connects; until acknowledged)",
        operationId: 'sendUserMessage',
        security: SECURITY.apiKey,
        params: Type.Object({ user_id: UserId }, { additionalProperties: false }),
        body: Type.Object({ text: Type.String({ minLength: 1, maxLength: 2000 }), call_id: Type.Optional(Uuid) }, { additionalProperties: false }),
        response: { 201: Type.Object({ id: Type.String() }), ...errorResponses(400, 401, 403, 503) },
      },
    },
    async (request, reply) => {
      const principal = app.authenticate(request);
      if (principal.kind !== 'admin') throw new AppError('FORBIDDEN', 'messages to users need the API key');
      const item = await invitations.toInbox(request.params.user_id, 'message', {
        from: null,
        call_id: request.body.call_id ?? null,
        text: request.body.text,
        sent_at: new Date().toISOString(),
      });
      return reply.status(201).send({ id: item.id });
    },
  );
};
