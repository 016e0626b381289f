/**
 * The local camera, microphone and screen: getUserMedia and getDisplayMedia
 * with the browser's refusals turned into stable codes. Where there is no
 * media API at all (Node, a page that is not a secure context), the code is
 * MEDIA_DEVICE_UNAVAILABLE: publish your own tracks with publishTrack instead.
 */
import { mediaError, SwitchboardError } from './errors';

export async function userMedia(constraints: MediaStreamConstraints): Promise<MediaStream> {
  if (typeof navigator === 'undefined' || !navigator.mediaDevices?.getUserMedia) {
    throw new SwitchboardError(
      'MEDIA_DEVICE_UNAVAILABLE',
      'camera and microphone are not available here (a browser page in a secure context, https or localhost, is required; elsewhere use publishTrack)',
    );
  }
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch (err) {
    throw mediaError(err);
  }
}

export async function displayMedia(): Promise<MediaStream> {
  if (typeof navigator === 'undefined' || !navigator.mediaDevices?.getDisplayMedia)
    throw new SwitchboardError('MEDIA_DEVICE_UNAVAILABLE', 'screen sharing is not available here');
  try {
    return await navigator.mediaDevices.getDisplayMedia({ video: true });
  } catch (err) {
    throw mediaError(err);
  }
}
