import type { FastifyBaseLogger } from 'fastify';
import type { CallService } from '../calls/service';
import { AppError } from '../errors';
import type { DomainEvents } from '../events';
import type { AckResult, InviteOk, Payload, Sender, ServerPayload } from '../protocol';
import type { Clients, RoomContext, Session } from '../rooms';
import { authorize } from '../rooms/policy';
import type { InboxEntry, InvitationRow, InvitationStore } from './store';

export { InvitationStore, type InboxEntry, type InvitationRow } from './store';

export interface InvitationsDeps {
  store: InvitationStore;
  rooms: RoomContext;
  calls: CallService;
  clients: Clients;
  events: DomainEvents;
  log: FastifyBaseLogger;
  /** Ringing time when the caller gives none (INVITATION_TIMEOUT_SECONDS). */
  timeoutMs: number;
}

type MissedCall = Omit<ServerPayload<'missed-call'>, 'id'>;
type InboxMessage = Omit<ServerPayload<'inbox-message'>, 'id'>;

/**
 * Ringing users into a call on every device they have connected (any node),
 * the first answer winning; expiry into a missed call; the inbox, delivered
 * until a device acknowledges it; in-call chat. Signaling and REST both call
 * it. Ringing timers run on the node that rang; the database decides races
 * (a conditional update per answer).
 */
export class Invitations {
  /** Ringing invitations timed on this node. */
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly purgeTimer: NodeJS.Timeout;

  constructor(private readonly deps: InvitationsDeps) {
    // Acknowledged and expired inbox items are purged hourly.
    this.purgeTimer = setInterval(() => void deps.store.purge().catch((err: unknown) => deps.log.warn({ err }, 'purging inboxes failed')), 3_600_000);
    this.purgeTimer.unref();
    // The call ended: its ringing invitations stop.
    deps.calls.on('call-state-changed', (c) => {
      if (c.status === 'ended') this.stopRinging(c.id).catch((err: unknown) => deps.log.warn({ err }, 'stopping the invitations of an ended call failed'));
    });
  }

  // ---- signaling -----------------------------------------------------------------------
  /** invite: a host or moderator of the call, as it is now. */
  async inviteBy(session: Session, p: Payload<'invite'>): Promise<AckResult<'invite'>> {
    const { room, me } = await this.deps.rooms.joined(session, p.call_id);
    authorize((await this.deps.rooms.current(room.room, me.id)).role, 'invite');
    if (p.user_ids.includes(me.userId)) throw new AppError('CANNOT_TARGET_SELF', 'you cannot invite yourself');
    return this.invite(room.callId, room.room, p.user_ids, { user_id: me.userId, display_name: me.displayName }, p.timeout_seconds);
  }

  /** accept / decline, from any device of the invitee; the first answer wins, the others stop ringing. */
  async answer(session: Session, invitationId: string, status: 'accepted', reason?: string): Promise<AckResult<'accept'>>;
  async answer(session: Session, invitationId: string, status: 'declined', reason?: string): Promise<AckResult<'decline'>>;
  async answer(session: Session, invitationId: string, status: 'accepted' | 'declined', reason?: string): Promise<AckResult<'accept'> | AckResult<'decline'>> {
    const user = this.deps.rooms.user(session);
    const { store, clients, events } = this.deps;
    const mine = await store.mine(invitationId, user.userId);
    const inv = await store.settle(mine.id, status, reason);
    if (!inv) return store.notPending(await store.mine(invitationId, user.userId));
    this.stopTimer(inv.id);
    clients.send({ user: inv.userId }, 'incoming-call-ended', { invitation_id: inv.id, call_id: inv.callId, reason: status });
    events.emit('invitation.answered', {
      call_id: inv.callId,
      room: inv.roomId,
      invitation_id: inv.id,
      user_id: inv.userId,
      answer: status,
      reason: reason ?? null,
      at: new Date().toISOString(),
    });
    if (status === 'accepted') {
      clients.send(this.inviterOf(inv), 'invitation-accepted', { invitation_id: inv.id, call_id: inv.callId, user_id: inv.userId });
      return { invitation_id: inv.id, call_id: inv.callId, room: inv.roomId };
    }
    clients.send(this.inviterOf(inv), 'invitation-declined', { invitation_id: inv.id, call_id: inv.callId, user_id: inv.userId, reason: reason ?? null });
    return {};
  }

  async ack(session: Session, p: Payload<'ack-inbox'>): Promise<AckResult<'ack-inbox'>> {
    return { acked: await this.deps.store.ack(this.deps.rooms.user(session).userId, p.ids) };
  }

  /** In-call chat: to the room (kept with the call), or privately to a user of the call (through its inbox). */
  async message(session: Session, p: Payload<'message'>): Promise<AckResult<'message'>> {
    const { room, me } = await this.deps.rooms.joined(session, p.call_id);
    const { store, clients } = this.deps;
    if (p.to_user_id !== undefined) {
      if (p.to_user_id === me.userId) throw new AppError('CANNOT_TARGET_SELF', 'you cannot message yourself');
      if (!(await store.knowsCall(room.callId, p.to_user_id))) throw new AppError('USER_NOT_IN_CALL');
    }
    const msg = await store.addMessage({
      callId: room.callId,
      participantId: me.id,
      userId: me.userId,
      displayName: me.displayName,
      toUserId: p.to_user_id ?? null,
      text: p.text,
    });
    if (p.to_user_id !== undefined) {
      await this.toInbox(p.to_user_id, 'message', {
        from: { user_id: me.userId, display_name: me.displayName },
        call_id: room.callId,
        text: p.text,
        sent_at: msg.sent_at,
      });
    } else {
      const { to_user_id: _private, ...chat } = msg;
      clients.send({ room: room.room }, 'message', chat);
    }
    return { message_id: msg.message_id, sent_at: msg.sent_at };
  }

