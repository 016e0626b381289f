import { createHash, randomBytes, type Hash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { admin, bearer, issueToken } from './helpers/app';
import { Client } from './helpers/signaling';
import { MB, OCTET, sha, TUS, useUploadsApp } from './helpers/uploads';
import { until } from './helpers/wait';

/** Client-side recording uploads that go through: whole, resumed, one chunk at a time, by the API key, late, swept, and streamed. */
describe('client-side recording uploads (postgres)', () => {
  const u = useUploadsApp();
  const { api, create, declare, patch, head, sendAll, absOf, row } = u;

  it('uploads a 3 MB file in 1 MB chunks, from a participant who joined over signaling, and it becomes a listed, downloadable recording', async () => {
    const room = 'up-live';
    const token = await issueToken(u.t, { user_id: 'dana', room });
    const c = new Client(u.base, { token });
    try {
      await c.connected();
      await c.join(room, 'Dana');
      const callId = c.callId;
      // Participant rows are written behind signaling.
      await until('the participant row', () => u.t.db.prisma.participant.findFirst({ where: { callId, userId: 'dana' } }));

      const finished: unknown[] = [];
      const onFinished = (e: unknown) => finished.push(e);
      u.t.events.on('recording.finished', onFinished);

      const file = randomBytes(3 * MB);
      const created = await declare(callId, token, file);
      expect(created.status).toBe(201);
      const id = created.body.upload_id as string;
      expect(created.body).toEqual({ upload_id: id, offset: 0, size_bytes: file.length, upload_url: `/uploads/${id}` });
      expect(created.headers.get('location')).toBe(`/uploads/${id}`);

      const status = await api('GET', `/uploads/${id}`, { headers: bearer(token) });
      expect(status.status).toBe(200);
      expect(status.body).toMatchObject({ upload_id: id, offset: 0, size_bytes: file.length, status: 'uploading', recording_id: null });
      expect(status.headers.get('upload-offset')).toBe('0');

      const done = await sendAll(id, token, file, 0);
      expect(done.status).toBe(204);
      expect(done.headers.get('upload-offset')).toBe(String(file.length));
      const recordingId = done.headers.get('recording-id')!;
      expect(recordingId).toEqual(expect.any(String));

      const rec = await u.t.db.prisma.recording.findUniqueOrThrow({ where: { id: recordingId } });
      expect(rec).toMatchObject({
        kind: 'client',
        callId,
        sessionId: id,
        status: 'completed',
        mimeType: 'video/webm',
        codec: 'vp8,opus',
        sizeBytes: BigInt(file.length),
      });
      expect(rec.participantId).toBe(c.participantId);
      expect(rec.filePath).toBe(`${callId}/client-${id}.webm`);
      const stored = readFileSync(absOf(rec.filePath));
      expect(sha(stored)).toBe(sha(file));
      expect(existsSync(absOf(`.uploads/${id}`))).toBe(false);
      expect(await row(id)).toMatchObject({
        status: 'completed',
        recordingId,
        receivedBytes: BigInt(file.length),
        fileName: 'my-recording.webm',
        userId: 'dana',
      });

      const list = await api('GET', `/recordings?call_id=${callId}`, { headers: admin });
      expect(list.status).toBe(200);
      expect(list.body.items).toEqual([
        expect.objectContaining({ id: recordingId, kind: 'client', status: 'completed', size_bytes: file.length, session_id: id }),
      ]);
      const dl = await fetch(`${u.base}/recordings/${recordingId}/download`, { headers: admin });
      expect(dl.status).toBe(200);
      expect(dl.headers.get('content-type')).toMatch(/^video\/webm/);
      expect(sha(Buffer.from(await dl.arrayBuffer()))).toBe(sha(file));

      // Integrations hear of it as of a server recording: recording.finished with the file's metadata.
      await until('recording.finished', () => finished.length > 0);
      u.t.events.off('recording.finished', onFinished);
      expect(finished).toEqual([
        {
          call_id: callId,
          room,
          at: expect.any(String),
          recording: expect.objectContaining({
            recording_id: id,
            call_id: callId,
            status: 'completed',
            mode: 'client',
            files: [
              expect.objectContaining({
                id: recordingId,
                participant_id: c.participantId,
                user_id: 'dana',
                file_path: rec.filePath,
                size_bytes: file.length,
                sha256: sha(file),
                mime_type: 'video/webm',
              }),
            ],
          }),
        },
      ]);

      // Done is done: HEAD says so, and no more bytes are taken.
      expect(await head(id, token)).toEqual({ status: 200, offset: file.length });
      const more = await patch(id, token, file.length, Buffer.from('x'));
      expect(more.status).toBe(409);
      expect(more.headers.get('tus-resumable')).toBe('1.0.0');
      expect(more.body.error.code).toBe('UPLOAD_CLOSED');
    } finally {
      c.close();
    }
  });

  it('resumes an interrupted upload from the offset HEAD gives', async () => {
    const file = randomBytes(3 * MB);
    const id = await create(u.callA, u.alice, file);
    const first = await patch(id, u.alice, 0, file.subarray(0, MB));
    expect(first.status).toBe(204);
    const previous = MB;

    // Second chunk: announce 1 MB, send half of it, then cut the connection.
    const partAbs = absOf((await row(id)).filePath);
    const half = MB / 2;
    const req = http.request(`${u.base}/uploads/${id}`, {
      method: 'PATCH',
      headers: { ...bearer(u.alice), ...TUS, 'content-type': OCTET, 'upload-offset': String(previous), 'content-length': String(MB) },
    });
    req.on('error', () => undefined);
    req.write(file.subarray(previous, previous + half));
    await until('the first half on disk', () => statSync(partAbs).size >= previous + half);
    req.destroy();

    const resumed = await until('the offset to move', async () => {
      const h = await head(id, u.alice);
      return h.offset > previous ? h : undefined;
    });
    expect(resumed.status).toBe(200);
    expect(resumed.offset).toBeGreaterThan(previous);
    expect(resumed.offset).toBeLessThan(file.length);
    expect(resumed.offset).toBe(previous + half);

    const done = await sendAll(id, u.alice, file, resumed.offset);
    expect(done.status).toBe(204);
    expect((await row(id)).status).toBe('completed');
    const rec = await u.t.db.prisma.recording.findUniqueOrThrow({ where: { id: done.headers.get('recording-id')! } });
    expect(rec.participantId).toBe(u.aliceP);
    expect(sha(readFileSync(absOf(rec.filePath)))).toBe(sha(file));
    const list = await api('GET', `/recordings?call_id=${u.callA}`, { headers: admin });
    expect(list.body.items.map((r: { id: string }) => r.id)).toContain(rec.id);
  });

  it('takes uploads with the API key (no participant)', async () => {
    const file = randomBytes(300_000);
    const id = await create(u.callA, null, file, { mime_type: 'audio/ogg', file_name: 'mix.ogg' });
    const done = await sendAll(id, null, file, 0, 100_000);
    expect(done.status).toBe(204);
    const rec = await u.t.db.prisma.recording.findUniqueOrThrow({ where: { id: done.headers.get('recording-id')! } });
    expect(rec).toMatchObject({ participantId: null, kind: 'client', mimeType: 'audio/ogg', filePath: `${u.callA}/client-${id}.ogg` });
    // Not the users' upload.
    expect((await head(id, u.alice)).status).toBe(404);
    const dl = await fetch(`${u.base}/recordings/${rec.id}/download`, { headers: admin });
    expect(dl.headers.get('content-type')).toMatch(/^audio\/ogg/);
    expect(sha(Buffer.from(await dl.arrayBuffer()))).toBe(sha(file));
  });

  it('takes uploads to an ended call for 1 h after its end', async () => {
    const file = randomBytes(100);
    const call = (await api('POST', '/calls', { headers: admin, json: { room_id: 'up-ended' } })).body.id as string;
    await u.t.db.prisma.participant.create({ data: { callId: call, userId: 'erin', role: 'participant' } });
    const erin = await issueToken(u.t, { user_id: 'erin', room: 'up-ended' });
    await u.t.db.prisma.call.update({ where: { id: call }, data: { status: 'ended', endedAt: new Date(Date.now() - 10 * 60_000) } });
    const id = await create(call, erin, file);
    expect((await patch(id, erin, 0, file)).status).toBe(204);
    await u.t.db.prisma.call.update({ where: { id: call }, data: { endedAt: new Date(Date.now() - 61 * 60_000) } });
    const late = await declare(call, erin, file);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('CALL_ALREADY_ENDED');
  });

  it('sweeps uploads left uploading for more than 24 h: file deleted, status failed', async () => {
    const file = randomBytes(2000);
    const stale = await create(u.callA, u.alice, file);
    const fresh = await create(u.callA, u.alice, file);
    expect((await patch(stale, u.alice, 0, file.subarray(0, 500))).status).toBe(204);
    await u.t.db.prisma.clientUpload.update({ where: { id: stale }, data: { createdAt: new Date(Date.now() - 25 * 3600_000) } });
    const staleAbs = absOf((await row(stale)).filePath);
    expect(existsSync(staleAbs)).toBe(true);

    expect(await u.t.uploads.sweep()).toBeGreaterThanOrEqual(1);
    expect((await row(stale)).status).toBe('failed');
    expect(existsSync(staleAbs)).toBe(false);
    expect((await row(fresh)).status).toBe('uploading');
    expect(existsSync(absOf((await row(fresh)).filePath))).toBe(true);
    const res = await patch(stale, u.alice, 500, file.subarray(500));
    expect(res.status).toBe(410);
    expect(res.body.error.code).toBe('UPLOAD_GONE');
  });

  it('streams a 64 MB chunk to disk without holding it in memory', async () => {
    const size = u.t.config.uploads.chunkMaxBytes;
    expect(size).toBe(64 * MB);
    // One 1 MB piece sent 64 times: the client side holds 1 MB, whatever the server does.
    const piece = randomBytes(MB);
    const hash: Hash = createHash('sha256');
    for (let i = 0; i < size / MB; i++) hash.update(piece);
    const id = await create(u.callA, u.alice, Buffer.alloc(0), { size_bytes: size, sha256: hash.digest('hex') });

    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // Live memory (after a collection) of this process, server included: the JS heap
    // plus Buffers. RSS is not used: freed Buffers stay in malloc's arenas.
    const live = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const before = live();
    let peak = before;
    // Each sample waits 100 ms after the previous one ended: a full collection in a jest
    // worker that already ran other files can take long, and back-to-back collections
    // would starve the upload itself.
    let sampler: NodeJS.Timeout;
    const sample = (): void => {
      peak = Math.max(peak, live());
      sampler = setTimeout(sample, 100);
    };
    sampler = setTimeout(sample, 100);
    let res: { status: number; body: string };
    try {
      res = await new Promise((resolve, reject) => {
        const req = http.request(
          `${u.base}/uploads/${id}`,
          { method: 'PATCH', headers: { ...bearer(u.alice), ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'content-length': String(size) } },
          (r) => {
            let body = '';
            r.setEncoding('utf8');
            r.on('data', (d: string) => (body += d));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        let sent = 0;
        const pump = (): void => {
          while (sent < size) {
            sent += piece.length;
            if (!req.write(piece)) {
              req.once('drain', pump);
              return;
            }
          }
          req.end();
        };
        pump();
      });
    } finally {
      clearTimeout(sampler);
    }
    expect(res.status).toBe(204);
    expect((await row(id)).status).toBe('completed');
    // Buffering the chunk keeps 64 MB live at once (measured: +63 MB); streaming about +16 MB at most.
    expect((peak - before) / MB).toBeLessThan(40);
    const rec = await u.t.db.prisma.recording.findFirstOrThrow({ where: { sessionId: id } });
    expect(statSync(absOf(rec.filePath)).size).toBe(size);
  }, 120_000);
});
