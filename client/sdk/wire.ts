/**
 * The server's events, applied to the client's state and re-emitted as the
 * SDK's events (camelCase, with the participant state kept up to date).
 */
import type { CallStatus, ParticipantState } from '../../server/protocol';
import type { ProtocolSocket } from './connection';
import { SwitchboardError, wireCode } from './errors';
import type { MediaSession } from './media';
import type { SwitchboardEvents } from './types';

const RETRY_CODES = new Set(['SERVER_DRAINING', 'SERVER_FULL']);
const TOKEN_CODES = new Set(['TOKEN_EXPIRED', 'TOKEN_NOT_YET_VALID']);
/** A refused reconnect (draining, full, a token to refresh) is tried again after this, plus up to as much jitter. */
const RETRY_DELAY_MS = 500;

/** The call state the server's events update (SwitchboardClient's public fields). */
export interface CallState {
  readonly socket: ProtocolSocket;
  readonly participants: Map<string, ParticipantState>;
  participantId: string | null;
  room: string | null;
  status: CallStatus | null;
  recording: boolean;
}

export interface WireHost {
  readonly media: MediaSession;
  isClosed(): boolean;
  refreshesToken(): boolean;
  emit<E extends keyof SwitchboardEvents>(event: E, payload: SwitchboardEvents[E]): void;
  /** Joins the same room again after a reconnect (within the grace period this resumes). */
  rejoin(): void;
  /** The call is over for this client (removed, ended): drop media and forget the call. */
  forgetCall(): void;
  ackInboxItem(id: string): void;
  scheduleRetry(delayMs: number): void;
}

