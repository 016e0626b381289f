import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Prisma, PrismaClient } from '../generated/prisma/client';

import type { CallMode, CallStatus } from '../protocol';
import { canTransition } from './policy';

export type { CallMode };
import { AppError } from '../errors';

/**
 * Calls and their participants in the database. REST uses it now; signaling
 * uses it to open calls on join and to record participants. Every status change
 * is emitted as 'call-state-changed' so other parts (signaling) can tell rooms.
 */
export type CallWithParticipants = Prisma.CallGetPayload<{ include: { participants: true } }>;
export type CallWithCount = Prisma.CallGetPayload<{ include: { _count: { select: { participants: true } } } }>;

export interface CallEvents {
  /** `change`: what changed, the status (created → active → ended) or the recording flag. */
  'call-state-changed': [call: { id: string; roomId: string; status: CallStatus; recording: boolean; change: 'status' | 'recording'; at: Date }];
}

export interface OpenCall {
  id: string;
  status: CallStatus;
  recording: boolean;
  mode: CallMode;
}

export interface ListCallsQuery {
  status?: CallStatus;
  roomId?: string;
  limit: number;
  cursor?: string;
}

interface Cursor {
  createdAt: Date;
  id: string;
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.createdAt.toISOString(), c.id])).toString('base64url');
}

function decodeCursor(s: string): Cursor {
  try {
    const [at, id] = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as [string, string];
    const createdAt = new Date(at);
    if (typeof id !== 'string' || !/^[0-9a-f-]{36}$/i.test(id) || Number.isNaN(createdAt.getTime())) throw new Error('bad');
    return { createdAt, id };
  } catch {
    throw new AppError('INVALID_CURSOR');
  }
}

const isUniqueViolation = (err: unknown): boolean => {
  const e = err as { code?: string; message?: string; cause?: { originalCode?: string } };
  return e.code === 'P2002' || e.cause?.originalCode === '23505' || /unique constraint|23505/i.test(e.message ?? '');
};

export class CallService extends EventEmitter<CallEvents> {
  constructor(private readonly prisma: PrismaClient) {
    super();
  }

