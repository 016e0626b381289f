/**
 * Switchboard client SDK (`@switchboard/client`): the signaling protocol
 * (server/protocol) over socket.io-client, and SFU media through mediasoup-client.
 *
 *   const call = await SwitchboardClient.connect({ url: 'https://calls.example.com', token });
 *   call.on('track', ({ participantId, track }) => attach(participantId, track));
 *   await call.join('standup', { displayName: 'Ada' });
 *   await call.publishCamera();
 *   await call.publishMicrophone();
 *
 * Works in browsers (through any bundler) and in Node 22+ with a WebRTC
 * implementation passed in: `{ webrtc: require('@roamhq/wrtc'), handlerName: 'Chrome111' }`.
 * Every failure is a SwitchboardError with a stable `code`.
 */
export { SwitchboardClient } from './client';
export { tokenExpiry } from './connection';
export { SDK_ERROR_CODES, SwitchboardError, type SdkErrorCode, type SwitchboardErrorCode } from './errors';
export { installWebRtc } from './media';
export type * from './types';
