import { Type, type TObject } from '@sinclair/typebox';
import { CallStatusSchema, LeaveReasonSchema, RecordingModeSchema, RoleSchema, TrackSchema } from './enums';
import { ChatMessage, Nullable, ParticipantState, ProducerInfo, RecordingFinished, RoomState, Sender, Timestamp } from './shapes';

/**
 * Server → client events, declared once: the payload schema, who receives it
 * and a line of documentation. Socket.IO's ServerToClientEvents type and
 * protocol.md's tables come from here.
 */
export interface ServerEventSpec {
  readonly section: 'call' | 'media' | 'recording' | 'invitations';
  readonly payload: TObject;
  /** Who receives it. */
  readonly to: string;
  readonly doc: string;
}

const From = { call_id: Type.String(), from: Type.String({ description: 'participant id of the sender' }) };
const ProducerRef = Type.Object({ producer_id: Type.String(), participant_id: Type.String() });
const InvitationRef = { invitation_id: Type.String(), call_id: Type.String() };

export const SERVER_EVENT_SPECS = {
  // ---- the call ------------------------------------------------------------------------
  joined: {
    section: 'call',
    payload: Type.Object({ participant_id: Type.String(), room_state: RoomState }),
    to: 'the joining connection, after the join ack',
    doc: 'You are in the room.',
  },
  'peer-joined': {
    section: 'call',
    payload: Type.Object({ call_id: Type.String(), participant: ParticipantState }),
    to: 'the room, but the joiner',
    doc: 'A participant joined.',
  },
  'peer-left': {
    section: 'call',
    payload: Type.Object({ call_id: Type.String(), participant_id: Type.String(), reason: LeaveReasonSchema }),
    to: 'the room',
    doc: 'A participant left (or was removed, replaced, or gone past its grace period).',
  },
  offer: { section: 'call', payload: Type.Object({ sdp: Type.String(), ...From }), to: 'the target of an offer', doc: 'A relayed SDP offer (p2p mode).' },
  answer: { section: 'call', payload: Type.Object({ sdp: Type.String(), ...From }), to: 'the target of an answer', doc: 'A relayed SDP answer.' },
  'ice-candidate': {
    section: 'call',
    payload: Type.Object({ candidate: Type.String(), sdpMid: Nullable(Type.String()), sdpMLineIndex: Nullable(Type.Integer()), ...From }),
    to: 'the target of a candidate',
    doc: 'A relayed ICE candidate.',
  },
  'mute-changed': {
    section: 'call',
    payload: Type.Object({
      call_id: Type.String(),
      participant_id: Type.String(),
      track: TrackSchema,
      muted: Type.Boolean(),
      locked: Type.Boolean(),
      by: Type.String(),
    }),
    to: 'the room',
    doc: 'A track was muted or unmuted (`locked`: by a host or moderator).',
  },
  'hold-changed': {
    section: 'call',
    payload: Type.Object({ call_id: Type.String(), participant_id: Type.String(), held_tracks: Type.Array(TrackSchema) }),
    to: 'the room',
    doc: "A participant's held tracks changed.",
  },
  'role-changed': {
    section: 'call',
    payload: Type.Object({ call_id: Type.String(), participant_id: Type.String(), role: RoleSchema, by: Type.String() }),
    to: 'the room',
    doc: "A participant's role changed.",
  },
  dtmf: {
    section: 'call',
    payload: Type.Object({ call_id: Type.String(), from: Type.String(), tones: Type.String() }),
    to: 'the room, but the sender',
    doc: 'DTMF tones.',
  },
  removed: {
    section: 'call',
    payload: Type.Object({ call_id: Type.String(), reason: Type.String(), by: Nullable(Type.String()) }),
    to: 'a removed (or replaced) participant',
    doc: 'You were removed by a host or moderator, or replaced by a newer join; the server closes the connection next.',
  },
  'call-state-changed': {
    section: 'call',
    payload: Type.Object({ call_id: Type.String(), room: Type.String(), status: CallStatusSchema, recording: Type.Boolean() }),
    to: 'the room',
    doc: 'The status or the recording flag changed.',
  },
  'server-draining': {
    section: 'call',
    payload: Type.Object({ reconnect: Type.Literal(true) }),
    to: 'every connection of a node shutting down',
    doc: 'This node is shutting down and closes the transport next: connect again (socket.io-client does, until a server answers) and join the same room with the same token: it resumes on another node, or is seated anew (`resumed: false`) after a single server restarted.',
  },
  'signaling-error': {
    section: 'call',
    payload: Type.Object({ code: Type.String(), message: Type.String(), event: Type.Optional(Type.String()) }),
    to: 'one connection',
    doc: 'An error for a message sent without an acknowledgement callback, or for the connection itself (`AUTH_TIMEOUT`).',
  },

  // ---- SFU media -------------------------------------------------------------------------
  'new-producer': { section: 'media', payload: ProducerInfo, to: 'the room, but the producer', doc: 'A track to consume.' },
  'producer-closed': { section: 'media', payload: ProducerRef, to: 'the room', doc: 'A producer went away.' },
  'producer-paused': { section: 'media', payload: ProducerRef, to: 'the room', doc: 'A producer was paused (muted, held).' },
  'producer-resumed': { section: 'media', payload: ProducerRef, to: 'the room', doc: 'A producer was resumed.' },
  'consumer-closed': {
    section: 'media',
    payload: Type.Object({ consumer_id: Type.String(), producer_id: Type.String() }),
    to: "the consumer's owner",
    doc: 'One of your consumers closed (its producer went away).',
  },
  'active-speaker': {
    section: 'media',
    payload: Type.Object({ participant_id: Nullable(Type.String()), producer_id: Nullable(Type.String()) }),
    to: 'the room',
    doc: "The dominant speaker (mediasoup's ActiveSpeakerObserver).",
  },
  'transport-state': {
    section: 'media',
    payload: Type.Object({ transport_id: Type.String(), state: Type.String() }),
    to: "the transport's owner",
    doc: 'ICE and DTLS states of your transports.',
  },
  'media-reset': {
    section: 'media',
    payload: Type.Object({ call_id: Type.String(), reason: Type.String({ description: 'worker-died, node-lost, node-draining, state-lost' }) }),
    to: 'the room',
    doc: "The room's media was re-created: close your transports and negotiate again.",
  },

  // ---- recording -------------------------------------------------------------------------
  'recording-started': {
    section: 'recording',
    payload: Type.Object({
      recording_id: Type.String(),
      call_id: Type.String(),
      mode: RecordingModeSchema,
      started_at: Timestamp,
      by: Nullable(Type.String()),
    }),
    to: 'the room',
    doc: 'The call is being recorded (`by`: a participant id, or null for the API).',
  },
  'recording-finished': { section: 'recording', payload: RecordingFinished, to: 'the room', doc: 'The recording ended; its files.' },

  // ---- invitations, inbox, chat ----------------------------------------------------------
  'incoming-call': {
    section: 'invitations',
    payload: Type.Object({ ...InvitationRef, room: Type.String(), from: Sender, expires_at: Timestamp }),
    to: 'every device of the invitee',
    doc: 'Ringing (`from` null: invited through REST).',
  },
  'incoming-call-ended': {
    section: 'invitations',
    payload: Type.Object({
      ...InvitationRef,
      reason: Type.Union([Type.Literal('accepted'), Type.Literal('declined'), Type.Literal('expired'), Type.Literal('call-ended')]),
    }),
    to: 'every device of the invitee',
    doc: 'Stop ringing.',
  },
  'invitation-accepted': {
    section: 'invitations',
    payload: Type.Object({ ...InvitationRef, user_id: Type.String() }),
    to: "the call's room and every device of the inviter",
    doc: 'An invitee accepted.',
  },
  'invitation-declined': {
    section: 'invitations',
    payload: Type.Object({ ...InvitationRef, user_id: Type.String(), reason: Nullable(Type.String()) }),
    to: "the call's room and every device of the inviter",
    doc: 'An invitee declined.',
  },
  'invitation-expired': {
    section: 'invitations',
    payload: Type.Object({ ...InvitationRef, user_id: Type.String() }),
    to: "the call's room and every device of the inviter",
    doc: 'An invitation rang out.',
  },
  'missed-call': {
    section: 'invitations',
    payload: Type.Object({ id: Type.String(), ...InvitationRef, room: Type.String(), from: Sender, invited_at: Timestamp }),
    to: 'the invitee, as an inbox item',
    doc: 'An invitation that rang out unanswered, or found the user offline.',
  },
  'inbox-message': {
    section: 'invitations',
    payload: Type.Object({ id: Type.String(), from: Sender, call_id: Nullable(Type.String()), text: Type.String(), sent_at: Timestamp }),
    to: 'the addressee, as an inbox item',
    doc: 'A private message, or one from your backend.',
  },
  message: { section: 'invitations', payload: ChatMessage, to: "the call's room (the sender included)", doc: 'In-call chat.' },
} as const satisfies Record<string, ServerEventSpec>;
