import type { FastifyBaseLogger } from 'fastify';
import pino, { type Logger } from 'pino';
import type { Config } from './config/config';
import type { DomainEvents } from './events';

/**
 * The server's log: JSON lines for collectors, or pino-pretty's readable lines
 * in a development terminal (LOG_FORMAT). Secrets are redacted wherever they
 * appear. One line per HTTP request (app.ts), and a line for each thing that
 * happens to a call (lifecycle below), so the log tells the story of a call.
 */
const REDACT = ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', '*.token', '*.privateKeyPem'];

export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>): Logger {
  return pino({
    level: config.logLevel,
    redact: { paths: REDACT, censor: '[redacted]' },
    ...(config.logFormat === 'pretty'
      ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true } } }
      : {}),
  });
}

/** Info lines for the lifecycle of calls: what an operator looks for first. */
export function logLifecycle(events: DomainEvents, log: FastifyBaseLogger): void {
  events.on('call.started', (e) => log.info({ call: e.call_id, room: e.room }, 'call started'));
  events.on('call.ended', (e) => log.info({ call: e.call_id, room: e.room }, 'call ended'));
  events.on('participant.joined', (e) =>
    log.info({ call: e.call_id, room: e.room, participant: e.participant_id, user: e.user_id, role: e.role }, 'participant joined'),
  );
  events.on('participant.left', (e) =>
    log.info({ call: e.call_id, room: e.room, participant: e.participant_id, user: e.user_id, reason: e.reason }, 'participant left'),
  );
  events.on('recording.started', (e) => log.info({ call: e.call_id, room: e.room, recording: e.recording_id, mode: e.mode }, 'recording started'));
  events.on('recording.finished', (e) => {
    const r = e.recording as { recording_id?: string; status?: string; mode?: string; duration?: number; files?: unknown[] };
    log.info(
      { call: e.call_id, room: e.room, recording: r.recording_id, status: r.status, mode: r.mode, seconds: r.duration, files: r.files?.length },
      'recording finished',
    );
  });
}
