/**
 * The call page: join a room (with a development token from POST /dev/token, or a
 * token your application put in the URL: /#token=<jwt>&room=<room>), see and hear
 * the others, and the call controls. Plain DOM on top of the client SDK.
 *
 * The ids, classes and data attributes used here are a contract with the browser
 * tests; see the README's "Web client" section.
 */
import { SwitchboardClient, SwitchboardError, type ParticipantState, type RemoteTrack, type Role, type SwitchboardErrorCode, type Track } from '../sdk/index';

declare global {
  interface Window {
    /** The current client, for debugging and tests. */
    switchboard?: SwitchboardClient | null;
  }
}

// ---- elements -------------------------------------------------------------------------------
function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page lacks #${id}`);
  return el as T;
}

const ui = {
  status: byId<HTMLParagraphElement>('status'),
  error: byId<HTMLDivElement>('error'),
  lobby: byId<HTMLElement>('lobby'),
  lobbyTitle: byId<HTMLHeadingElement>('lobby-title'),
  form: byId<HTMLFormElement>('join-form'),
  name: byId<HTMLInputElement>('name'),
  room: byId<HTMLInputElement>('room'),
  roleField: byId<HTMLDivElement>('role-field'),
  role: byId<HTMLSelectElement>('role'),
  join: byId<HTMLButtonElement>('join'),
  noToken: byId<HTMLDivElement>('no-token'),
  call: byId<HTMLElement>('call'),
  callTitle: byId<HTMLHeadingElement>('call-title'),
  tiles: byId<HTMLDivElement>('tiles'),
  participants: byId<HTMLUListElement>('participants'),
  participantCount: byId<HTMLSpanElement>('participant-count'),
  controls: byId<HTMLDivElement>('controls'),
  toggleAudio: byId<HTMLButtonElement>('toggle-audio'),
  toggleVideo: byId<HTMLButtonElement>('toggle-video'),
  toggleHold: byId<HTMLButtonElement>('toggle-hold'),
  toggleScreen: byId<HTMLButtonElement>('toggle-screen'),
  enableSound: byId<HTMLButtonElement>('enable-sound'),
  leave: byId<HTMLButtonElement>('leave'),
  dtmf: byId<HTMLDivElement>('dtmf'),
  dtmfLog: byId<HTMLOListElement>('dtmf-log'),
  recordingIndicator: byId<HTMLParagraphElement>('recording-indicator'),
};

// ---- messages ---------------------------------------------------------------------------------
const MEDIA_HINT = 'you can still see and hear the others.';
const MESSAGES: Record<string, string> = {
  MEDIA_PERMISSION_DENIED: `Camera or microphone access was denied. Allow it in your browser's site settings and rejoin; ${MEDIA_HINT}`,
  MEDIA_DEVICE_NOT_FOUND: `No camera or microphone was found. Connect one and rejoin; ${MEDIA_HINT}`,
  MEDIA_DEVICE_BUSY: `Your camera or microphone is being used by another application. Close it and rejoin; ${MEDIA_HINT}`,
  MEDIA_DEVICE_UNAVAILABLE: `Camera and microphone are not available on this page (it needs https, or localhost); ${MEDIA_HINT}`,
  TOKEN_EXPIRED: 'Your session has expired. Join again.',
  ROOM_FULL: 'This room is full.',
  REMOVED_FROM_CALL: 'You were removed from the call.',
  SERVER_DRAINING: 'The server is restarting; reconnecting…',
  SERVER_FULL: 'The server is busy; reconnecting…',
  MUTED_BY_MODERATOR: 'A host or moderator muted you. They must allow it before you can unmute.',
  ROOM_SCOPE_MISMATCH: 'Your link is for another room.',
  CALL_NOT_FOUND: 'There is no call in this room, and you may not start one.',
  CONNECTION_FAILED: 'Could not connect to the server. Check your connection and try again.',
  RATE_LIMITED: 'Too many requests; wait a moment and try again.',
};

/** A SwitchboardError (or anything thrown) as a sentence for people. */
function describe(err: unknown): string {
  if (err instanceof SwitchboardError) {
    return MESSAGES[err.code] ?? `${capitalize(err.message)} (${err.code})`;
  }
  const e = err as { name?: string; message?: string } | null;
  if (e?.name === 'NotAllowedError') return 'The browser did not allow that.';
  return e?.message ? capitalize(e.message) : String(err);
}

const capitalize = (s: string): string => (s ? s[0]!.toUpperCase() + s.slice(1) : s);

