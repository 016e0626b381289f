import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as tus from 'tus-js-client';
import { admin, bearer } from './helpers/app';
import { KB, MB, OCTET, sha, TUS, tusUpload, useUploadsApp } from './helpers/uploads';
import { until } from './helpers/wait';

/** Uploads over tus 1.0, driven by tus-js-client (the protocol's own client): chunks, resume, termination, deferred length, checksums. */
describe('client-side recording uploads over tus (postgres)', () => {
  const u = useUploadsApp();
  const { api, absOf, row } = u;
  const endpoint = () => `${u.base}/calls/${u.callA}/uploads`;

  it('answers OPTIONS with the tus versions, extensions, maximum size and checksum algorithms', async () => {
    for (const url of [endpoint(), `${u.base}/uploads/00000000-0000-4000-8000-000000000000`]) {
      const res = await fetch(url, { method: 'OPTIONS' });
      expect(res.status).toBe(204);
      expect(res.headers.get('tus-version')).toBe('1.0.0');
      expect(res.headers.get('tus-extension')!.split(',').sort()).toEqual(
        ['checksum', 'creation', 'creation-defer-length', 'creation-with-upload', 'expiration', 'termination'].sort(),
      );
      expect(res.headers.get('tus-max-size')).toBe(String(u.t.config.uploads.maxBytes));
      expect(res.headers.get('tus-checksum-algorithm')!.split(',')).toContain('sha256');
      // No allow-all CORS from tus: CORS is the server's (CORS_ORIGINS, unset here).
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  it('uploads a file in 256 KiB chunks with tus-js-client: a recording row, the file, recording.finished', async () => {
    type Finished = { recording: { recording_id: string; files: Array<Record<string, unknown>> } };
    const finished: Finished[] = [];
    const onFinished = (e: { recording: unknown }) => void finished.push(e as Finished);
    u.t.events.on('recording.finished', onFinished);
    const file = randomBytes(MB + 12_345);
    const { url, chunks } = await tusUpload(endpoint(), file, {
      headers: bearer(u.alice),
      chunkSize: 256 * KB,
      metadata: { filename: 'tus-call.webm', filetype: 'video/webm;codecs=vp8,opus', sha256: sha(file) },
    });
    expect(chunks).toBe(Math.ceil(file.length / (256 * KB)));
    const id = path.basename(url);
    expect(url).toBe(`${u.base}/uploads/${id}`);
    const r = await row(id);
    expect(r).toMatchObject({
      status: 'completed',
      userId: 'alice',
      fileName: 'tus-call.webm',
      sizeBytes: BigInt(file.length),
      receivedBytes: BigInt(file.length),
    });
    const rec = await u.t.db.prisma.recording.findUniqueOrThrow({ where: { id: r.recordingId! } });
    expect(rec).toMatchObject({ kind: 'client', callId: u.callA, sessionId: id, participantId: u.aliceP, mimeType: 'video/webm', codec: 'vp8,opus' });
    expect(rec.filePath).toBe(`${u.callA}/client-${id}.webm`);
    expect(sha(readFileSync(absOf(rec.filePath)))).toBe(sha(file));
    // Nothing left in tus's store.
    expect(existsSync(absOf(`.uploads/${id}`))).toBe(false);
    expect(existsSync(absOf(`.uploads/${id}.json`))).toBe(false);

    await until('recording.finished', () => finished.some((e) => e.recording.recording_id === id));
    u.t.events.off('recording.finished', onFinished);
    const ev = finished.find((e) => e.recording.recording_id === id)!;
    expect(ev.recording.files[0]).toMatchObject({ id: rec.id, user_id: 'alice', file_name: 'tus-call.webm', sha256: sha(file), size_bytes: file.length });

    // A completed upload: HEAD gives its length as offset (a client resuming it is done) and the recording.
    const head = await fetch(url, { method: 'HEAD', headers: { ...bearer(u.alice), ...TUS } });
    expect(head.status).toBe(200);
    expect(head.headers.get('upload-offset')).toBe(String(file.length));
    expect(head.headers.get('recording-id')).toBe(rec.id);
    const list = await api('GET', `/recordings?call_id=${u.callA}`, { headers: admin });
    expect(list.body.items.map((i: { id: string }) => i.id)).toContain(rec.id);
  });

  it('resumes after an interruption from the offset the server has (a new Upload with the same URL)', async () => {
    const file = randomBytes(2 * MB);
    let url = '';
    const first = new tus.Upload(file, {
      endpoint: endpoint(),
      headers: bearer(u.alice),
      chunkSize: 256 * KB,
      metadata: { filename: 'resumed.webm', filetype: 'video/webm' },
      retryDelays: [],
    });
    await new Promise<void>((resolve, reject) => {
      first.options.onError = reject;
      first.options.onChunkComplete = (_size, sent) => {
        url = first.url!;
        if (sent >= 3 * 256 * KB) void first.abort().then(resolve, reject);
      };
      first.start();
    });
    const id = path.basename(url);
    const stored = await until('the offset to settle', async () => {
      const h = await fetch(url, { method: 'HEAD', headers: { ...bearer(u.alice), ...TUS } });
      return h.status === 200 ? Number(h.headers.get('upload-offset')) : undefined;
    });
    expect(stored).toBeGreaterThanOrEqual(3 * 256 * KB);
    expect(stored).toBeLessThan(file.length);
    expect((await row(id)).status).toBe('uploading');

    // A new Upload given the URL asks HEAD, then sends only the rest.
    const { chunks, firstOffset } = await tusUpload(endpoint(), file, { headers: bearer(u.alice), chunkSize: 256 * KB, uploadUrl: url });
    expect(firstOffset).toBe(stored);
    expect(chunks).toBe(Math.ceil((file.length - stored) / (256 * KB)));
    const r = await row(id);
    expect(r.status).toBe('completed');
    const rec = await u.t.db.prisma.recording.findUniqueOrThrow({ where: { id: r.recordingId! } });
    expect(sha(readFileSync(absOf(rec.filePath)))).toBe(sha(file));
  });

  it('terminates an upload (204), after which HEAD answers 410 and its bytes are gone', async () => {
    const file = randomBytes(MB);
    let url = '';
    const upload = new tus.Upload(file, {
      endpoint: endpoint(),
      headers: bearer(u.alice),
      chunkSize: 256 * KB,
      metadata: { filename: 'x.webm', filetype: 'video/webm' },
    });
    await new Promise<void>((resolve, reject) => {
      upload.options.onError = reject;
      upload.options.onChunkComplete = () => {
        url = upload.url!;
        // abort(true): stop, then DELETE the upload (tus termination).
        void upload.abort(true).then(resolve, reject);
      };
      upload.start();
    });
    const id = path.basename(url);
    await until('the row to say terminated', async () => (await row(id)).status === 'terminated');
    const head = await fetch(url, { method: 'HEAD', headers: { ...bearer(u.alice), ...TUS } });
    expect(head.status).toBe(410);
    const get = await api('GET', `/uploads/${id}`, { headers: bearer(u.alice) });
    expect(get.body).toMatchObject({ status: 'terminated', recording_id: null });
    const patch = await api('PATCH', `/uploads/${id}`, { headers: { ...bearer(u.alice), ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, body: file });
    expect(patch.status).toBe(410);
    expect(patch.body.error.code).toBe('UPLOAD_GONE');
    expect(existsSync(absOf(`.uploads/${id}`))).toBe(false);
    expect(existsSync(absOf(`.uploads/${id}.json`))).toBe(false);
    // tus.Upload.terminate(url) on another upload: 204.
    const other = await tusCreate(file.length);
    await tus.Upload.terminate(other, { headers: bearer(u.alice) });
    expect((await row(path.basename(other))).status).toBe('terminated');
  });

  it('completes a browser-style upload of deferred length (Upload-Defer-Length: 1, a stream)', async () => {
    const file = randomBytes(MB + 777);
    const created: string[] = [];
    const { url } = await tusUpload(endpoint(), Readable.from([file.subarray(0, 300_000), file.subarray(300_000)]), {
      headers: bearer(u.alice),
      chunkSize: 256 * KB,
      uploadLengthDeferred: true,
      metadata: { filename: 'live.webm', filetype: 'video/webm' },
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'POST') created.push(String(req.getHeader('Upload-Defer-Length')));
      },
    });
    expect(created).toEqual(['1']);
    const r = await row(path.basename(url));
    expect(r).toMatchObject({ status: 'completed', sizeBytes: BigInt(file.length) });
    const rec = await u.t.db.prisma.recording.findUniqueOrThrow({ where: { id: r.recordingId! } });
    expect(sha(readFileSync(absOf(rec.filePath)))).toBe(sha(file));
  });

  it('takes the first chunk with the creation (creation-with-upload)', async () => {
    const file = randomBytes(100_000);
    const { url, chunks } = await tusUpload(endpoint(), file, {
      headers: bearer(u.alice),
      uploadDataDuringCreation: true,
      metadata: { filename: 'small.ogg', filetype: 'audio/ogg' },
    });
    expect(chunks).toBe(1);
    expect((await row(path.basename(url))).status).toBe('completed');
  });

  it('refuses a wrong or missing Tus-Resumable with 412 and Tus-Version, and processes nothing', async () => {
    const url = await tusCreate(1000);
    for (const version of ['0.2.2', undefined]) {
      const headers: Record<string, string> = { ...bearer(u.alice), 'content-type': OCTET, 'upload-offset': '0' };
      if (version) headers['tus-resumable'] = version;
      const res = await fetch(url, { method: 'PATCH', headers, body: new Uint8Array(randomBytes(1000)) });
      expect(res.status).toBe(412);
      expect(res.headers.get('tus-version')).toBe('1.0.0');
      expect((await res.json()).error.code).toBe('TUS_VERSION_UNSUPPORTED');
    }
    const creation = await fetch(endpoint(), { method: 'POST', headers: { ...bearer(u.alice), 'tus-resumable': '2.0.0', 'upload-length': '10' } });
    expect(creation.status).toBe(412);
    expect((await row(path.basename(url))).receivedBytes).toBe(0n);
  });

  it('answers 460 to a chunk whose Upload-Checksum does not match and keeps nothing of it; the right chunk then goes on', async () => {
    const file = randomBytes(600_000);
    const url = await tusCreate(file.length);
    const patch = (from: number, to: number, sum: Buffer) =>
      fetch(url, {
        method: 'PATCH',
        headers: { ...bearer(u.alice), ...TUS, 'content-type': OCTET, 'upload-offset': String(from), 'upload-checksum': `sha256 ${sum.toString('base64')}` },
        body: new Uint8Array(file.subarray(from, to)),
      });
    const digest = (b: Buffer) => createHash('sha256').update(b).digest();
    expect((await patch(0, 300_000, digest(file.subarray(0, 300_000)))).status).toBe(204);
    const bad = await patch(300_000, 600_000, digest(Buffer.from('not these bytes')));
    expect(bad.status).toBe(460);
    expect((await bad.json()).error.code).toBe('UPLOAD_CHECKSUM_MISMATCH');
    const head = await fetch(url, { method: 'HEAD', headers: { ...bearer(u.alice), ...TUS } });
    expect(head.headers.get('upload-offset')).toBe('300000');
    const good = await patch(300_000, 600_000, digest(file.subarray(300_000)));
    expect(good.status).toBe(204);
    expect(good.headers.get('recording-id')).toEqual(expect.any(String));
    const r = await row(path.basename(url));
    expect(r.status).toBe('completed');
    expect(sha(readFileSync(absOf(r.filePath)))).toBe(sha(file));
    const unknown = await fetch(await tusCreate(10), {
      method: 'PATCH',
      headers: { ...bearer(u.alice), ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'upload-checksum': 'crc32 AAAA' },
    });
    expect(unknown.status).toBe(400);
  });

  it('refuses uploads over the call quota (413) and over the free disk space (507), with JSON codes', async () => {
    const limits = u.t.config.uploads;
    const saved = { ...limits };
    // A call of its own (uploads with the API key), so the other tests' uploads do not count.
    const callId = (await api('POST', '/calls', { headers: admin, json: { room_id: 'up-quota' } })).body.id as string;
    const create = (length: number) =>
      fetch(`${u.base}/calls/${callId}/uploads`, {
        method: 'POST',
        headers: { ...admin, ...TUS, 'upload-length': String(length), 'upload-metadata': md('video/webm') },
      });
    try {
      limits.quotaBytes = 5 * MB;
      expect((await create(3 * MB)).status).toBe(201);
      const over = await create(3 * MB);
      expect(over.status).toBe(413);
      expect((await over.json()).error.code).toBe('UPLOAD_QUOTA_EXCEEDED');
      expect((await create(2 * MB)).status).toBe(201);
      limits.quotaBytes = saved.quotaBytes;
      limits.diskReserveBytes = 2 ** 50;
      const disk = await create(1000);
      expect(disk.status).toBe(507);
      expect((await disk.json()).error.code).toBe('INSUFFICIENT_STORAGE');
    } finally {
      Object.assign(limits, saved);
    }
  });

  it('keeps authorisation: 401 without credentials, 404 for another user, 415 for a type outside UPLOAD_TYPES', async () => {
    const url = await tusCreate(1000);
    expect((await fetch(url, { method: 'HEAD', headers: TUS })).status).toBe(401);
    const bob = await fetch(url, { method: 'HEAD', headers: { ...bearer(u.bob), ...TUS } });
    expect(bob.status).toBe(404);
    const del = await fetch(url, { method: 'DELETE', headers: { ...bearer(u.bob), ...TUS } });
    expect(del.status).toBe(404);
    expect((await fetch(url, { method: 'HEAD', headers: { ...admin, ...TUS } })).status).toBe(200);
    const stranger = await fetch(endpoint(), {
      method: 'POST',
      headers: { ...bearer(u.carol), ...TUS, 'upload-length': '10', 'upload-metadata': md('video/webm') },
    });
    expect(stranger.status).toBe(403);
    const pdf = await fetch(endpoint(), {
      method: 'POST',
      headers: { ...bearer(u.alice), ...TUS, 'upload-length': '10', 'upload-metadata': md('application/pdf') },
    });
    expect(pdf.status).toBe(415);
    expect((await pdf.json()).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  const md = (type: string, name = 'f.webm') => `filename ${Buffer.from(name).toString('base64')},filetype ${Buffer.from(type).toString('base64')}`;
  async function tusCreate(length: number): Promise<string> {
    const res = await fetch(endpoint(), {
      method: 'POST',
      headers: { ...bearer(u.alice), ...TUS, 'upload-length': String(length), 'upload-metadata': md('video/webm') },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('upload-expires')).toEqual(expect.any(String));
    return new URL(res.headers.get('location')!, u.base).href;
  }
});
