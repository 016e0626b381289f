import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { admin, issueToken, startTestApp } from './helpers/app';
import { frames, killAllPeers, spawnPeer, useMediaApp, type MediaPeer } from './helpers/mediaPeers';
import { freePort, mediaPorts, tempDir } from './helpers/env';
import { signRs256 } from './helpers/jwt';
import { runServer, waitReady } from './helpers/process';
import { sleep, until } from './helpers/wait';

/**
 * Server-side recording with real WebRTC peers, real mediasoup PlainTransports
 * and real ffmpeg; files checked with ffprobe.
 */
jest.setTimeout(120_000);

function probe(file: string): { streams: Array<{ codec_name: string; codec_type: string }>; duration: number } {
  const out = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,codec_type:format=duration', '-of', 'json', file]).toString();
  const j = JSON.parse(out) as { streams: Array<{ codec_name: string; codec_type: string }>; format: { duration?: string } };
  return { streams: j.streams, duration: Number.parseFloat(j.format.duration ?? 'NaN') };
}

/** Decodes the whole file: a usable file decodes without errors. */
function decodes(file: string): number {
  const out = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v:0', '-f', 'null', '-', '-progress', 'pipe:1', '-nostats']).toString();
  return Number(
    /frame=(\d+)/g.exec(
      out
        .split('progress=end')[0]!
        .split('\n')
        .filter((l) => l.startsWith('frame='))
        .at(-1) ?? '',
    )?.[1] ?? 0,
  );
}