function setStatus(text: string): void {
  ui.status.textContent = text;
}

function showError(err: unknown): void {
  ui.error.textContent = typeof err === 'string' ? err : describe(err);
  if (!(typeof err === 'string')) console.warn('switchboard:', err);
}

function clearError(): void {
  ui.error.textContent = '';
}

// ---- configuration and the token ------------------------------------------------------------
interface WebSettings {
  devTokens: boolean;
}

async function loadSettings(): Promise<WebSettings> {
  try {
    const res = await fetch('/web/config.json', { headers: { accept: 'application/json' } });
    if (!res.ok) return { devTokens: false };
    const body = (await res.json()) as Partial<WebSettings>;
    return { devTokens: body.devTokens === true };
  } catch {
    return { devTokens: false };
  }
}

const TOKEN_KEY = 'switchboard.token';
const ROOM_KEY = 'switchboard.room';
const NAME_KEY = 'switchboard.name';

interface LinkToken {
  token: string;
  room: string | null;
  name: string | null;
}

/** The token of /#token=<jwt>&room=<room>, taken out of the address bar (kept for this tab only). */
function takeLinkToken(): LinkToken | null {
  const params = new URLSearchParams(location.hash.slice(1));
  let token = params.get('token');
  let room = params.get('room');
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    if (room) sessionStorage.setItem(ROOM_KEY, room);
    else sessionStorage.removeItem(ROOM_KEY);
    // Out of the history and of anything the user copies from the address bar.
    history.replaceState(null, '', `${location.pathname}${location.search}${room ? `#room=${encodeURIComponent(room)}` : ''}`);
  } else {
    token = sessionStorage.getItem(TOKEN_KEY);
    room = room ?? sessionStorage.getItem(ROOM_KEY);
  }
  if (!token) return null;
  const claims = readClaims(token);
  return { token, room: room ?? claims.room ?? null, name: claims.name ?? null };
}

/** The claims of a JWT, unverified (only to prefill the form). */
function readClaims(token: string): { room?: string; name?: string } {
  try {
    const part = token.split('.')[1] ?? '';
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const c = JSON.parse(json) as { room?: unknown; name?: unknown };
    return { ...(typeof c.room === 'string' ? { room: c.room } : {}), ...(typeof c.name === 'string' ? { name: c.name } : {}) };
  } catch {
    return {};
  }
}

async function devToken(name: string, room: string, role: Role): Promise<string> {
  let res: Response;
  try {
    res = await fetch('/dev/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ display_name: name, room, role }),
    });
  } catch {
    throw new SwitchboardError('CONNECTION_FAILED', 'the server could not be reached');
  }
  const body = (await res.json().catch(() => null)) as { token?: string; error?: { code: SwitchboardErrorCode; message: string } } | null;
  if (!res.ok || !body?.token) {
    throw new SwitchboardError(body?.error?.code ?? 'CONNECTION_FAILED', body?.error?.message ?? `the server answered ${res.status}`);
  }
  return body.token;
}

// ---- call state ----------------------------------------------------------------------------
let client: SwitchboardClient | null = null;
let unsubscribe: Array<() => void> = [];
let linkToken: LinkToken | null = null;
let settings: WebSettings = { devTokens: false };
let busy = false;
/** Set once the call is over for this page (left, ended, removed), so later events do not run twice. */
let ending = false;
let activeSpeaker: string | null = null;
let soundBlocked = false;

const myId = (): string | null => client?.participantId ?? null;
const me = (): ParticipantState | undefined => client?.me;
const myRole = (): Role => me()?.role ?? 'participant';
const canModerate = (): boolean => myRole() === 'host' || myRole() === 'moderator';

const displayName = (p: ParticipantState): string => p.display_name || p.user_id;

function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0]!, words[words.length - 1]!].map((w) => [...w][0] ?? '') : [...(words[0] ?? '')].slice(0, 2);
  return letters.join('').toUpperCase() || '?';
}

const ROLE_LABEL: Record<Role, string> = { host: 'host', moderator: 'moderator', participant: 'participant' };

// ---- tiles --------------------------------------------------------------------------------
interface Tile {
  el: HTMLDivElement;
  video: HTMLVideoElement;
  name: HTMLSpanElement;
  muted: HTMLSpanElement;
  initials: HTMLDivElement;
  /** Ids of the tracks in the video element's stream. */
  trackKey: string;
}

const tiles = new Map<string, Tile>();

