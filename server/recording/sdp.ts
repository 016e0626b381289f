import type { RtpParameters } from 'mediasoup/types';

/**
 * The SDP that tells ffmpeg what arrives on which port: one m= line per
 * consumer, from the consumer's own RTP parameters (one codec, no RTX).
 */
export interface SdpStream {
  kind: 'audio' | 'video';
  port: number;
  rtpParameters: RtpParameters;
}

export function recordingSdp(streams: SdpStream[]): string {
  const lines = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=Switchboard recording', 'c=IN IP4 127.0.0.1', 't=0 0'];
  for (const s of streams) {
    const codec = s.rtpParameters.codecs[0];
    if (!codec) throw new Error('consumer has no codec');
    const name = codec.mimeType.split('/')[1]!;
    const channels = s.kind === 'audio' && codec.channels ? `/${codec.channels}` : '';
    lines.push(`m=${s.kind} ${s.port} RTP/AVP ${codec.payloadType}`);
    lines.push(`a=rtpmap:${codec.payloadType} ${name}/${codec.clockRate}${channels}`);
    const fmtp = Object.entries(codec.parameters ?? {})
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(';');
    if (fmtp) lines.push(`a=fmtp:${codec.payloadType} ${fmtp}`);
    lines.push('a=recvonly');
  }
  return `${lines.join('\n')}\n`;
}

/** The container for these codecs: WebM for VP8/VP9/Opus, Matroska when H264 is involved. */
export function containerFor(mimeTypes: string[]): { format: string; ext: string; mimeType: string } {
  return mimeTypes.some((m) => /h264/i.test(m))
    ? { format: 'matroska', ext: 'mkv', mimeType: 'video/x-matroska' }
    : { format: 'webm', ext: 'webm', mimeType: mimeTypes.every((m) => m.startsWith('audio/')) ? 'audio/webm' : 'video/webm' };
}