describe('server-side recording', () => {
  const app = useMediaApp('postgres');

  async function twoPeers(
    room: string,
    publish: { audio?: boolean; video?: boolean },
  ): Promise<{ H: MediaPeer; P: MediaPeer; h: string; p: string; callId: string }> {
    const H = spawnPeer({ name: `${room}-host` });
    const P = spawnPeer({ name: `${room}-part` });
    const hs = await H.start({ url: app.url, token: await issueToken(app.t, { user_id: `${room}-h`, room, role: 'host' }), room, publish });
    const ps = await P.start({ url: app.url, token: await issueToken(app.t, { user_id: `${room}-p`, room }), room, publish });
    return { H, P, h: hs.participant_id, p: ps.participant_id, callId: hs.call_id! };
  }

  it('records each participant into a WebM with VP8 and Opus across a mute, serves it, and stores its row', async () => {
    const room = 'rec-main';
    const { H, P, h, p, callId } = await twoPeers(room, { audio: true, video: true });
    await H.waitFor((s) => frames(s, p) > 10, 15_000);
    await P.waitFor((s) => frames(s, h) > 10, 15_000);

    expect((await P.emit('start-recording', { call_id: callId })).error?.code).toBe('FORBIDDEN');
    const started = await H.ok('start-recording', { call_id: callId });
    const t0 = Date.now();
    expect(started.recording_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await P.waitEvent('recording-started', 5000)).toMatchObject({ recording_id: started.recording_id, call_id: callId, by: h });
    expect(await P.waitEvent('call-state-changed', 5000)).toMatchObject({ call_id: callId, recording: true });
    expect((await H.emit('start-recording', { call_id: callId })).error?.code).toBe('RECORDING_ALREADY_ACTIVE');

    await sleep(2000);
    await P.ok('mute', { call_id: callId, track: 'video' });
    await sleep(2000);
    await P.ok('unmute', { call_id: callId, track: 'video' });
    await sleep(6000 - (Date.now() - t0));
    const recordedSeconds = (Date.now() - t0) / 1000;
    const stopped = await H.ok('stop-recording', { call_id: callId });
    expect(stopped.stopped).toBe(true);
    const rec = stopped.recording as {
      recording_id: string;
      status: string;
      duration: number;
      files: Array<{ id: string; participant_id: string; status: string; file_path: string; size_bytes: number; duration_ms: number; error: string | null }>;
    };
    // With the files' errors, so a failure says why.
    expect({ status: rec.status, errors: rec.files.map((f) => f.error) }).toEqual({ status: 'completed', errors: [null, null] });
    expect(await P.waitEvent('recording-finished', 5000)).toMatchObject({ recording_id: started.recording_id, status: 'completed' });
    expect(rec.files.map((f) => f.participant_id).sort()).toEqual([h, p].sort());

    for (const file of rec.files) {
      expect(file.status).toBe('completed');
      const abs = path.join(app.t.config.recordingsDir, file.file_path);
      const info = probe(abs);
      expect(info.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort()).toEqual(['audio:opus', 'video:vp8']);
      expect(Math.abs(info.duration - recordedSeconds)).toBeLessThan(1);
      expect(decodes(abs)).toBeGreaterThan(30);
      // The row matches the file.
      const row = await app.t.db.prisma.recording.findUniqueOrThrow({ where: { id: file.id } });
      expect(row).toMatchObject({
        callId,
        sessionId: started.recording_id,
        participantId: file.participant_id,
        status: 'completed',
        kind: 'participant',
        mimeType: 'video/webm',
        codec: 'VP8+opus',
      });
      expect(Number(row.sizeBytes)).toBe(statSync(abs).size);
      expect(Math.abs(row.durationMs! / 1000 - info.duration)).toBeLessThan(0.05);
      expect(row.endedAt).not.toBeNull();

      // Downloads: whole, and a Range.
      const bytes = readFileSync(abs);
      const whole = await app.t.app.inject({ method: 'GET', url: `/recordings/${file.id}/download`, headers: admin });
      expect(whole.statusCode).toBe(200);
      expect(whole.headers['content-type']).toMatch(/video\/webm/);
      expect(whole.rawPayload.equals(bytes)).toBe(true);
      const part = await app.t.app.inject({ method: 'GET', url: `/recordings/${file.id}/download`, headers: { ...admin, range: 'bytes=100-1099' } });
      expect(part.statusCode).toBe(206);
      expect(part.headers['content-range']).toBe(`bytes 100-1099/${bytes.length}`);
      expect(part.rawPayload.equals(bytes.subarray(100, 1100))).toBe(true);
    }
    const call = await app.t.db.prisma.call.findUniqueOrThrow({ where: { id: callId } });
    expect(call.recording).toBe(false);

    // Stopping twice is harmless.
    expect(await H.ok('stop-recording', { call_id: callId })).toMatchObject({ stopped: false });
    const rest = await app.t.app.inject({ method: 'POST', url: `/calls/${callId}/recordings/stop`, headers: admin });
    expect(rest.json()).toEqual({ stopped: false });
    await H.stop();
    await P.stop();
  });

  it('restarts a killed ffmpeg into a new segment and keeps the first file usable', async () => {
    const room = 'rec-crash';
    const { H, P, p, callId } = await twoPeers(room, { audio: true, video: true });
    await H.waitFor((s) => frames(s, p) > 10, 15_000);
    // Started over REST this time.
    const started = await app.t.app.inject({ method: 'POST', url: `/calls/${callId}/recordings`, headers: admin });
    expect(started.statusCode).toBe(201);
    await sleep(2500);
    const victim = app.t.recorder.processes(room).find((r) => r.participantId === p)!;
    expect(victim.segment).toBe(0);
    process.kill(victim.pid, 'SIGKILL');
    await until('a second segment', () => app.t.recorder.processes(room).some((r) => r.participantId === p && r.segment === 1), { intervalMs: 100 });
    await sleep(2500);
    const stop = await app.t.app.inject({ method: 'POST', url: `/calls/${callId}/recordings/stop`, headers: admin });
    const files = (stop.json().recording.files as Array<{ participant_id: string; segment: number; status: string; file_path: string; error: string }>).filter(
      (f) => f.participant_id === p,
    );
    expect(files.map((f) => [f.segment, f.status])).toEqual([
      [0, 'interrupted'],
      [1, 'completed'],
    ]);
    expect(files[0]!.error).toMatch(/SIGKILL/);
    for (const f of files) {
      const abs = path.join(app.t.config.recordingsDir, f.file_path);
      const info = probe(abs);
      expect(info.streams.map((s) => s.codec_name).sort()).toEqual(['opus', 'vp8']);
      expect(info.duration).toBeGreaterThan(1.5);
      expect(decodes(abs)).toBeGreaterThan(15);
    }
    await H.stop();
    await P.stop();
  });

  it('ends a recording of a call without media with status empty', async () => {
    const room = 'rec-empty';
    const { H, P, callId } = await twoPeers(room, {});
    await H.ok('start-recording', { call_id: callId });
    await sleep(500);
    const stopped = await H.ok('stop-recording', { call_id: callId });
    expect(stopped.recording).toMatchObject({ status: 'empty', files: [] });
    await H.stop();
    await P.stop();
  });

  it('composite mode mixes everyone into one file, including a late joiner, across a mute', async () => {
    const room = 'rec-composite';
    const { H, P, h, p, callId } = await twoPeers(room, { audio: true, video: true });
    await H.waitFor((s) => frames(s, p) > 10, 15_000);
    const beforeStart = Date.now();
    const started = await app.t.app.inject({ method: 'POST', url: `/calls/${callId}/recordings`, headers: admin, payload: { mode: 'composite' } });
    expect(started.statusCode).toBe(201);
    expect(started.json().mode).toBe('composite');
    const t0 = Date.now();
    await sleep(1500);
    // A participant who starts publishing during the recording is recorded from then on.
    const Q = spawnPeer({ name: 'late' });
    const q = await Q.start({ url: app.url, token: await issueToken(app.t, { user_id: 'late', room }), room, publish: { audio: true, video: true } });
    await P.ok('mute', { call_id: callId, track: 'video' });
    await sleep(1500);
    await P.ok('unmute', { call_id: callId, track: 'video' });
    await sleep(2500);
    // Leaving closes that participant's file, complete, while the others go on.
    await Q.ok('leave', {});
    await sleep(1000);
    const total = (Date.now() - t0) / 1000;
    const stop = await app.t.app.inject({ method: 'POST', url: `/calls/${callId}/recordings/stop`, headers: admin });
    const afterStop = Date.now();
    const rec = stop.json().recording as {
      mode: string;
      duration: number;
      files: Array<{ participant_id: string | null; status: string; file_path: string; duration_ms: number }>;
    };
    expect(rec.mode).toBe('composite');
    const byParticipant = Object.fromEntries(rec.files.filter((f) => f.participant_id).map((f) => [f.participant_id, f]));
    expect(Object.keys(byParticipant).sort()).toEqual([h, p, q.participant_id].sort());
    const late = byParticipant[q.participant_id]!;
    expect(late.status).toBe('completed');
    expect(late.duration_ms / 1000).toBeLessThan(total - 2);
    expect(late.duration_ms / 1000).toBeGreaterThan(1);
    expect(
      probe(path.join(app.t.config.recordingsDir, late.file_path))
        .streams.map((s) => s.codec_name)
        .sort(),
    ).toEqual(['opus', 'vp8']);
    const composite = rec.files.find((f) => f.participant_id === null)!;
    expect(composite.status).toBe('completed');
    const abs = path.join(app.t.config.recordingsDir, composite.file_path);
    const info = probe(abs);
    expect(info.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort()).toEqual(['audio:opus', 'video:vp8']);
    // The composite spans the recording, from its start to the stop request: at least from the
    // start's answer to the stop request, at most from the start request to the stop's answer
    // (starting waits for every ffmpeg and a key frame, which takes longer on a loaded machine).
    expect(rec.duration).toBeGreaterThan(total - 0.5);
    expect(rec.duration).toBeLessThan((afterStop - beforeStart) / 1000 + 0.5);
    expect(Math.abs(info.duration - rec.duration)).toBeLessThan(0.5);
    const size = JSON.parse(
      execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'json', abs]).toString(),
    ).streams[0];
    expect(size).toEqual({ width: 640, height: 480 }); // three tiles in a 2x2 grid
    expect(decodes(abs)).toBeGreaterThan(total * 10);
    await Q.stop();
    await H.stop();
    await P.stop();
  });

  it('refuses to record without ffmpeg, a p2p call, or a call nobody is in', async () => {
    const noFfmpeg = await startTestApp('pglite', { FFMPEG_PATH: '/nonexistent/ffmpeg' });
    try {
      const call = (await noFfmpeg.app.inject({ method: 'POST', url: '/calls', headers: admin, payload: { room_id: 'x' } })).json();
      const res = await noFfmpeg.app.inject({ method: 'POST', url: `/calls/${call.id}/recordings`, headers: admin });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('FFMPEG_UNAVAILABLE');
    } finally {
      await noFfmpeg.close();
    }
    const call = (await app.t.app.inject({ method: 'POST', url: '/calls', headers: admin, payload: { room_id: 'nobody-here' } })).json();
    const res = await app.t.app.inject({ method: 'POST', url: `/calls/${call.id}/recordings`, headers: admin });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('CALL_NOT_IN_PROGRESS');
    const participant = await issueToken(app.t, { user_id: 'p', room: 'nobody-here' });
    const forbidden = await app.t.app.inject({ method: 'POST', url: `/calls/${call.id}/recordings`, headers: { authorization: `Bearer ${participant}` } });
    expect(forbidden.statusCode).toBe(403);
  });
});