function createTile(id: string, self: boolean): Tile {
  const el = document.createElement('div');
  el.className = 'tile';
  el.dataset.participantId = id;
  if (self) el.dataset.self = 'true';
  el.setAttribute('role', 'group');

  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.setAttribute('playsinline', '');
  if (self) {
    // My own preview: never play my own microphone back.
    video.muted = true;
    video.setAttribute('muted', '');
    video.classList.add('mirrored');
  }

  const initialsEl = document.createElement('div');
  initialsEl.className = 'tile-initials';
  initialsEl.setAttribute('aria-hidden', 'true');

  const caption = document.createElement('div');
  caption.className = 'tile-caption';
  const name = document.createElement('span');
  name.className = 'tile-name';
  const muted = document.createElement('span');
  muted.className = 'tile-muted';
  muted.textContent = 'Muted';
  muted.hidden = true;
  caption.append(name, muted);

  el.append(video, initialsEl, caption);
  const tile: Tile = { el, video, name, muted, initials: initialsEl, trackKey: '' };
  tiles.set(id, tile);
  return tile;
}

/** Plays a video element; when the browser refuses sound without a click, plays it muted and offers a button. */
function play(video: HTMLVideoElement): void {
  if (!video.srcObject) return;
  video.play().catch((err: unknown) => {
    if ((err as { name?: string }).name !== 'NotAllowedError' || video.muted) return;
    video.muted = true;
    soundBlocked = true;
    ui.enableSound.hidden = false;
    void video.play().catch(() => undefined);
  });
}

function enableSound(): void {
  soundBlocked = false;
  ui.enableSound.hidden = true;
  for (const [id, t] of tiles) {
    if (id === myId()) continue;
    t.video.muted = false;
    play(t.video);
  }
}

function tracksOf(participantId: string): RemoteTrack[] {
  return client ? [...client.remoteTracks.values()].filter((r) => r.participantId === participantId) : [];
}

/** The video to show and the tracks to play for a participant, and whether the picture is live. */
function mediaOf(p: ParticipantState, self: boolean): { tracks: MediaStreamTrack[]; videoLive: boolean } {
  const videoMuted = p.muted_tracks.includes('video') || p.held_tracks.includes('video');
  if (self && client) {
    const screen = liveTrack(client.localTrack('screen'));
    const camera = liveTrack(client.localTrack('camera'));
    const video = screen ?? camera;
    return { tracks: video ? [video] : [], videoLive: Boolean(screen ?? (camera && !videoMuted)) };
  }
  const remote = tracksOf(p.participant_id);
  const screen = remote.find((r) => r.source === 'screen');
  const camera = remote.find((r) => r.source === 'camera');
  const mic = remote.find((r) => r.source === 'mic');
  // Screen sharing wins over the camera while it is live.
  const video = screen && !screen.paused ? screen : (camera ?? screen);
  const iAmHeld = me()?.held_tracks.includes('video') ?? false;
  const videoLive = Boolean(video && !video.paused && !iAmHeld && (video.source === 'screen' || !videoMuted));
  return { tracks: [video?.track, mic?.track].filter((t): t is MediaStreamTrack => t !== undefined), videoLive };
}

const liveTrack = (t: MediaStreamTrack | undefined): MediaStreamTrack | undefined => (t && t.readyState === 'live' ? t : undefined);

function renderTile(p: ParticipantState): void {
  const self = p.participant_id === myId();
  const tile = tiles.get(p.participant_id) ?? createTile(p.participant_id, self);
  if (!tile.el.isConnected) {
    if (self) ui.tiles.prepend(tile.el);
    else ui.tiles.append(tile.el);
  }
  const name = displayName(p);
  const audioMuted = p.muted_tracks.includes('audio');
  const videoMuted = p.muted_tracks.includes('video');
  tile.el.dataset.audioMuted = String(audioMuted);
  tile.el.dataset.videoMuted = String(videoMuted);
  tile.el.setAttribute('aria-label', `${name}${self ? ' (you)' : ''}, ${ROLE_LABEL[p.role]}${audioMuted ? ', muted' : ''}`);
  tile.name.textContent = `${name}${self ? ' (you)' : ''} · ${ROLE_LABEL[p.role]}`;
  tile.muted.hidden = !audioMuted;
  tile.initials.textContent = initials(name);
  tile.video.setAttribute('aria-label', `Video of ${name}${self ? ' (you)' : ''}`);
  if (p.participant_id === activeSpeaker) tile.el.dataset.speaking = 'true';
  else delete tile.el.dataset.speaking;

  const { tracks, videoLive } = mediaOf(p, self);
  tile.el.dataset.videoLive = String(videoLive);
  const key = tracks.map((t) => t.id).join(',');
  if (key !== tile.trackKey) {
    tile.trackKey = key;
    tile.video.srcObject = tracks.length > 0 ? new MediaStream(tracks) : null;
    if (!self && soundBlocked) tile.video.muted = true;
    play(tile.video);
  }
  if (self) tile.video.classList.toggle('mirrored', !liveTrack(client?.localTrack('screen')));
}

