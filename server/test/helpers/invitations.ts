import { issueToken } from './app';
import { useSignalingApp, type AnyAck, type Client, type SignalingApp } from './signaling';

/**
 * Invitations, the offline inbox and in-call chat over real sockets on one
 * app (PostgreSQL). INVITATION_TIMEOUT_SECONDS is 2 so that ringing runs out
 * quickly. Every test has its own rooms and user ids: the inbox is per user.
 */
export type Invitation = { invitation_id: string; user_id: string; status: 'ringing' | 'offline' | 'in-call' };
export type InviteAck = AnyAck & { invitations: Invitation[]; expires_at: string };

export interface InvitationsApp extends SignalingApp {
  /** A device of `userId` online but in no room (a participant token without a room). */
  online(userId: string, display_name?: string): Promise<Client>;
  /** A connection of `userId` in `room` with `role`, joined. */
  joined(room: string, userId: string, role?: 'host' | 'moderator' | 'participant', display_name?: string): Promise<Client>;
  /** The host invites `user_ids` to its call (expecting an ok ack). */
  invite(host: Client, user_ids: unknown, extra?: Record<string, unknown>): Promise<InviteAck>;
  /** The error code of `event`'s ack (undefined when ok). */
  code(c: Client, event: string, payload: unknown): Promise<string | undefined>;
}

export function useInvitationsApp(): InvitationsApp {
  const s = useSignalingApp('postgres', { INVITATION_TIMEOUT_SECONDS: '2' });
  const withName = (display_name?: string) => (display_name ? { display_name } : {});
  return Object.assign(s, {
    online: async (userId: string, display_name?: string) => s.connect(await issueToken(s.t, { user_id: userId, ...withName(display_name) })),
    joined: (room: string, userId: string, role: 'host' | 'moderator' | 'participant' = 'host', display_name?: string) =>
      s.join({ user_id: userId, room, role, ...withName(display_name) }, room, display_name),
    invite: async (host: Client, user_ids: unknown, extra: Record<string, unknown> = {}) =>
      (await host.ok('invite', { call_id: host.callId, user_ids, ...extra })) as InviteAck,
    code: async (c: Client, event: string, payload: unknown) => (await c.request(event, payload)).error?.code,
  });
}

export const isIso = (s: unknown) => typeof s === 'string' && !Number.isNaN(Date.parse(s));

/** Records the order of inbox events on a client (across event names). */
export function inboxOrder(c: Client): Array<[string, string]> {
  const seen: Array<[string, string]> = [];
  c.socket.onAny((event: string, payload: { id: string }) => {
    if (event === 'missed-call' || event === 'inbox-message') seen.push([event, payload.id]);
  });
  return seen;
}
