import type { Principal } from '../auth/roles';
import type { ServerEvent, ServerMessage, ServerPayload } from '../protocol';

/**
 * What the room services need of the connection layer, and nothing more: the
 * Socket.IO adapter (server/signaling) implements it, the services never see a
 * socket. Ports live where they are used (LiveKit's routing interfaces).
 */

/** One client connection, as the services see it. */
export interface Session {
  /** The connection's id (Socket.IO's socket id): unique across nodes. */
  readonly id: string;
  /** Who authenticated it; unset until it has. */
  principal?: Principal;
  /** The room and participant it is joined as. */
  room?: string;
  participantId?: string;
  /** Gone already (its disconnect may have run before a join in flight finished). */
  readonly disconnected: boolean;
  /** The client's address (a trusted proxy's X-Forwarded-For, else the peer's), for participants.client_ip. */
  readonly clientIp: string | null;
}

/** Who receives a server event: a room's connections, a participant's, a user's devices, or one connection. On any node. */
export type Audience = { room: string } | { participant: string } | { user: string } | { connection: string };

export interface Clients {
  /** Sends an event to everyone in `to` (once each), but those in `except`. */
  send<E extends ServerEvent>(to: Audience | readonly Audience[], event: E, payload: ServerPayload<E>, except?: Audience): void;
  /** The same, for an event and its payload carried together (the SFU's notifications). */
  sendMessage(to: Audience | readonly Audience[], message: ServerMessage, except?: Audience): void;
  /** Puts a connection into its room's and its participant's audiences. */
  enter(session: Session, room: string, participantId: string): Promise<void>;
  /** Takes a connection (on any node) out of a room's audience; on this node it also forgets its joined room. */
  leave(connectionId: string, room: string): void;
  /** Takes every connection out of a room's audience (the call ended). */
  clear(room: string): void;
  /** Closes a connection on any node for good (removed, replaced): it does not reconnect by itself. */
  disconnect(connectionId: string): void;
  /** Whether the user has a connected device, on any node. */
  online(userId: string): Promise<boolean>;
}
