import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CallAccess } from '../calls/access';
import type { CallService } from '../calls/service';
import { errorResponses, Uuid } from '../http/schemas';
import { SECURITY } from '../http/openapi';
import { RecordingModeSchema, type RecordingMode } from '../protocol';
import type { FinishedRecording } from './recorder';

/** Starts and stops a room's recording on the node that carries its media. */
export interface RecordingControl {
  startRecording(
    room: string,
    callId: string,
    by: string | null,
    mode?: RecordingMode,
  ): Promise<{ recording_id: string; started_at: string; mode: RecordingMode }>;
  stopRecording(room: string, reason: string): Promise<FinishedRecording | null>;
}

/**
 * Start and stop a call's recording over REST: the API key, or a host or
 * moderator token of the call's room (the same rule as ending the call).
 * The recording itself is described in recorder.ts; files are served by routes.ts.
 */
const Params = Type.Object({ id: Uuid }, { additionalProperties: false });
const security = SECURITY.apiKeyOrToken;

export const recordingControlRoutes: FastifyPluginAsyncTypebox<{ calls: CallService; access: CallAccess; recorder: RecordingControl }> = async (
  app,
  { calls, access, recorder },
) => {
  app.post(
    '/calls/:id/recordings',
    {
      // The body is optional (curl -X POST with none): validate an empty object then.
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {};
      },
      schema: {
        tags: ['recordings'],
        summary: "Start recording a call in progress (each participant's audio and video into WebM)",
        operationId: 'startRecording',
        security,
        params: Params,
        body: Type.Object(
          { mode: Type.Optional(RecordingModeSchema) },
          { additionalProperties: false, description: 'Optional: no body starts a per-participant recording' },
        ),
        response: {
          201: Type.Object({ recording_id: Uuid, started_at: Type.String({ format: 'date-time' }), mode: RecordingModeSchema }),
          ...errorResponses(400, 401, 403, 404, 409, 503),
        },
      },
    },
    async (request, reply) => {
      const principal = app.authenticate(request);
      const call = await calls.get(request.params.id);
      await access.authorize(principal, 'end', call.roomId, call.id);
      return reply.status(201).send(await recorder.startRecording(call.roomId, call.id, null, request.body.mode));
    },
  );

  app.post(
    '/calls/:id/recordings/stop',
    {
      schema: {
        tags: ['recordings'],
        summary: 'Stop recording a call; harmless when it is not being recorded (stopped: false)',
        operationId: 'stopRecording',
        security,
        params: Params,
        response: {
          200: Type.Object({ stopped: Type.Boolean(), recording: Type.Optional(Type.Unknown()) }),
          ...errorResponses(400, 401, 403, 404, 503),
        },
      },
    },
    async (request) => {
      const principal = app.authenticate(request);
      const call = await calls.get(request.params.id);
      await access.authorize(principal, 'end', call.roomId, call.id);
      const finished = await recorder.stopRecording(call.roomId, 'stopped');
      return finished ? { stopped: true, recording: finished } : { stopped: false };
    },
  );
};