  async create(input: { roomId?: string; metadata?: Record<string, unknown>; mode?: CallMode }): Promise<CallWithParticipants> {
    const roomId = input.roomId ?? randomUUID();
    let call: CallWithParticipants;
    try {
      call = await this.prisma.call.create({
        data: {
          roomId,
          status: 'created',
          mode: input.mode ?? 'sfu',
          // Set here, not by the database default, so it has the millisecond
          // precision the list cursor round-trips exactly.
          createdAt: new Date(),
          metadata: (input.metadata ?? {}) as Prisma.InputJsonValue,
        },
        include: { participants: true },
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('CALL_ALREADY_ACTIVE', `room ${roomId} already has a call that has not ended`);
      throw err;
    }
    this.emitState(call);
    return call;
  }

  async get(id: string): Promise<CallWithParticipants> {
    const call = await this.prisma.call.findUnique({
      where: { id },
      include: { participants: { orderBy: [{ joinedAt: 'asc' }, { id: 'asc' }] } },
    });
    if (!call) throw new AppError('CALL_NOT_FOUND', `no call ${id}`);
    return call;
  }

  async list(q: ListCallsQuery): Promise<{ items: CallWithCount[]; nextCursor: string | null }> {
    const where: Prisma.CallWhereInput = {};
    if (q.status) where.status = q.status;
    if (q.roomId) where.roomId = q.roomId;
    if (q.cursor) {
      const c = decodeCursor(q.cursor);
      where.OR = [{ createdAt: { lt: c.createdAt } }, { createdAt: c.createdAt, id: { lt: c.id } }];
    }
    const rows = await this.prisma.call.findMany({
      where,
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: q.limit + 1,
      include: { _count: { select: { participants: true } } },
    });
    const items = rows.slice(0, q.limit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > q.limit && last ? encodeCursor(last) : null };
  }

  /** The call of `roomId` that has not ended, if any. */
  async findOpen(roomId: string): Promise<OpenCall | null> {
    const call = await this.prisma.call.findFirst({
      where: { roomId, status: { not: 'ended' } },
      select: { id: true, status: true, recording: true, mode: true },
    });
    return call ? { ...call, status: call.status as CallStatus, mode: call.mode as CallMode } : null;
  }

  /**
   * The open call of `roomId`, made active: an existing one (created by REST)
   * is activated; otherwise a new active call is created, unless `mayCreate` is
   * false (then null). Safe against a concurrent opener: the unique index on open
   * calls per room makes the loser read the winner's call.
   */
  /** The room's open call (activated), or a new one when `mayCreate` (`created`: this call made it). */
  async openForRoom(roomId: string, mayCreate: boolean, mode: CallMode = 'sfu'): Promise<(OpenCall & { created: boolean }) | null> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const existing = await this.findOpen(roomId);
      if (existing) {
        if (existing.status === 'created') await this.activate(existing.id);
        return { ...existing, status: 'active', created: false };
      }
      if (!mayCreate) return null;
      const now = new Date();
      try {
        const call = await this.prisma.call.create({
          data: { roomId, status: 'active', mode, createdAt: now, startedAt: now },
        });
        this.emitState(call);
        return { id: call.id, status: 'active', recording: call.recording, mode, created: true };
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
    }
    throw new AppError('CALL_ALREADY_ACTIVE', `room ${roomId} is being opened concurrently; try again`);
  }

  /** The recording flag; emits call-state-changed when it changes. */
  async setRecording(id: string, recording: boolean): Promise<void> {
    const { count } = await this.prisma.call.updateMany({ where: { id, recording: !recording, status: { not: 'ended' } }, data: { recording } });
    if (count > 0) this.emitState(await this.prisma.call.findUniqueOrThrow({ where: { id } }), 'recording');
  }

  /** created → active when its first participant joins. */
  async activate(id: string): Promise<void> {
    const { count } = await this.prisma.call.updateMany({
      where: { id, status: 'created' },
      data: { status: 'active', startedAt: new Date() },
    });
    if (count > 0) {
      const call = await this.prisma.call.findUniqueOrThrow({ where: { id } });
      this.emitState(call);
    }
  }

  // ---- participant rows and call events (written behind signaling, off the relay path) ----
  async recordJoin(p: {
    id: string;
    callId: string;
    userId: string;
    displayName: string | null;
    role: string;
    clientIp: string | null;
    joinedAt: Date;
    metadata?: Record<string, unknown>;
  }): Promise<void> {
    await this.prisma.participant.create({
      data: {
        id: p.id,
        callId: p.callId,
        userId: p.userId,
        displayName: p.displayName,
        role: p.role,
        clientIp: p.clientIp,
        joinedAt: p.joinedAt,
        metadata: (p.metadata ?? {}) as Prisma.InputJsonValue,
      },
    });
  }

  async recordLeave(participantId: string, at: Date): Promise<void> {
    await this.prisma.participant.updateMany({ where: { id: participantId, leftAt: null }, data: { leftAt: at } });
  }

  async recordRole(participantId: string, role: string): Promise<void> {
    await this.prisma.participant.update({ where: { id: participantId }, data: { role } });
  }

  /** `at` is when it happened (writes behind signaling run later, and keys in parallel). */
  async recordEvent(callId: string, participantId: string | null, type: string, payload: Record<string, unknown>, at: Date): Promise<void> {
    await this.prisma.callEvent.create({
      data: { callId, participantId, type, payload: payload as Prisma.InputJsonValue, createdAt: at },
    });
  }

  /** Calls in progress (status active), oldest first: crash recovery checks each against the live room state. */
  async activeCalls(): Promise<Array<{ id: string; roomId: string }>> {
    return this.prisma.call.findMany({ where: { status: 'active' }, select: { id: true, roomId: true }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  }

  /**
   * Ends the call for everyone: status ended, ended_at set, every participant
   * left, all at `now` (crash recovery passes when the call really stopped).
   */
  async end(id: string, now = new Date()): Promise<CallWithParticipants> {
    const call = await this.prisma.$transaction(async (tx) => {
      const current = await tx.call.findUnique({ where: { id }, select: { status: true } });
      if (!current) throw new AppError('CALL_NOT_FOUND', `no call ${id}`);
      if (!canTransition(current.status as CallStatus, 'ended')) {
        throw new AppError('CALL_ALREADY_ENDED', `call ${id} has already ended`);
      }
      // Conditional update: of two concurrent end requests exactly one wins.
      const { count } = await tx.call.updateMany({
        where: { id, status: { not: 'ended' } },
        data: { status: 'ended', endedAt: now, recording: false },
      });
      if (count === 0) throw new AppError('CALL_ALREADY_ENDED', `call ${id} has already ended`);
      await tx.participant.updateMany({ where: { callId: id, leftAt: null }, data: { leftAt: now } });
      return tx.call.findUniqueOrThrow({
        where: { id },
        include: { participants: { orderBy: [{ joinedAt: 'asc' }, { id: 'asc' }] } },
      });
    });
    this.emitState(call);
    return call;
  }

  private emitState(
    call: { id: string; roomId: string; status: string; recording: boolean; startedAt?: Date | null; endedAt?: Date | null },
    change: 'status' | 'recording' = 'status',
  ): void {
    // When it happened: a call ended or started at its stored time, anything else now.
    const at = change === 'status' ? (call.status === 'ended' ? call.endedAt : call.status === 'active' ? call.startedAt : null) : null;
    this.emit('call-state-changed', {
      id: call.id,
      roomId: call.roomId,
      status: call.status as CallStatus,
      recording: call.recording,
      change,
      at: at ?? new Date(),
    });
  }
}