function removeTile(id: string): void {
  const tile = tiles.get(id);
  if (!tile) return;
  tile.video.srcObject = null;
  tile.el.remove();
  tiles.delete(id);
}

// ---- participant list ---------------------------------------------------------------------------
const items = new Map<string, HTMLLIElement>();

function moderationButton(action: string): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.dataset.action = action;
  if (action === 'remove') b.classList.add('danger');
  return b;
}

function renderItem(p: ParticipantState): void {
  const self = p.participant_id === myId();
  let li = items.get(p.participant_id);
  if (!li) {
    li = document.createElement('li');
    li.dataset.participantId = p.participant_id;
    const name = document.createElement('span');
    name.className = 'name';
    const role = document.createElement('span');
    role.className = 'role';
    const state = document.createElement('span');
    state.className = 'state';
    li.append(name, role, state);
    items.set(p.participant_id, li);
  }
  if (!li.isConnected) {
    if (self) ui.participants.prepend(li);
    else ui.participants.append(li);
  }
  const name = displayName(p);
  const audioMuted = p.muted_tracks.includes('audio');
  const videoMuted = p.muted_tracks.includes('video');
  li.dataset.audioMuted = String(audioMuted);
  li.dataset.videoMuted = String(videoMuted);
  li.querySelector('.name')!.textContent = `${name}${self ? ' (you)' : ''}`;
  li.querySelector('.role')!.textContent = ROLE_LABEL[p.role];
  const state: string[] = [];
  if (audioMuted) state.push(p.locked_tracks.includes('audio') ? 'mic muted by a moderator' : 'mic muted');
  if (videoMuted) state.push(p.locked_tracks.includes('video') ? 'camera off by a moderator' : 'camera off');
  if (p.held_tracks.length > 0) state.push('on hold');
  if (!p.connected) state.push('reconnecting');
  li.querySelector('.state')!.textContent = state.length > 0 ? state.join(', ') : 'mic on, camera on';

  // Moderation: only a host or moderator sees these, and never on a host (the server refuses a moderator acting on one).
  const moderate = canModerate() && !self && p.role !== 'host';
  let actions = li.querySelector<HTMLSpanElement>('.actions');
  if (!moderate) {
    actions?.remove();
    return;
  }
  if (!actions) {
    actions = document.createElement('span');
    actions.className = 'actions';
    actions.append(moderationButton('mute-audio'), moderationButton('mute-video'), moderationButton('remove'));
    li.append(actions);
  }
  const muteAudio = actions.querySelector<HTMLButtonElement>('[data-action="mute-audio"]')!;
  muteAudio.setAttribute('aria-pressed', String(audioMuted));
  muteAudio.textContent = audioMuted ? 'Unmute mic' : 'Mute mic';
  muteAudio.setAttribute('aria-label', `${audioMuted ? 'Allow to unmute the microphone of' : 'Mute the microphone of'} ${name}`);
  muteAudio.title = audioMuted ? `Lets ${name} unmute again (they decide when)` : `Mutes ${name}; they cannot unmute until allowed`;
  const muteVideo = actions.querySelector<HTMLButtonElement>('[data-action="mute-video"]')!;
  muteVideo.setAttribute('aria-pressed', String(videoMuted));
  muteVideo.textContent = videoMuted ? 'Allow camera' : 'Stop camera';
  muteVideo.setAttribute('aria-label', `${videoMuted ? 'Allow the camera of' : 'Stop the camera of'} ${name}`);
  const remove = actions.querySelector<HTMLButtonElement>('[data-action="remove"]')!;
  remove.textContent = 'Remove';
  remove.setAttribute('aria-label', `Remove ${name} from the call`);
}

function removeItem(id: string): void {
  items.get(id)?.remove();
  items.delete(id);
}

