import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

import { errorResponses, Uuid } from '../http/schemas';
import type { SignalingServer } from '../signaling/server';
import type { InvitationService } from './invitations';
import { authorizeCall } from './policy';
import { callJson } from './routes';
import type { CallService } from './service';
import { AppError } from '../errors';

/**
 * Invitations over REST (your backend rings users into a call), a call's
 * history (participants, events, messages, invitations), and messages from
 * your backend into a user's inbox. The ringing and delivery themselves are
 * signaling's (server/signaling/server.ts), on whichever node holds the devices.
 */
const security: Array<Record<string, string[]>> = [{ apiKey: [] }, { bearerToken: [] }];
const UserId = Type.String({ minLength: 1, maxLength: 255 });
const InviteOut = Type.Object({
  invitations: Type.Array(
    Type.Object({
      invitation_id: Type.Union([Uuid, Type.Null()]),
      user_id: Type.String(),
      status: Type.Union([Type.Literal('ringing'), Type.Literal('offline'), Type.Literal('in-call')]),
    }),
  ),
  expires_at: Type.String({ format: 'date-time' }),
});

export const invitationRoutes: FastifyPluginAsyncTypebox<{ calls: CallService; invitations: InvitationService; signaling: SignalingServer }> = async (
  app,
  { calls, invitations, signaling },
) => {
  app.post(
    '/calls/:id/invitations',
    {
      schema: {
        tags: ['calls'],
        summary: 'Ring users into a call in progress',
        description:
          'Every connected device of each user gets incoming-call; a user with no connected device gets a missed-call in its inbox (status offline); a user in the call already is not rung (in-call). API key, or a host or moderator token of the room.',
        security,
        params: Type.Object({ id: Uuid }, { additionalProperties: false }),
        body: Type.Object(
          { user_ids: Type.Array(UserId, { minItems: 1, maxItems: 50 }), timeout_seconds: Type.Optional(Type.Integer({ minimum: 5, maximum: 600 })) },
          { additionalProperties: false },
        ),
        response: { 201: InviteOut, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const principal = app.authenticate(request);
      const call = await calls.get(request.params.id);
      authorizeCall(principal, 'end', call.roomId);
      if (call.status === 'ended') throw new AppError('CALL_ALREADY_ENDED');
      const from = principal.kind === 'user' ? { user_id: principal.userId, display_name: principal.name ?? null } : null;
      if (from && request.body.user_ids.includes(from.user_id)) throw new AppError('CANNOT_TARGET_SELF', 'you cannot invite yourself');
      return reply.status(201).send(await signaling.invite(call.id, call.roomId, request.body.user_ids, from, request.body.timeout_seconds));
    },
  );

  app.get(
    '/calls/:id/history',
    {
      schema: {
        tags: ['calls'],
        summary: "A call's history: participants, events (DTMF, moderation), chat messages, invitations",
        description: 'Private messages are listed for the API key only. API key, or any token of the room.',
        security,
        params: Type.Object({ id: Uuid }, { additionalProperties: false }),
        response: { 200: Type.Unknown(), ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request) => {
      const principal = app.authenticate(request);
      const call = await calls.get(request.params.id);
      authorizeCall(principal, 'read', call.roomId);
      const json = callJson(call, principal);
      return { call: json, participants: json.participants, ...(await invitations.history(call.id, principal.kind === 'admin')) };
    },
  );

  app.post(
    '/users/:user_id/messages',
    {
      schema: {
        tags: ['calls'],
        summary: "Put a message in a user's inbox (delivered now to its connected devices, or when it connects; until acknowledged)",
        security: [{ apiKey: [] }],
        params: Type.Object({ user_id: UserId }, { additionalProperties: false }),
        body: Type.Object({ text: Type.String({ minLength: 1, maxLength: 2000 }), call_id: Type.Optional(Uuid) }, { additionalProperties: false }),
        response: { 201: Type.Object({ id: Type.String() }), ...errorResponses(400, 401, 403, 503) },
      },
    },
    async (request, reply) => {
      const principal = app.authenticate(request);
      if (principal.kind !== 'admin') throw new AppError('FORBIDDEN', 'messages to users need the API key');
      const item = await signaling.toInbox(request.params.user_id, 'message', {
        from: null,
        call_id: request.body.call_id ?? null,
        text: request.body.text,
        sent_at: new Date().toISOString(),
      });
      return reply.status(201).send({ id: item.id });
    },
  );
};
