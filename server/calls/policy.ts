import type { Principal } from '../auth/roles';
import type { CallStatus } from '../protocol';

export type { CallStatus };
import { AppError } from '../errors';

/**
 * Who may do what with calls over REST. Plain logic, no I/O.
 *
 * - The API key (admin: your backend) may do everything.
 * - A user token acts only in the room it is scoped to:
 *   - read a call of its room: any role;
 *   - list calls: only those of its room;
 *   - create the call of its room: host;
 *   - end a call of its room: host or moderator.
 * - A token without a room scope (participants only; see TokenService) has no
 *   REST rights over calls: it can join rooms over signaling, nothing more.
 */
export type CallAction = 'create' | 'read' | 'list' | 'end';

const ROLE_ACTIONS: Record<string, readonly CallAction[]> = {
  host: ['create', 'read', 'list', 'end'],
  moderator: ['read', 'list', 'end'],
  participant: ['read', 'list'],
};

/** Throws a 403 AppError unless `principal` may perform `action` on a call in `roomId`. */
export function authorizeCall(principal: Principal, action: CallAction, roomId: string | undefined): void {
  if (principal.kind === 'admin') return;
  if (principal.room === undefined) {
    throw new AppError('FORBIDDEN', 'this token is not scoped to a room');
  }
  if (roomId !== undefined && roomId !== principal.room) {
    throw new AppError('ROOM_SCOPE_MISMATCH');
  }
  if (!ROLE_ACTIONS[principal.role]?.includes(action)) {
    throw new AppError('FORBIDDEN', `a ${principal.role} may not ${action} calls`);
  }
}

/** Call statuses (server/protocol/enums.ts) and the transitions between them. */

const TRANSITIONS: Record<CallStatus, readonly CallStatus[]> = {
  created: ['active', 'ended'],
  active: ['ended'],
  ended: [],
};

export const canTransition = (from: CallStatus, to: CallStatus): boolean => TRANSITIONS[from].includes(to);