async function onModeration(ev: MouseEvent): Promise<void> {
  const button = (ev.target as HTMLElement).closest<HTMLButtonElement>('button[data-action]');
  const li = button?.closest<HTMLLIElement>('li[data-participant-id]');
  const id = li?.dataset.participantId;
  if (!button || !id || !client) return;
  const p = client.participants.get(id);
  if (!p) return;
  clearError();
  button.disabled = true;
  try {
    const action = button.dataset.action;
    if (action === 'mute-audio' || action === 'mute-video') {
      const track: Track = action === 'mute-audio' ? 'audio' : 'video';
      if (p.muted_tracks.includes(track)) await client.unmute(track, id);
      else await client.mute(track, id);
    } else if (action === 'remove') {
      await client.removeParticipant(id);
      setStatus(`${displayName(p)} was removed from the call.`);
    }
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
}

// ---- controls --------------------------------------------------------------------------------
function setPressed(b: HTMLButtonElement, pressed: boolean, label: string): void {
  b.setAttribute('aria-pressed', String(pressed));
  b.textContent = label;
}

let hostControls: HTMLDivElement | null = null;
let recordButton: HTMLButtonElement | null = null;

function renderControls(): void {
  const p = me();
  if (!p || !client) return;
  const audioMuted = p.muted_tracks.includes('audio');
  const videoMuted = p.muted_tracks.includes('video');
  const audioLocked = p.locked_tracks.includes('audio');
  const videoLocked = p.locked_tracks.includes('video');
  setPressed(ui.toggleAudio, audioMuted, audioMuted ? (audioLocked ? 'Mic muted by a moderator' : 'Unmute mic') : 'Mute mic');
  ui.toggleAudio.dataset.locked = String(audioLocked);
  setPressed(ui.toggleVideo, videoMuted, videoMuted ? (videoLocked ? 'Camera stopped by a moderator' : 'Start camera') : 'Stop camera');
  ui.toggleVideo.dataset.locked = String(videoLocked);
  const held = p.held_tracks.length > 0;
  setPressed(ui.toggleHold, held, held ? 'Resume' : 'Hold');
  const sharing = Boolean(liveTrack(client.localTrack('screen')));
  setPressed(ui.toggleScreen, sharing, sharing ? 'Stop sharing' : 'Share screen');
  ui.toggleScreen.hidden = !navigator.mediaDevices?.getDisplayMedia;

  // Host controls exist in the page only for a host or moderator.
  if (canModerate()) {
    if (!hostControls) {
      hostControls = document.createElement('div');
      hostControls.id = 'host-controls';
      hostControls.setAttribute('role', 'group');
      hostControls.setAttribute('aria-label', 'Host controls');
      recordButton = document.createElement('button');
      recordButton.id = 'record';
      recordButton.type = 'button';
      recordButton.addEventListener('click', () => void toggleRecording());
      const end = document.createElement('button');
      end.id = 'end-call';
      end.type = 'button';
      end.className = 'danger';
      end.textContent = 'End call for everyone';
      end.addEventListener('click', () => void endCall(end));
      hostControls.append(recordButton, end);
      ui.controls.insertBefore(hostControls, ui.leave);
    }
  } else if (hostControls) {
    hostControls.remove();
    hostControls = null;
    recordButton = null;
  }
  renderRecording();
}

function renderRecording(): void {
  const recording = client?.recording ?? false;
  ui.recordingIndicator.hidden = !recording;
  if (recordButton && !recordButton.disabled) setPressed(recordButton, recording, recording ? 'Stop recording' : 'Start recording');
}

async function toggleRecording(): Promise<void> {
  if (!client || !recordButton) return;
  const button = recordButton;
  const stopping = client.recording;
  clearError();
  button.disabled = true;
  button.textContent = stopping ? 'Stopping recording…' : 'Starting recording…';
  try {
    if (stopping) {
      const finished = await client.stopRecording();
      setStatus(finished ? `Recording ${finished.status}: ${finished.files.length} file(s).` : 'The call was not being recorded.');
    } else {
      await client.startRecording();
      setStatus('Recording started.');
    }
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
    renderRecording();
  }
}

async function endCall(button: HTMLButtonElement): Promise<void> {
  if (!client) return;
  clearError();
  button.disabled = true;
  try {
    await client.endCall();
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
}

async function toggleMute(track: 'audio' | 'video', button: HTMLButtonElement): Promise<void> {
  const p = me();
  if (!client || !p) return;
  clearError();
  button.disabled = true;
  try {
    if (p.muted_tracks.includes(track)) await client.unmute(track);
    else await client.mute(track);
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
}

async function toggleHold(): Promise<void> {
  const p = me();
  if (!client || !p) return;
  clearError();
  ui.toggleHold.disabled = true;
  try {
    if (p.held_tracks.length > 0) await client.unhold();
    else await client.hold();
  } catch (err) {
    showError(err);
  } finally {
    ui.toggleHold.disabled = false;
  }
}

async function toggleScreen(): Promise<void> {
  if (!client) return;
  clearError();
  ui.toggleScreen.disabled = true;
  try {
    if (liveTrack(client.localTrack('screen'))) {
      await client.unpublish('screen');
    } else {
      const track = await client.publishScreen();
      // "Stop sharing" in the browser's own bar ends the track: the SDK unpublishes; redraw.
      track.addEventListener('ended', () => setTimeout(renderAll, 0));
    }
  } catch (err) {
    // Cancelling the browser's picker is not an error worth shouting about.
    if ((err as { name?: string }).name === 'NotAllowedError') setStatus('Screen sharing was cancelled.');
    else showError(err);
  } finally {
    ui.toggleScreen.disabled = false;
    renderAll();
  }
}

async function sendTone(tone: string): Promise<void> {
  if (!client) return;
  clearError();
  try {
    await client.sendDtmf(tone);
    logTone('You', tone);
  } catch (err) {
    showError(err);
  }
}

function logTone(who: string, tones: string): void {
  const li = document.createElement('li');
  li.textContent = `${who}: ${tones}`;
  ui.dtmfLog.append(li);
  while (ui.dtmfLog.children.length > 20) ui.dtmfLog.firstElementChild?.remove();
}

// ---- rendering -------------------------------------------------------------------------------
function renderAll(): void {
  if (!client) return;
  const present = new Set(client.participants.keys());
  for (const id of [...tiles.keys()]) if (!present.has(id)) removeTile(id);
  for (const id of [...items.keys()]) if (!present.has(id)) removeItem(id);
  for (const p of client.participants.values()) {
    renderTile(p);
    renderItem(p);
  }
  ui.participantCount.textContent = `(${present.size})`;
  renderControls();
}

function renderParticipant(p: ParticipantState): void {
  if (!client?.participants.has(p.participant_id)) return;
  renderTile(p);
  renderItem(p);
  if (p.participant_id === myId()) {
    // My role may have changed: moderation buttons appear or go, and the host controls.
    for (const other of client.participants.values()) if (other.participant_id !== p.participant_id) renderItem(other);
    renderControls();
  }
}

function inCallStatus(): void {
  if (!client?.room) return;
  const n = client.participants.size;
  const held = (me()?.held_tracks.length ?? 0) > 0;
  setStatus(`In room ${client.room} with ${n - 1} other${n - 1 === 1 ? '' : 's'}${held ? '; you are on hold' : ''}.`);
}

// ---- joining and leaving ---------------------------------------------------------------------------
function showLobby(): void {
  ui.call.hidden = true;
  ui.lobby.hidden = false;
  document.title = 'Switchboard call';
  const withForm = Boolean(linkToken) || settings.devTokens;
  ui.form.hidden = !withForm;
  ui.noToken.hidden = withForm;
}

function showCall(room: string): void {
  ui.lobby.hidden = true;
  ui.call.hidden = false;
  ui.callTitle.textContent = `Call in room ${room}`;
  document.title = `${room} · Switchboard call`;
}

/** Connects, retrying while the server drains or is full (a restart behind a load balancer). */
async function connect(token: string): Promise<SwitchboardClient> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await SwitchboardClient.connect({ url: location.origin, token });
    } catch (err) {
      const retry = err instanceof SwitchboardError && (err.code === 'SERVER_DRAINING' || err.code === 'SERVER_FULL');
      if (!retry || attempt >= 5) throw err;
      showError(err);
      await new Promise((r) => setTimeout(r, 500 * attempt + Math.random() * 500));
    }
  }
}