export function wireServerEvents(c: CallState, h: WireHost): void {
  const s = c.socket;
  const update = (id: string, change: (p: ParticipantState) => void): void => {
    const p = c.participants.get(id);
    if (!p) return;
    change(p);
    h.emit('participant-updated', p);
  };

  // The server said it is stopping (server-draining): whatever ends the connection next, come back.
  let drained = false;
  let restoreBackoff: (() => void) | null = null;
  s.on('connect', () => {
    drained = false;
    restoreBackoff?.();
    restoreBackoff = null;
    h.emit('connection', { state: 'connected' });
    if (c.room && c.participantId) h.rejoin();
  });
  s.on('disconnect', (reason) => {
    if (h.isClosed()) return;
    // A server-side disconnect (removed, replaced) does not reconnect; a lost transport does, and so
    // does a server that announced its stop (an older one closes with a disconnect packet).
    if (reason === 'io server disconnect' && drained) {
      h.emit('connection', { state: 'reconnecting', reason: 'server-draining' });
      h.scheduleRetry(RETRY_DELAY_MS + Math.random() * RETRY_DELAY_MS * 2);
      return;
    }
    h.emit('connection', { state: reason === 'io server disconnect' ? 'closed' : 'reconnecting', reason });
  });
  s.on('connect_error', (err: Error & { data?: { code?: string; message?: string } }) => {
    const code = err.data?.code;
    if (!code || h.isClosed() || !c.room) return;
    // Refused by the server's middleware: socket.io-client does not retry that by itself.
    if (RETRY_CODES.has(code) || (TOKEN_CODES.has(code) && h.refreshesToken())) {
      h.emit('connection', { state: 'reconnecting', reason: code });
      h.scheduleRetry(RETRY_DELAY_MS + Math.random() * RETRY_DELAY_MS * 2);
    } else h.emit('error', new SwitchboardError(wireCode(code), err.data?.message ?? err.message));
  });

  s.on('peer-joined', ({ participant }) => {
    c.participants.set(participant.participant_id, participant);
    h.emit('participant-joined', participant);
  });
  s.on('peer-left', ({ participant_id, reason }) => {
    const participant = c.participants.get(participant_id);
    c.participants.delete(participant_id);
    h.media.dropConsumersOf(participant_id);
    h.emit('participant-left', { participant, participantId: participant_id, reason });
  });
  s.on('mute-changed', (e) => {
    update(e.participant_id, (p) => {
      p.muted_tracks = e.muted ? [...new Set([...p.muted_tracks, e.track])] : p.muted_tracks.filter((t) => t !== e.track);
      p.locked_tracks = e.locked ? [...new Set([...p.locked_tracks, e.track])] : p.locked_tracks.filter((t) => t !== e.track);
    });
    if (e.participant_id === c.participantId) h.media.setOwnMuted(e.track, e.muted);
  });
  s.on('hold-changed', (e) => update(e.participant_id, (p) => (p.held_tracks = e.held_tracks)));
  s.on('role-changed', (e) => update(e.participant_id, (p) => (p.role = e.role)));
  s.on('dtmf', (e) => h.emit('dtmf', { from: e.from, tones: e.tones }));
  s.on('removed', (e) => {
    h.forgetCall();
    h.emit('removed', { reason: e.reason, by: e.by });
  });
  s.on('call-state-changed', (e) => {
    c.status = e.status;
    c.recording = e.recording;
    h.emit('call-state', { status: e.status, recording: e.recording });
    if (e.status === 'ended') h.forgetCall();
  });

  s.on('new-producer', (p) => h.media.consumeLater(p));
  s.on('producer-closed', (e) => h.media.dropConsumer(e.producer_id));
  s.on('consumer-closed', (e) => h.media.dropConsumer(e.producer_id));
  s.on('producer-paused', (e) => h.media.setRemotePaused(e.producer_id, true));
  s.on('producer-resumed', (e) => h.media.setRemotePaused(e.producer_id, false));
  s.on('active-speaker', (e) => h.emit('active-speaker', { participantId: e.participant_id }));
  s.on('media-reset', (e) => {
    h.emit('media-reset', { reason: e.reason });
    h.media.renegotiate();
  });

  s.on('recording-started', (e) => {
    c.recording = true;
    h.emit('recording-started', { recordingId: e.recording_id, mode: e.mode, by: e.by });
  });
  s.on('recording-finished', (e) => {
    c.recording = false;
    h.emit('recording-finished', e);
  });
  s.on('server-draining', () => {
    drained = true;
    // A restart takes seconds: retry at most 2 s apart (with socket.io-client's jitter) until it is back.
    if (!restoreBackoff) {
      const [delay, max] = [s.io.reconnectionDelay(), s.io.reconnectionDelayMax()];
      restoreBackoff = () => s.io.reconnectionDelay(delay).reconnectionDelayMax(max);
      s.io.reconnectionDelay(Math.min(delay, 500)).reconnectionDelayMax(Math.min(max, 2000));
    }
    h.emit('connection', { state: 'reconnecting', reason: 'server-draining' });
  });
  s.on('offer', (e) => h.emit('offer', { from: e.from, sdp: e.sdp }));
  s.on('answer', (e) => h.emit('answer', { from: e.from, sdp: e.sdp }));
  s.on('ice-candidate', (e) => h.emit('ice-candidate', { from: e.from, candidate: e.candidate, sdpMid: e.sdpMid, sdpMLineIndex: e.sdpMLineIndex }));
  s.on('signaling-error', (e) => h.emit('error', new SwitchboardError(wireCode(e.code), e.message)));

  s.on('incoming-call', (e) =>
    h.emit('incoming-call', { invitationId: e.invitation_id, callId: e.call_id, room: e.room, from: e.from, expiresAt: e.expires_at }),
  );
  s.on('incoming-call-ended', (e) => h.emit('incoming-call-ended', { invitationId: e.invitation_id, callId: e.call_id, reason: e.reason }));
  s.on('invitation-accepted', (e) =>
    h.emit('invitation-answered', { invitationId: e.invitation_id, callId: e.call_id, userId: e.user_id, answer: 'accepted', reason: null }),
  );
  s.on('invitation-declined', (e) =>
    h.emit('invitation-answered', { invitationId: e.invitation_id, callId: e.call_id, userId: e.user_id, answer: 'declined', reason: e.reason }),
  );
  s.on('invitation-expired', (e) =>
    h.emit('invitation-answered', { invitationId: e.invitation_id, callId: e.call_id, userId: e.user_id, answer: 'expired', reason: null }),
  );
  // Inbox items may arrive twice (two devices, a reconnect before the acknowledgement): once per id here.
  const seen = new Set<string>();
  s.on('missed-call', (e) => {
    if (!seen.has(e.id)) {
      seen.add(e.id);
      h.emit('missed-call', { id: e.id, invitationId: e.invitation_id, callId: e.call_id, room: e.room, from: e.from, invitedAt: e.invited_at });
    }
    h.ackInboxItem(e.id);
  });
  s.on('inbox-message', (e) => {
    if (!seen.has(e.id)) {
      seen.add(e.id);
      h.emit('inbox-message', { id: e.id, from: e.from, callId: e.call_id, text: e.text, sentAt: e.sent_at });
    }
    h.ackInboxItem(e.id);
  });
  s.on('message', (e) => h.emit('message', e));
}
