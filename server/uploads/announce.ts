import type { FastifyBaseLogger } from 'fastify';
import type { DomainEvents } from '../events';
import type { PrismaClient } from '../generated/prisma/client';
import type { CompletedUpload } from './service';

/**
 * A finished client-side recording is a recording.finished event, as the
 * server's are: mode 'client', its one file with the uploader and checksum.
 */
export function announceUploads(prisma: PrismaClient, events: DomainEvents, log: FastifyBaseLogger): (u: CompletedUpload) => void {
  return (u) => {
    prisma.call
      .findUnique({ where: { id: u.callId }, select: { roomId: true } })
      .then((call) => {
        const recording = {
          recording_id: u.uploadId,
          call_id: u.callId,
          status: 'completed',
          mode: 'client',
          reason: 'uploaded',
          duration: Math.round((u.endedAt.getTime() - u.startedAt.getTime()) / 100) / 10,
          files: [
            {
              id: u.recordingId,
              participant_id: u.participantId,
              user_id: u.userId,
              segment: 0,
              status: 'completed',
              file_path: u.filePath,
              file_name: u.fileName,
              mime_type: u.mimeType,
              size_bytes: u.sizeBytes,
              sha256: u.sha256,
              duration_ms: null,
              error: null,
            },
          ],
        };
        events.emit('recording.finished', { call_id: u.callId, room: call?.roomId ?? '', recording, at: u.endedAt.toISOString() });
      })
      .catch((err: unknown) => log.warn({ err, upload: u.uploadId }, 'could not announce a finished client upload'));
  };
}
