/**
 * The body of the offers bench-signaling-gen.mjs relays: lines like a browser's offer, of the
 * size asked for, so the relay carries what a call would.
 */

/**
 * ~`bytes` of SDP-looking lines after the v=/o= lines (which carry the sequence number).
 * @param {number} bytes
 */
export function sdpFiller(bytes) {
  const lines = [
    's=-',
    't=0 0',
    'a=group:BUNDLE 0 1',
    'a=extmap-allow-mixed',
    'a=msid-semantic: WMS bench',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126',
    'c=IN IP4 0.0.0.0',
    'a=rtcp:9 IN IP4 0.0.0.0',
    'a=ice-ufrag:Bx3k',
    'a=ice-pwd:8n2Hq5bWjP0sT4Yc7vLmRk1Z',
    'a=ice-options:trickle',
    'a=fingerprint:sha-256 5B:2A:9F:11:3C:7E:80:41:D2:6B:0A:EE:19:73:C4:58:2F:96:B1:0D:67:E3:4A:8C:F5:12:DB:30:79:A6:CE:85',
    'a=setup:actpass',
    'a=mid:0',
    'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
    'a=sendrecv',
    'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2',
    'a=rtcp-fb:111 transport-cc',
    'a=fmtp:111 minptime=10;useinbandfec=1',
    'a=ssrc:1001 cname:benchcname0123456',
    'm=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107',
    'a=rtpmap:96 VP8/90000',
    'a=rtcp-fb:96 goog-remb',
    'a=rtcp-fb:96 transport-cc',
    'a=rtcp-fb:96 ccm fir',
    'a=rtcp-fb:96 nack',
    'a=rtcp-fb:96 nack pli',
    'a=rtpmap:97 rtx/90000',
    'a=fmtp:97 apt=96',
  ];
  let out = '';
  let i = 0;
  while (out.length < bytes - 40) out += `${lines[i++ % lines.length]}\r\n`;
  return out.slice(0, Math.max(0, bytes - 40));
}