function wire(c: SwitchboardClient): void {
  const render = () => {
    renderAll();
    inCallStatus();
  };
  unsubscribe = [
    c.on('joined', ({ state, resumed }) => {
      if (state.mode !== 'sfu') showError('This call is peer-to-peer; this page supports calls through the server (SFU) only.');
      if (resumed) setStatus('Reconnected.');
      render();
    }),
    c.on('participant-joined', render),
    c.on('participant-left', render),
    c.on('participant-updated', (p) => {
      renderParticipant(p);
      if (p.participant_id === myId()) syncLocalTracks(p);
    }),
    c.on('track', (t) => renderParticipantById(t.participantId)),
    c.on('track-ended', (t) => renderParticipantById(t.participantId)),
    c.on('track-paused', (t) => renderParticipantById(t.participantId)),
    c.on('active-speaker', ({ participantId }) => {
      const previous = activeSpeaker;
      activeSpeaker = participantId;
      if (previous) renderParticipantById(previous);
      if (participantId) renderParticipantById(participantId);
    }),
    c.on('call-state', ({ status }) => {
      if (status === 'ended') void endSession('The call has ended.');
      else renderRecording();
    }),
    c.on('recording-started', () => renderRecording()),
    c.on('recording-finished', () => renderRecording()),
    c.on('dtmf', ({ from, tones }) => {
      const p = c.participants.get(from);
      logTone(p ? displayName(p) : 'Someone', tones);
    }),
    c.on(
      'removed',
      ({ reason }) =>
        void endSession(
          null,
          reason === 'replaced' ? 'You joined this room from another tab or device, so this one left the call.' : MESSAGES.REMOVED_FROM_CALL!,
        ),
    ),
    c.on('media-reset', () => setStatus('The media server changed; reconnecting the media…')),
    c.on('connection', ({ state, reason }) => {
      if (ending) return;
      if (state === 'reconnecting') {
        setStatus(reason === 'SERVER_DRAINING' || reason === 'server-draining' ? MESSAGES.SERVER_DRAINING! : 'Connection lost; reconnecting…');
      } else if (state === 'connected') {
        inCallStatus();
      } else if (state === 'closed') {
        void endSession(null, 'You were disconnected from the server. Join again.');
      }
    }),
    c.on('error', (err) => {
      if (ending) return;
      if (err.code === 'TOKEN_EXPIRED' || err.code === 'REMOVED_FROM_CALL') void endSession(null, describe(err));
      else if (isVanishedMedia(err)) console.warn('switchboard: a track went away while being received', err);
      else showError(err);
    }),
  ];
  // The SDK does not surface this one: the node is shutting down, socket.io-client reconnects elsewhere.
  c.socket.on('server-draining', () => setStatus(MESSAGES.SERVER_DRAINING!));
}

