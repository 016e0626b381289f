import type { Principal } from '../auth/roles';
import { AppError } from '../errors';
import type { Role } from '../protocol';
import { authorizeCall, type CallAction } from './policy';

/** What the live room says about a user, which can be newer than their token. */
export interface CurrentRights {
  /** Removed by a host or moderator from this call: no rights in it any more. */
  removed: boolean;
  /** The role they have in the room now (after `set-role`); null: the room says nothing. */
  role: Role | null;
}

/** The rooms of calls in progress (server/rooms implements it). */
export interface RoomRights {
  /** `callId` null: whichever call the room has in progress. */
  currentRights(room: string, callId: string | null, userId: string): Promise<CurrentRights>;
}

/**
 * REST authorisation from the room's current state, not only the token's claim:
 * a host demoted to participant in a call loses host rights over REST too, and a
 * removed user loses every right in that call (the token stays valid for others).
 * A token of another room is refused on its scope, before any look-up.
 */
export class CallAccess {
  constructor(private readonly rooms: RoomRights) {}

  /** Throws unless the caller, with their current role in the room, may perform `action` on a call there. */
  async authorize(principal: Principal, action: CallAction, roomId: string | undefined, callId: string | null = null): Promise<void> {
    authorizeCall(await this.current(principal, roomId, callId), action, roomId);
  }

  /** The caller as the room sees them now: their current role, or REMOVED_FROM_CALL. */
  async current(principal: Principal, roomId: string | undefined, callId: string | null = null): Promise<Principal> {
    if (principal.kind === 'admin' || roomId === undefined || principal.room !== roomId) return principal;
    const now = await this.rooms.currentRights(roomId, callId, principal.userId);
    if (now.removed) throw new AppError('REMOVED_FROM_CALL');
    return now.role !== null ? { ...principal, role: now.role } : principal;
  }
}
