/**
 * The Switchboard client SDK in a page: joins the room of the token given in the
 * address (#url=…&token=…[&room=…]), publishes the camera and microphone (receive
 * only when refused), shows everyone's video, and leaves. Build: npm run build.
 */
import { SwitchboardClient, SwitchboardError } from '@switchboard/client';

const params = new URLSearchParams(location.hash.slice(1));
const url = params.get('url') ?? 'http://localhost:8080';
const token = params.get('token') ?? '';
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (text: string) => ($('status').textContent = text);
const videos = new Map<string, HTMLVideoElement>();

/** The room a token is for (its `room` claim), unless the address names one. */
function roomOf(jwt: string): string {
  const claims = JSON.parse(atob(jwt.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { room?: string };
  return params.get('room') ?? claims.room ?? 'demo';
}

async function main(): Promise<void> {
  if (!token) throw new SwitchboardError('AUTH_REQUIRED', 'open this page as index.html#url=<server>&token=<token>');
  status(`connecting to ${url}…`);
  const call = await SwitchboardClient.connect({ url, token });
  (window as unknown as { call: SwitchboardClient }).call = call;

  call.on('track', ({ producerId, track }) => {
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.dataset.producerId = producerId;
    video.srcObject = new MediaStream([track]);
    if (track.kind === 'audio') video.hidden = true;
    videos.set(producerId, video);
    $('videos').append(video);
  });
  call.on('track-ended', ({ producerId }) => {
    videos.get(producerId)?.remove();
    videos.delete(producerId);
  });
  call.on('participant-joined', (p) => status(`${p.display_name ?? p.user_id} joined`));
  call.on('participant-left', ({ participant, reason }) => status(`${participant?.display_name ?? 'someone'} left (${reason})`));
  call.on('error', (e) => ($('error').textContent = `${e.code}: ${e.message}`));

  const room = roomOf(token);
  await call.join(room, { displayName: 'Browser example' });
  try {
    const camera = await call.publishCamera();
    await call.publishMicrophone();
    $<HTMLVideoElement>('local').srcObject = new MediaStream([camera]);
  } catch (e) {
    if (!(e instanceof SwitchboardError && ['MEDIA_PERMISSION_DENIED', 'MEDIA_DEVICE_NOT_FOUND', 'MEDIA_DEVICE_UNAVAILABLE'].includes(e.code))) throw e;
    $('error').textContent = `receiving only: ${e.message}`;
  }
  status(`in room ${room} (call ${call.callId}) with ${call.participants.size - 1} others`);
  document.body.dataset.joined = 'true';

  const leave = $<HTMLButtonElement>('leave');
  leave.disabled = false;
  leave.onclick = () => {
    call
      .leave()
      .then(() => call.close())
      .then(() => status('left'))
      .catch((e: unknown) => ($('error').textContent = String(e)));
  };
}

main().catch((e: unknown) => {
  status('failed');
  $('error').textContent = e instanceof SwitchboardError ? `${e.code}: ${e.message}` : String(e);
});
