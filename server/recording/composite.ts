/**
 * The room composite: after the per-participant files are finalised, one ffmpeg
 * filter graph lays every file's video out in a grid (each padded with black
 * before it started and holding its last frame after it ended) and mixes every
 * file's audio (each delayed to when it started), encoded to VP8 + Opus WebM.
 *
 * Rendering from the finished files, rather than mixing live RTP, is what makes
 * it robust: a muted camera or a late joiner sends no packets, which would stall
 * a live filter graph; in a file it is just a gap that fps and tpad fill.
 */
export interface CompositeInput {
  file: string;
  /** Seconds from the start of the recording to the start of this file. */
  offset: number;
  /** Seconds of media in this file. */
  duration: number;
  hasVideo: boolean;
  hasAudio: boolean;
}

export const TILE = { width: 320, height: 240, fps: 15 };

export function compositeArgs(inputs: CompositeInput[], total: number, output: string): string[] {
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'error'];
  for (const i of inputs) args.push('-i', i.file);
  const filters: string[] = [];
  const videos: string[] = [];
  const audios: string[] = [];
  const { width: w, height: h, fps } = TILE;
  inputs.forEach((input, n) => {
    const start = Math.max(0, input.offset);
    const tail = Math.max(0, total - start - input.duration);
    const label = `v${n}`;
    if (input.hasVideo) {
      filters.push(
        `[${n}:v]fps=${fps},scale=${w}:${h}:force_original_aspect_ratio=decrease,pad=${w}:${h}:(ow-iw)/2:(oh-ih)/2,setsar=1,` +
          `tpad=start_duration=${start.toFixed(3)}:start_mode=add:color=black:stop_mode=clone:stop_duration=${tail.toFixed(3)}[${label}]`,
      );
    } else {
      filters.push(`color=c=black:s=${w}x${h}:r=${fps}:d=${total.toFixed(3)}[${label}]`);
    }
    videos.push(`[${label}]`);
    if (input.hasAudio) {
      const ms = Math.round(start * 1000);
      filters.push(`[${n}:a]aresample=48000,adelay=delays=${ms}:all=1[a${n}]`);
      audios.push(`[a${n}]`);
    }
  });
  const cols = Math.ceil(Math.sqrt(inputs.length));
  if (videos.length === 1) filters.push(`${videos[0]}null[v]`);
  else {
    const layout = inputs.map((_, n) => `${(n % cols) * w}_${Math.floor(n / cols) * h}`).join('|');
    filters.push(`${videos.join('')}xstack=inputs=${videos.length}:layout=${layout}:fill=black[v]`);
  }
  if (audios.length === 1) filters.push(`${audios[0]}anull[a]`);
  else if (audios.length > 1) filters.push(`${audios.join('')}amix=inputs=${audios.length}:duration=longest:normalize=0[a]`);
  args.push('-filter_complex', filters.join(';'), '-map', '[v]');
  if (audios.length > 0) args.push('-map', '[a]', '-c:a', 'libopus', '-b:a', '64k');
  args.push('-t', total.toFixed(3), '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1M', '-f', 'webm', '-y', output);
  return args;
}
