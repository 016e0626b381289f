/**
 * The signaling protocol, declared once (client.ts, server.ts, shapes.ts,
 * enums.ts, errors.ts) and typed from those declarations. The server's
 * Socket.IO types, its handler map, the SDK and protocol.md all come from here:
 *
 *   import type { ClientToServerEvents, ServerToClientEvents } from '<switchboard>/server/protocol';
 *   const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(url, { auth: { token } });
 *
 * Event names and payload fields are the original design's (snake_case). Every
 * client event takes an acknowledgement callback, answered `{ ok: true, ...result }`
 * or `{ error: { code, message } }`. server/signaling/protocol.md documents it.
 */
import type { Static } from '@sinclair/typebox';
import { CLIENT_EVENT_SPECS } from './client';
import type { ErrorCode } from './errors';
import { SERVER_EVENT_SPECS } from './server';

export * from './enums';
export * from './shapes';
export { CLIENT_EVENT_SPECS, type ClientEventSpec } from './client';
export { SERVER_EVENT_SPECS, type ServerEventSpec } from './server';
export { ERRORS, ERROR_CODES, TOKEN_ERRORS, isErrorCode, type ErrorCode, type ErrorSpec } from './errors';

type ClientSpecs = typeof CLIENT_EVENT_SPECS;
type ServerSpecs = typeof SERVER_EVENT_SPECS;

export type ClientEvent = keyof ClientSpecs;
export type ServerEvent = keyof ServerSpecs;
/** Every client event, in declaration order. */
export const CLIENT_EVENTS = Object.keys(CLIENT_EVENT_SPECS) as ClientEvent[];
export const SERVER_EVENTS = Object.keys(SERVER_EVENT_SPECS) as ServerEvent[];

/** What a client sends with event E. */
export type Payload<E extends ClientEvent> = Static<ClientSpecs[E]['payload']>;
/** What the acknowledgement of E carries besides `ok: true`. */
export type AckResult<E extends ClientEvent> = Static<ClientSpecs[E]['ack']>;
/** What the server sends with event E. */
export type ServerPayload<E extends ServerEvent> = Static<ServerSpecs[E]['payload']>;

export interface SignalingError {
  error: { code: ErrorCode; message: string };
}
export type AckResponse<E extends ClientEvent> = ({ ok: true } & AckResult<E>) | SignalingError;
export type Ack<E extends ClientEvent> = (response: AckResponse<E>) => void;

/** Socket.IO's typed events (client → server), from the declarations. */
export type ClientToServerEvents = { [E in ClientEvent]: (payload: Payload<E>, ack: Ack<E>) => void };
/** Socket.IO's typed events (server → client), from the declarations. */
export type ServerToClientEvents = { [E in ServerEvent]: (payload: ServerPayload<E>) => void };

/** One server event with its payload, as a discriminated union (internal notifications carry these). */
export type ServerMessage = { [E in ServerEvent]: { event: E; payload: ServerPayload<E> } }[ServerEvent];
