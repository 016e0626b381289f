import { EventEmitter } from 'node:events';

/**
 * What happened in calls, for integrations (webhooks): emitted by signaling,
 * the recorder and the call service's status changes, on the node where it
 * happened. Payloads are plain JSON with snake_case fields, as sent out.
 */
export interface DomainEventMap {
  'call.started': [{ call_id: string; room: string; at: string }];
  'call.ended': [{ call_id: string; room: string; at: string }];
  'participant.joined': [{ call_id: string; room: string; participant_id: string; user_id: string; display_name: string | null; role: string; at: string }];
  'participant.left': [{ call_id: string; room: string; participant_id: string; user_id: string; reason: string; at: string }];
  'recording.started': [{ call_id: string; room: string; recording_id: string; mode: string; by: string | null; at: string }];
  'recording.finished': [{ call_id: string; room: string; recording: unknown; at: string }];
  'invitation.answered': [
    { call_id: string; room: string; invitation_id: string; user_id: string; answer: 'accepted' | 'declined' | 'expired'; reason: string | null; at: string },
  ];
}
export type DomainEventName = keyof DomainEventMap;
export const DOMAIN_EVENTS: readonly DomainEventName[] = [
  'call.started',
  'call.ended',
  'participant.joined',
  'participant.left',
  'recording.started',
  'recording.finished',
  'invitation.answered',
];

export class DomainEvents extends EventEmitter<DomainEventMap> {}