describe('recording and the end of a call', () => {
  const app = useMediaApp('pglite');

  it('ending the call stops the recording and finalises its files', async () => {
    const room = 'rec-end';
    const H = spawnPeer({ name: 'end-host' });
    const hs = await H.start({
      url: app.url,
      token: await issueToken(app.t, { user_id: 'eh', room, role: 'host' }),
      room,
      publish: { audio: true, video: true },
    });
    await H.ok('start-recording', { call_id: hs.call_id });
    await sleep(2500);
    await H.ok('end-call', { call_id: hs.call_id });
    const finished = (await H.waitEvent('recording-finished', 10_000)) as {
      status: string;
      reason: string;
      files: Array<{ status: string; file_path: string }>;
    };
    expect(finished).toMatchObject({ status: 'completed', reason: 'call-ended' });
    expect(finished.files).toHaveLength(1);
    const info = probe(path.join(app.t.config.recordingsDir, finished.files[0]!.file_path));
    expect(info.streams.map((s) => s.codec_name).sort()).toEqual(['opus', 'vp8']);
    expect(info.duration).toBeGreaterThan(1.5);
    await H.stop();
  });
});

describe('recording and server shutdown', () => {
  it('SIGTERM finalises every file', async () => {
    const data = tempDir();
    const recordings = tempDir('sb-rec-');
    const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    writeFileSync(path.join(data.dir, 'key.pem'), key);
    const port = await freePort();
    const media = await mediaPorts();
    const proc = await runServer({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: data.dir,
      RECORDINGS_DIR: recordings.dir,
      JWT_PRIVATE_KEY_FILE: path.join(data.dir, 'key.pem'),
      MEDIASOUP_WORKERS: '1',
      MEDIASOUP_LISTEN_IP: '127.0.0.1',
      LOG_LEVEL: 'error',
      API_KEYS: 'shutdown-test-api-key-0123456789',
      DRAIN_TIMEOUT_MS: '1000',
      ...media.env,
    });
    try {
      await waitReady(proc, () => fetch(`http://127.0.0.1:${port}/ready`));
      const now = Math.floor(Date.now() / 1000);
      const token = signRs256(
        {},
        { sub: 'sd', room: 'shutdown', role: 'host', iat: now, exp: now + 600, jti: 'j1', iss: 'switchboard', aud: 'switchboard' },
        key,
      );
      const H = spawnPeer({ name: 'shutdown-host' });
      const hs = await H.start({ url: `http://127.0.0.1:${port}`, token, room: 'shutdown', publish: { audio: true, video: true } });
      await H.ok('start-recording', { call_id: hs.call_id });
      await sleep(2500);
      proc.child.kill('SIGTERM');
      const finished = (await H.waitEvent('recording-finished', 10_000)) as { reason: string; files: Array<{ status: string; file_path: string }> };
      expect(await proc.exited).toBe(0);
      expect(finished.reason).toBe('server-shutdown');
      expect(finished.files.map((f) => f.status)).toEqual(['completed']);
      const info = probe(path.join(recordings.dir, finished.files[0]!.file_path));
      expect(info.streams.map((s) => s.codec_name).sort()).toEqual(['opus', 'vp8']);
      expect(info.duration).toBeGreaterThan(1.5);
      await H.stop();
    } finally {
      proc.child.kill('SIGKILL');
      await killAllPeers();
      data.remove();
      recordings.remove();
      await media.release();
    }
  });
});

