/** The pieces of an upload that touch names: mime types, file names; and an idle timer for chunks. */
/** `type/subtype` then `; name=value` parameters; values may hold commas (`codecs=vp8,opus`) or be quoted. */
const MIME = /^\s*([a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*)\s*((?:;\s*[a-z0-9!#$&^_.+-]+=(?:"[^"\\\r\n]*"|[^;"\s]+)\s*)*);?\s*$/i;

export interface ParsedMime {
  /** `type/subtype`, lower case. */
  essence: string;
  /** The codecs parameter, if any (unquoted). */
  codecs: string | null;
}

export function parseMimeType(value: string): ParsedMime | null {
  const m = MIME.exec(value);
  if (!m?.[1]) return null;
  const codecs = /;\s*codecs=("[^"]*"|[^;"\s]+)/i.exec(m[2] ?? '')?.[1]?.replace(/^"|"$/g, '') ?? null;
  return { essence: m[1].toLowerCase(), codecs: codecs === '' ? null : codecs };
}

const EXTENSIONS: Record<string, string> = {
  'video/webm': 'webm',
  'audio/webm': 'webm',
  'video/mp4': 'mp4',
  'audio/mp4': 'm4a',
  'audio/ogg': 'ogg',
  'video/ogg': 'ogv',
  'audio/mpeg': 'mp3',
  'audio/wav': 'wav',
  'video/x-matroska': 'mkv',
  'video/quicktime': 'mov',
};

export function extensionFor(essence: string): string {
  return EXTENSIONS[essence] ?? 'bin';
}

/**
 * A file name safe to store and show: no directories, no control or shell-special
 * characters, no leading dots, at most 255 characters. It is only ever metadata:
 * the file on disk is named after the upload id.
 */
export function sanitizeFileName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  const clean = base
    .normalize('NFC')
    .replace(/[^\p{L}\p{N}._ ()+-]/gu, '_')
    .replace(/\s+/g, ' ')
    .replace(/_+/g, '_')
    .replace(/^[.\s]+/, '')
    .trim();
  const limited = [...clean].slice(0, 255).join('');
  return limited === '' ? 'recording' : limited;
}

/** Calls onIdle unless touched every `ms`. */
export class IdleTimer {
  private readonly timer: NodeJS.Timeout;
  constructor(ms: number, onIdle: () => void) {
    this.timer = setTimeout(onIdle, ms);
  }

  touch(): void {
    this.timer.refresh();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
