/**
 * The recordings admin page: lists GET /recordings with an API key (kept in
 * sessionStorage, this tab only), pages through next_cursor, and downloads a file
 * through fetch (the key is a header, so a plain link cannot carry it).
 */
export {};

interface Recording {
  id: string;
  call_id: string;
  session_id: string;
  participant_id: string | null;
  kind: 'participant' | 'composite' | 'client';
  segment: number;
  status: string;
  mime_type: string;
  size_bytes: number | null;
  duration_ms: number | null;
  started_at: string;
  ended_at: string | null;
  error: string | null;
  download_url: string;
}

interface Page {
  items: Recording[];
  next_cursor: string | null;
}

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page lacks #${id}`);
  return el as T;
}

const ui = {
  status: byId<HTMLParagraphElement>('admin-status'),
  error: byId<HTMLDivElement>('admin-error'),
  form: byId<HTMLFormElement>('key-form'),
  key: byId<HTMLInputElement>('api-key'),
  load: byId<HTMLButtonElement>('load'),
  table: byId<HTMLTableElement>('recordings'),
  more: byId<HTMLButtonElement>('more'),
};
const tbody = ui.table.tBodies[0]!;

const KEY_STORAGE = 'switchboard.apiKey';
const PAGE_SIZE = 50;
let nextCursor: string | null = null;
let shown = 0;
let loading = false;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function describe(err: unknown): string {
  if (err instanceof HttpError) {
    if (err.status === 401) return 'Invalid API key.';
    if (err.status === 403) return 'This key may not read recordings.';
    if (err.status === 429) return 'Too many requests; wait a moment and try again.';
    if (err.code === 'RECORDING_IN_PROGRESS') return 'This recording is still being written; download it once it has finished.';
    if (err.code === 'FILE_MISSING') return 'The file of this recording is missing on the server.';
    return `${err.message} (${err.code})`;
  }
  if (err instanceof TypeError) return 'Could not reach the server. Check your connection and try again.';
  return (err as Error)?.message ?? String(err);
}

function showError(err: unknown): void {
  ui.error.textContent = describe(err);
}

async function apiFetch(url: string): Promise<Response> {
  const res = await fetch(url, { headers: { 'x-api-key': ui.key.value.trim(), accept: 'application/json' } });
  if (res.ok) return res;
  const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
  throw new HttpError(res.status, body?.error?.code ?? `HTTP_${res.status}`, body?.error?.message ?? `the server answered ${res.status}`);
}

// ---- formatting ----
function duration(ms: number | null): string {
  if (ms === null) return '—';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function size(bytes: number | null): string {
  if (bytes === null) return '—';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** The first block of a UUID (the whole one is in the cell's title). */
const shortId = (id: string): string => (id.length > 13 ? `${id.slice(0, 8)}…` : id);

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

function cell(text: string, className?: string, title?: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  if (title) td.title = title;
  return td;
}

function fileName(r: Recording, disposition: string | null): string {
  const m = disposition ? /filename="?([^";]+)"?/i.exec(disposition) : null;
  if (m?.[1]) return m[1];
  const ext = r.mime_type.includes('matroska') ? 'mkv' : 'webm';
  return `${r.call_id}-${r.kind === 'composite' ? 'composite' : (r.participant_id ?? 'participant')}-${r.segment}.${ext}`;
}

function row(r: Recording): HTMLTableRowElement {
  const tr = document.createElement('tr');
  tr.dataset.recordingId = r.id;
  const who = r.kind === 'composite' ? 'composite (everyone)' : (r.participant_id ?? '—');
  const started = new Date(r.started_at);
  tr.append(
    cell(shortId(r.call_id), 'id', r.call_id),
    r.kind === 'composite' || !r.participant_id ? cell(who) : cell(shortId(r.participant_id), 'id', r.participant_id),
    cell(r.status, `status-${r.status}`, r.error ?? undefined),
    cell(duration(r.duration_ms), 'num'),
    cell(size(r.size_bytes), 'num'),
    cell(dateFormat.format(started), undefined, r.started_at),
  );
  const td = document.createElement('td');
  const a = document.createElement('a');
  a.className = 'download';
  a.href = r.download_url;
  a.textContent = 'Download';
  a.setAttribute('aria-label', `Download the recording of ${who} in call ${r.call_id}, started ${dateFormat.format(started)}`);
  a.addEventListener('click', (ev) => {
    ev.preventDefault();
    void download(r, a);
  });
  td.append(a);
  tr.append(td);
  return tr;
}

async function download(r: Recording, a: HTMLAnchorElement): Promise<void> {
  ui.error.textContent = '';
  a.setAttribute('aria-busy', 'true');
  ui.status.textContent = 'Downloading…';
  try {
    const res = await apiFetch(r.download_url);
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const link = document.createElement('a');
    link.href = url;
    link.download = fileName(r, res.headers.get('content-disposition'));
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
    // Give the browser time to start saving before the blob goes.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    ui.status.textContent = `Downloaded ${link.download} (${size(blob.size)}).`;
  } catch (err) {
    ui.status.textContent = 'The download failed.';
    showError(err);
  } finally {
    a.removeAttribute('aria-busy');
  }
}

async function load(more: boolean): Promise<void> {
  if (loading) return;
  const key = ui.key.value.trim();
  if (!key) {
    ui.error.textContent = 'Enter an API key.';
    ui.key.focus();
    return;
  }
  loading = true;
  ui.error.textContent = '';
  ui.load.disabled = true;
  ui.more.disabled = true;
  ui.status.textContent = 'Loading recordings…';
  try {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (more && nextCursor) q.set('cursor', nextCursor);
    const page = (await (await apiFetch(`/recordings?${q.toString()}`)).json()) as Page;
    sessionStorage.setItem(KEY_STORAGE, key);
    if (!more) {
      tbody.replaceChildren();
      shown = 0;
    }
    for (const r of page.items) tbody.append(row(r));
    shown += page.items.length;
    nextCursor = page.next_cursor;
    ui.table.hidden = false;
    ui.more.hidden = nextCursor === null;
    ui.status.textContent =
      shown === 0 ? 'No recordings yet.' : `${shown} recording${shown === 1 ? '' : 's'} shown${nextCursor ? '; more are available' : ''}.`;
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) sessionStorage.removeItem(KEY_STORAGE);
    ui.status.textContent = 'Could not load the recordings.';
    showError(err);
  } finally {
    loading = false;
    ui.load.disabled = false;
    ui.more.disabled = false;
  }
}

ui.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void load(false);
});
ui.more.addEventListener('click', () => void load(true));

const saved = sessionStorage.getItem(KEY_STORAGE);
if (saved) {
  ui.key.value = saved;
  void load(false);
}
