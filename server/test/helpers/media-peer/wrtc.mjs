// libwebrtc in Node (@roamhq/wrtc), with the WebRTC classes a browser has as globals:
// mediasoup-client and the client SDK look them up there. Shared by the test peers
// (media-peer.mjs, sdk-peer.mjs).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const wrtc = require('@roamhq/wrtc');

for (const name of [
  'RTCPeerConnection',
  'RTCSessionDescription',
  'RTCIceCandidate',
  'MediaStream',
  'MediaStreamTrack',
  'RTCRtpSender',
  'RTCRtpReceiver',
  'RTCRtpTransceiver',
  'RTCDataChannel',
  'RTCDtlsTransport',
  'RTCIceTransport',
  'RTCSctpTransport',
  'RTCPeerConnectionIceEvent',
  'RTCDataChannelEvent',
]) {
  if (wrtc[name] && globalThis[name] === undefined) globalThis[name] = wrtc[name];
}

/** Synthetic sources and decoding sinks (wrtc's nonstandard API). */
export const { RTCVideoSource, RTCAudioSource, RTCVideoSink, RTCAudioSink } = wrtc.nonstandard;