describe('a short recording', () => {
  const app = useMediaApp('pglite');

  it('a participant who leaves right after the recording started still gets a playable file', async () => {
    const room = 'rec-short';
    const H = spawnPeer({ name: 'short-host' });
    const P = spawnPeer({ name: 'short-part' });
    const hs = await H.start({
      url: app.url,
      token: await issueToken(app.t, { user_id: 'sh', room, role: 'host' }),
      room,
      publish: { audio: true, video: true },
    });
    const ps = await P.start({ url: app.url, token: await issueToken(app.t, { user_id: 'sp', room }), room, publish: { audio: true, video: true } });
    await H.waitFor((s) => frames(s, ps.participant_id) > 5, 15_000);
    await H.ok('start-recording', { call_id: hs.call_id });
    await P.ok('leave', {});
    await sleep(1000);
    const stopped = await H.ok('stop-recording', { call_id: hs.call_id });
    const file = (stopped.recording as { files: Array<{ participant_id: string; status: string; file_path: string }> }).files.find(
      (f) => f.participant_id === ps.participant_id,
    )!;
    expect(file.status).toBe('completed');
    expect(
      probe(path.join(app.t.config.recordingsDir, file.file_path))
        .streams.map((s) => s.codec_name)
        .sort(),
    ).toEqual(['opus', 'vp8']);
    await H.stop();
    await P.stop();
  });
});