/**
 * Receiving a track of someone who is leaving (or stops sharing) at that moment
 * fails harmlessly: the producer or consumer is gone. Not worth an alert.
 */
function isVanishedMedia(err: SwitchboardError): boolean {
  return err.code === 'CONSUMER_NOT_FOUND' || err.code === 'PRODUCER_NOT_FOUND' || (err.code === 'MEDIA_REQUEST_FAILED' && /not found/i.test(err.message));
}

function renderParticipantById(id: string): void {
  const p = client?.participants.get(id);
  if (p) renderParticipant(p);
}

/** My muted camera or microphone is also switched off locally (the camera light goes out). */
function syncLocalTracks(p: ParticipantState): void {
  if (!client) return;
  const mic = client.localTrack('mic');
  const camera = client.localTrack('camera');
  if (mic) mic.enabled = !p.muted_tracks.includes('audio');
  if (camera) camera.enabled = !p.muted_tracks.includes('video');
  inCallStatus();
}

/** Camera and microphone, each on its own: without one (denied, missing, busy) the call goes on receive-only. */
async function publishLocalMedia(c: SwitchboardClient): Promise<void> {
  let failure: unknown = null;
  for (const publish of [() => c.publishCamera(), () => c.publishMicrophone()]) {
    try {
      await publish();
    } catch (err) {
      failure ??= err;
    }
    if (client !== c) return;
    renderAll();
  }
  if (failure) showError(failure);
}

async function onJoin(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  if (busy || client) return;
  clearError();
  const name = ui.name.value.trim();
  const room = ui.room.value.trim();
  if (!name) {
    showError('Enter your name.');
    ui.name.focus();
    return;
  }
  if (!ui.room.checkValidity() || !room) {
    showError('Enter a room name: letters, digits and _ . : @ -, starting with a letter or digit.');
    ui.room.focus();
    return;
  }
  busy = true;
  ending = false;
  ui.join.disabled = true;
  ui.form.setAttribute('aria-busy', 'true');
  let c: SwitchboardClient | null = null;
  try {
    localStorage.setItem(NAME_KEY, name);
    let token = linkToken?.token;
    if (!token) {
      setStatus('Getting a token…');
      token = await devToken(name, room, (ui.role.value as Role) || 'participant');
    }
    setStatus('Connecting…');
    c = await connect(token);
    client = c;
    window.switchboard = c;
    wire(c);
    setStatus(`Joining room ${room}…`);
    await c.join(room, { displayName: name });
    clearError();
    showCall(room);
    renderAll();
    inCallStatus();
    ui.callTitle.focus();
    busy = false;
    ui.join.disabled = false;
    ui.form.removeAttribute('aria-busy');
    await publishLocalMedia(c);
  } catch (err) {
    if (c && client === c) teardown();
    showLobby();
    setStatus('Not in a call.');
    showError(err);
    if (err instanceof SwitchboardError && err.code === 'TOKEN_EXPIRED' && linkToken) forgetLinkToken();
  } finally {
    busy = false;
    ui.join.disabled = false;
    ui.form.removeAttribute('aria-busy');
  }
}

function forgetLinkToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  linkToken = null;
  showLobby();
}

/** Stops my camera, microphone and screen, and drops the client and every tile. */
function teardown(): void {
  const c = client;
  client = null;
  window.switchboard = null;
  for (const off of unsubscribe) off();
  unsubscribe = [];
  if (c) {
    for (const source of ['camera', 'mic', 'screen'] as const) c.localTrack(source)?.stop();
    c.socket.off('server-draining');
    c.close();
  }
  for (const id of [...tiles.keys()]) removeTile(id);
  for (const id of [...items.keys()]) removeItem(id);
  hostControls?.remove();
  hostControls = null;
  recordButton = null;
  activeSpeaker = null;
  soundBlocked = false;
  ui.enableSound.hidden = true;
  ui.recordingIndicator.hidden = true;
  ui.dtmfLog.replaceChildren();
}

/** Back to the form with a message: after leaving, the end of the call, removal or a lost session. */
async function endSession(status: string | null, error?: string): Promise<void> {
  if (ending || !client) return;
  ending = true;
  teardown();
  showLobby();
  if (error) {
    ui.error.textContent = error;
    setStatus('Not in a call.');
  } else {
    clearError();
    setStatus(status ?? 'Not in a call.');
  }
  if (error === MESSAGES.TOKEN_EXPIRED && linkToken) forgetLinkToken();
  ui.lobbyTitle.focus();
}

async function leave(): Promise<void> {
  const c = client;
  if (!c || ending) return;
  ui.leave.disabled = true;
  // Stop the devices first: the SDK's leave() forgets them without stopping them.
  for (const source of ['camera', 'mic', 'screen'] as const) c.localTrack(source)?.stop();
  try {
    await c.leave();
  } catch {
    // Gone already (disconnected, call ended): leaving locally is enough.
  } finally {
    ui.leave.disabled = false;
  }
  await endSession('You left the call.');
}

// ---- start ------------------------------------------------------------------------------------
async function start(): Promise<void> {
  ui.form.addEventListener('submit', (ev) => void onJoin(ev));
  ui.toggleAudio.addEventListener('click', () => void toggleMute('audio', ui.toggleAudio));
  ui.toggleVideo.addEventListener('click', () => void toggleMute('video', ui.toggleVideo));
  ui.toggleHold.addEventListener('click', () => void toggleHold());
  ui.toggleScreen.addEventListener('click', () => void toggleScreen());
  ui.enableSound.addEventListener('click', enableSound);
  ui.leave.addEventListener('click', () => void leave());
  ui.participants.addEventListener('click', (ev) => void onModeration(ev));
  ui.dtmf.addEventListener('click', (ev) => {
    const b = (ev.target as HTMLElement).closest<HTMLButtonElement>('button[data-tone]');
    if (b?.dataset.tone) void sendTone(b.dataset.tone);
  });
  window.addEventListener('pagehide', () => {
    if (client) void client.leave().catch(() => undefined);
  });

  settings = await loadSettings();
  linkToken = takeLinkToken();
  const params = new URLSearchParams(location.search);
  const hash = new URLSearchParams(location.hash.slice(1));
  ui.room.value = linkToken?.room ?? hash.get('room') ?? params.get('room') ?? '';
  ui.name.value = linkToken?.name ?? localStorage.getItem(NAME_KEY) ?? '';
  if (linkToken?.room) ui.room.readOnly = true;
  // The role is chosen here only for development tokens; a token from a link carries its own.
  if (linkToken || !settings.devTokens) ui.roleField.remove();
  showLobby();
  setStatus(ui.form.hidden ? 'You need a link to join a call.' : 'Not in a call.');
}

void start();
