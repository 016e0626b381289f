import { randomUUID } from 'node:crypto';
import { AppError } from '../errors';
import type { PrismaClient } from '../generated/prisma/client';
import type { ChatMessage } from '../protocol';

/**
 * Invitations (ringing users into a call), the inbox (what waits for a user
 * until a device acknowledges it: missed calls, messages) and in-call messages,
 * in the database. Every state change of an invitation is a conditional update
 * (`WHERE status = 'ringing'`), so that two devices, two nodes or an answer
 * racing the expiry cannot both win.
 */
export type InvitationStatus = 'ringing' | 'accepted' | 'declined' | 'expired' | 'missed' | 'call-ended';
export type InboxKind = 'missed-call' | 'message';

export interface InvitationRow {
  id: string;
  callId: string;
  roomId: string;
  userId: string;
  inviterUserId: string | null;
  inviterName: string | null;
  status: string;
  reason: string | null;
  createdAt: Date;
  expiresAt: Date;
  answeredAt: Date | null;
}

export interface InboxEntry {
  id: string;
  kind: InboxKind;
  payload: Record<string, unknown>;
  createdAt: Date;
}

/** A stored message: the chat message as sent to the room, and its addressee when private. */
export interface MessageRow extends ChatMessage {
  to_user_id: string | null;
}

