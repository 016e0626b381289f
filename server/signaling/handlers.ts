import type { Invitations } from '../invitations';
import type { AckResult, ClientEvent, Payload } from '../protocol';
import type { Rooms, Session } from '../rooms';

/**
 * The handler of every client event: a map the compiler checks against the
 * protocol's declarations (server/protocol/client.ts), so an event without a
 * handler, or a handler answering the wrong shape, does not compile. Each is
 * one call into a domain service; no logic lives here (LiveKit's signal
 * handler is the same switch).
 */
export type Handler<E extends ClientEvent> = (session: Session, payload: Payload<E>) => Promise<AckResult<E>>;
export type Handlers = { [E in ClientEvent]: Handler<E> };

export interface HandlerServices {
  rooms: Rooms;
  invitations: Invitations;
  /** auth is the connection's own business (the adapter's). */
  auth: Handler<'auth'>;
}

export function handlers({ rooms, invitations, auth }: HandlerServices): Handlers {
  const { admission, presence, moderation, media } = rooms;
  return {
    auth,
    join: (s, p) => admission.join(s, p),
    leave: (s, p) => presence.leave(s, p),
    offer: (s, p) => moderation.relay(s, 'offer', p),
    answer: (s, p) => moderation.relay(s, 'answer', p),
    'ice-candidate': (s, p) => moderation.relay(s, 'ice-candidate', p),
    mute: (s, p) => moderation.mute(s, p, true),
    unmute: (s, p) => moderation.mute(s, p, false),
    hold: (s, p) => moderation.hold(s, p, true),
    unhold: (s, p) => moderation.hold(s, p, false),
    dtmf: (s, p) => moderation.dtmf(s, p),
    'remove-participant': (s, p) => moderation.remove(s, p),
    'end-call': (s, p) => moderation.endCall(s, p),
    'set-role': (s, p) => moderation.setRole(s, p),
    'server-time': async () => ({ server_time: Date.now() }),
    'get-router-rtp-capabilities': (s) => media.rtpCapabilities(s),
    'create-transport': (s, p) => media.createTransport(s, p),
    'connect-transport': (s, p) => media.connectTransport(s, p),
    'restart-ice': (s, p) => media.restartIce(s, p),
    produce: (s, p) => media.produce(s, p),
    consume: (s, p) => media.consume(s, p),
    'resume-consumer': (s, p) => media.resumeConsumer(s, p),
    'pause-producer': (s, p) => media.pauseProducer(s, p, true),
    'resume-producer': (s, p) => media.pauseProducer(s, p, false),
    'close-producer': (s, p) => media.closeProducer(s, p),
    'set-preferred-layers': (s, p) => media.setPreferredLayers(s, p),
    'start-recording': (s, p) => media.startRecordingBy(s, p),
    'stop-recording': (s, p) => media.stopRecordingBy(s, p),
    invite: (s, p) => invitations.inviteBy(s, p),
    accept: (s, p) => invitations.answer(s, p.invitation_id, 'accepted'),
    decline: (s, p) => invitations.answer(s, p.invitation_id, 'declined', p.reason),
    'ack-inbox': (s, p) => invitations.ack(s, p),
    message: (s, p) => invitations.message(s, p),
  };
}