  // ---- signaling and REST --------------------------------------------------------------
  /**
   * Rings users into a call. A user in the call already is not rung; an
   * offline one gets a missed call in its inbox at once.
   */
  async invite(callId: string, roomName: string, userIds: string[], from: Sender, timeoutSeconds?: number): Promise<InviteOk> {
    const { store, clients, rooms } = this.deps;
    const expiresAt = new Date(Date.now() + (timeoutSeconds !== undefined ? timeoutSeconds * 1000 : this.deps.timeoutMs));
    const inCall = new Set((await rooms.store.listParticipants(roomName)).map((p) => p.userId));
    const out: InviteOk['invitations'] = [];
    for (const userId of [...new Set(userIds)]) {
      if (inCall.has(userId)) {
        out.push({ invitation_id: null, user_id: userId, status: 'in-call' });
        continue;
      }
      const existing = await store.ringing(callId, userId);
      if (existing) {
        out.push({ invitation_id: existing.id, user_id: userId, status: 'ringing' });
        continue;
      }
      const online = await clients.online(userId);
      const inv = await store.create({
        callId,
        roomId: roomName,
        userId,
        inviterUserId: from?.user_id ?? null,
        inviterName: from?.display_name ?? null,
        status: online ? 'ringing' : 'missed',
        expiresAt,
      });
      if (online) {
        clients.send({ user: userId }, 'incoming-call', { invitation_id: inv.id, call_id: callId, room: roomName, from, expires_at: expiresAt.toISOString() });
        const timer = setTimeout(() => void this.expire(inv.id), Math.max(0, expiresAt.getTime() - Date.now()));
        timer.unref();
        this.timers.set(inv.id, timer);
      } else {
        await this.toInbox(userId, 'missed-call', missedCall(inv));
      }
      out.push({ invitation_id: inv.id, user_id: userId, status: online ? 'ringing' : 'offline' });
    }
    return { invitations: out, expires_at: expiresAt.toISOString() };
  }

  /** Puts an item in a user's inbox and sends it to the devices connected now (they acknowledge it). */
  async toInbox(userId: string, kind: 'missed-call', payload: MissedCall): Promise<InboxEntry>;
  async toInbox(userId: string, kind: 'message', payload: InboxMessage): Promise<InboxEntry>;
  async toInbox(userId: string, kind: InboxEntry['kind'], payload: MissedCall | InboxMessage): Promise<InboxEntry> {
    const item = await this.deps.store.push(userId, kind, payload);
    this.sendInboxItem({ user: userId }, item);
    return item;
  }

  /** A connection authenticated as its user: it is sent what waits in its inbox. */
  async deliverInbox(session: Session, userId: string): Promise<void> {
    for (const item of await this.deps.store.pending(userId)) this.sendInboxItem({ connection: session.id }, item);
  }

  close(): void {
    clearInterval(this.purgeTimer);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  // ---- internals ----------------------------------------------------------------------
  private sendInboxItem(to: { user: string } | { connection: string }, item: InboxEntry): void {
    // Payloads were stored from these same shapes (toInbox's overloads).
    if (item.kind === 'missed-call') this.deps.clients.send(to, 'missed-call', { id: item.id, ...(item.payload as MissedCall) });
    else this.deps.clients.send(to, 'inbox-message', { id: item.id, ...(item.payload as InboxMessage) });
  }

  /** The inviter (all its devices) and the call's room. */
  private inviterOf(inv: InvitationRow): Array<{ room: string } | { user: string }> {
    return inv.inviterUserId ? [{ room: inv.roomId }, { user: inv.inviterUserId }] : [{ room: inv.roomId }];
  }

  private stopTimer(id: string): void {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
  }

  private async expire(id: string): Promise<void> {
    this.timers.delete(id);
    const { store, clients, events } = this.deps;
    try {
      const inv = await store.settle(id, 'expired');
      if (!inv) return; // answered meanwhile
      clients.send({ user: inv.userId }, 'incoming-call-ended', { invitation_id: inv.id, call_id: inv.callId, reason: 'expired' });
      clients.send(this.inviterOf(inv), 'invitation-expired', { invitation_id: inv.id, call_id: inv.callId, user_id: inv.userId });
      events.emit('invitation.answered', {
        call_id: inv.callId,
        room: inv.roomId,
        invitation_id: inv.id,
        user_id: inv.userId,
        answer: 'expired',
        reason: null,
        at: new Date().toISOString(),
      });
      await this.toInbox(inv.userId, 'missed-call', missedCall(inv));
    } catch (err) {
      this.deps.log.error({ err }, 'expiring an invitation failed');
    }
  }

  /** The call ended: its ringing invitations stop. */
  private async stopRinging(callId: string): Promise<void> {
    for (const ringing of await this.deps.store.ringingOfCall(callId)) {
      const inv = await this.deps.store.settle(ringing.id, 'call-ended');
      if (!inv) continue;
      this.stopTimer(inv.id);
      this.deps.clients.send({ user: inv.userId }, 'incoming-call-ended', { invitation_id: inv.id, call_id: inv.callId, reason: 'call-ended' });
    }
  }
}

function missedCall(inv: InvitationRow): MissedCall {
  return {
    invitation_id: inv.id,
    call_id: inv.callId,
    room: inv.roomId,
    from: inv.inviterUserId ? { user_id: inv.inviterUserId, display_name: inv.inviterName } : null,
    invited_at: inv.createdAt.toISOString(),
  };
}