export class InvitationStore {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly limits: { retentionDays: number; maxItems: number },
  ) {}

  // ---- invitations ----------------------------------------------------------------------
  /** The ringing invitation of a user to a call, if any (inviting again returns it). */
  ringing(callId: string, userId: string): Promise<InvitationRow | null> {
    return this.prisma.invitation.findFirst({ where: { callId, userId, status: 'ringing', expiresAt: { gt: new Date() } } });
  }

  create(i: {
    callId: string;
    roomId: string;
    userId: string;
    inviterUserId: string | null;
    inviterName: string | null;
    status: 'ringing' | 'missed';
    expiresAt: Date;
  }): Promise<InvitationRow> {
    return this.prisma.invitation.create({ data: { id: randomUUID(), ...i } });
  }

  /** The invitation of this user; INVITATION_NOT_FOUND for an unknown one or someone else's. */
  async mine(id: string, userId: string): Promise<InvitationRow> {
    const inv = /^[0-9a-f-]{36}$/i.test(id) ? await this.prisma.invitation.findUnique({ where: { id } }) : null;
    if (!inv || inv.userId !== userId) throw new AppError('INVITATION_NOT_FOUND');
    return inv;
  }

  /**
   * Moves a ringing invitation to `status`; null when it was not ringing any
   * more (answered elsewhere, expired). An answer after expires_at is too late.
   */
  async settle(id: string, status: Exclude<InvitationStatus, 'ringing'>, reason?: string): Promise<InvitationRow | null> {
    const now = new Date();
    const answering = status === 'accepted' || status === 'declined';
    const r = await this.prisma.invitation.updateMany({
      where: { id, status: 'ringing', ...(answering ? { expiresAt: { gt: now } } : {}) },
      data: { status, answeredAt: now, ...(reason ? { reason } : {}) },
    });
    return r.count === 1 ? this.prisma.invitation.findUnique({ where: { id } }) : null;
  }

  /** Ringing invitations of a call (to stop them when it ends). */
  ringingOfCall(callId: string): Promise<InvitationRow[]> {
    return this.prisma.invitation.findMany({ where: { callId, status: 'ringing' } });
  }

  notPending(inv: InvitationRow): never {
    const status = inv.status === 'ringing' ? 'expired' : inv.status;
    throw new AppError('INVITATION_NOT_PENDING', `this invitation is ${status}`);
  }

  // ---- inbox -------------------------------------------------------------------------------
  /** Puts an item in a user's inbox (trimming it to INBOX_MAX_ITEMS) and returns it. */
  async push(userId: string, kind: InboxKind, payload: Record<string, unknown>): Promise<InboxEntry> {
    const now = new Date();
    const row = await this.prisma.inboxItem.create({
      data: { userId, kind, payload: payload as object, createdAt: now, expiresAt: new Date(now.getTime() + this.limits.retentionDays * 86_400_000) },
    });
    // Past the per-user limit, the oldest unacknowledged items go.
    const over = await this.prisma.inboxItem.findMany({
      where: { userId, ackedAt: null },
      orderBy: { id: 'desc' },
      skip: this.limits.maxItems,
      select: { id: true },
    });
    if (over.length > 0) await this.prisma.inboxItem.deleteMany({ where: { id: { in: over.map((o) => o.id) } } });
    return { id: row.id.toString(), kind, payload, createdAt: row.createdAt };
  }

  /** What waits for a user, oldest first (unacknowledged, within retention). */
  async pending(userId: string): Promise<InboxEntry[]> {
    const rows = await this.prisma.inboxItem.findMany({
      where: { userId, ackedAt: null, expiresAt: { gt: new Date() } },
      orderBy: { id: 'asc' },
      take: this.limits.maxItems,
    });
    return rows.map((r) => ({ id: r.id.toString(), kind: r.kind as InboxKind, payload: r.payload as Record<string, unknown>, createdAt: r.createdAt }));
  }

  /** Acknowledges items of this user (others' ids are ignored); returns how many were newly acknowledged. */
  async ack(userId: string, ids: string[]): Promise<number> {
    const valid = ids.filter((i) => /^[0-9]{1,19}$/.test(i)).map((i) => BigInt(i));
    if (valid.length === 0) return 0;
    const r = await this.prisma.inboxItem.updateMany({ where: { userId, id: { in: valid }, ackedAt: null }, data: { ackedAt: new Date() } });
    return r.count;
  }

  /** Drops acknowledged items and those past retention (periodic). */
  async purge(): Promise<number> {
    const r = await this.prisma.inboxItem.deleteMany({ where: { OR: [{ ackedAt: { not: null } }, { expiresAt: { lt: new Date() } }] } });
    return r.count;
  }

  // ---- messages ----------------------------------------------------------------------------
  async addMessage(m: {
    callId: string;
    participantId: string | null;
    userId: string;
    displayName: string | null;
    toUserId: string | null;
    text: string;
  }): Promise<MessageRow> {
    const row = await this.prisma.callMessage.create({ data: { id: randomUUID(), ...m } });
    return toMessage(row);
  }

  /** Is this user in the call's world (a participant, or invited)? For private messages. */
  async knowsCall(callId: string, userId: string): Promise<boolean> {
    const [p, i] = await Promise.all([
      this.prisma.participant.count({ where: { callId, userId } }),
      this.prisma.invitation.count({ where: { callId, userId } }),
    ]);
    return p + i > 0;
  }

  /** A call's history: its events, messages (private ones only when asked) and invitations. */
  async history(callId: string, withPrivate: boolean) {
    const [events, messages, invitations] = await Promise.all([
      this.prisma.callEvent.findMany({ where: { callId }, orderBy: { createdAt: 'asc' } }),
      this.prisma.callMessage.findMany({ where: { callId, ...(withPrivate ? {} : { toUserId: null }) }, orderBy: { createdAt: 'asc' } }),
      this.prisma.invitation.findMany({ where: { callId }, orderBy: { createdAt: 'asc' } }),
    ]);
    return {
      events: events.map((e) => ({ type: e.type, participant_id: e.participantId, payload: e.payload, at: e.createdAt.toISOString() })),
      messages: messages.map(toMessage),
      invitations: invitations.map((i) => ({
        invitation_id: i.id,
        user_id: i.userId,
        status: i.status,
        invited_by: i.inviterUserId,
        invited_at: i.createdAt.toISOString(),
        answered_at: i.answeredAt?.toISOString() ?? null,
        reason: i.reason,
      })),
    };
  }
}

function toMessage(r: {
  id: string;
  callId: string;
  participantId: string | null;
  userId: string;
  displayName: string | null;
  toUserId: string | null;
  text: string;
  createdAt: Date;
}): MessageRow {
  return {
    message_id: r.id,
    call_id: r.callId,
    from: r.participantId,
    from_user_id: r.userId,
    display_name: r.displayName,
    text: r.text,
    sent_at: r.createdAt.toISOString(),
    to_user_id: r.toUserId,
  };
}
