import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { admin } from './helpers/app';
import { BACKENDS } from './helpers/env';
import { SECRET, useRecordingsApp } from './helpers/recordings';

type Headers = Record<string, string>;

/** The recordings REST API's files: downloads with ranges, stored paths that leave RECORDINGS_DIR, and deletes. */
describe.each(BACKENDS)('recordings REST: files (%s)', (backend) => {
  const rest = useRecordingsApp(backend);
  const { get, del, makeRecording } = rest;

  describe('download', () => {
    let rec: { id: string; content: Buffer };
    beforeAll(async () => {
      rec = await makeRecording({ callId: rest.callA, segment: 3 });
    });
    const dl = (headers: Headers = {}, h: Headers = admin) => get(`/recordings/${rec.id}/download`, { ...h, ...headers });

    it('streams the whole file with its headers', async () => {
      const res = await dl();
      expect(res.statusCode).toBe(200);
      expect(res.rawPayload.equals(rec.content)).toBe(true);
      expect(res.headers['content-type']).toBe('video/webm');
      expect(res.headers['content-length']).toBe('1000');
      expect(res.headers['accept-ranges']).toBe('bytes');
      expect(res.headers['content-disposition']).toBe(`attachment; filename="${rest.callA}-${rest.participantA}-3.webm"`);
      expect(res.headers['content-range']).toBeUndefined();
      expect(res.headers.etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
      expect(res.headers['last-modified']).toEqual(expect.any(String));
    });

    it('names a composite file "composite" and uses the row\'s MIME type', async () => {
      const c = await makeRecording({ callId: rest.callB, kind: 'composite', mimeType: 'audio/webm', content: Buffer.from('abc') });
      const res = await get(`/recordings/${c.id}/download`);
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe('abc');
      expect(res.headers['content-type']).toBe('audio/webm');
      expect(res.headers['content-disposition']).toBe(`attachment; filename="${rest.callB}-composite-0.webm"`);
    });

    it.each([
      ['bytes=0-9', 0, 9],
      ['bytes=10-19', 10, 19],
      ['bytes=999-999', 999, 999],
      ['bytes=900-', 900, 999],
      ['bytes=0-', 0, 999],
      ['bytes=-100', 900, 999],
      ['bytes=-5000', 0, 999],
      ['bytes=990-5000', 990, 999],
    ])('answers %s with 206 and exactly those bytes', async (range, start, end) => {
      const res = await dl({ range });
      expect(res.statusCode).toBe(206);
      expect(res.rawPayload.equals(rec.content.subarray(start, end + 1))).toBe(true);
      expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/1000`);
      expect(res.headers['content-length']).toBe(String(end - start + 1));
      expect(res.headers['content-type']).toBe('video/webm');
      expect(res.headers['accept-ranges']).toBe('bytes');
    });

    it.each(['bytes=1000-', 'bytes=5000-6000', 'bytes=-0'])('answers %s with 416 and the size', async (range) => {
      const res = await dl({ range });
      expect(res.statusCode).toBe(416);
      expect(res.headers['content-range']).toBe('bytes */1000');
      expect(res.json().error.code).toBe('RANGE_NOT_SATISFIABLE');
    });

    it.each(['bytes=0-1,5-6', 'bytes=5-1', 'lines=1-2', 'bytes=abc'])('answers %s (several or invalid ranges) with the whole file', async (range) => {
      const res = await dl({ range });
      expect(res.statusCode).toBe(200);
      expect(res.rawPayload.equals(rec.content)).toBe(true);
    });

    it('honours If-Range: the current ETag gets the range, a stale one the whole file', async () => {
      const etag = (await dl()).headers.etag as string;
      const fresh = await dl({ range: 'bytes=0-1', 'if-range': etag });
      expect(fresh.statusCode).toBe(206);
      expect(fresh.rawPayload.equals(rec.content.subarray(0, 2))).toBe(true);
      const stale = await dl({ range: 'bytes=0-1', 'if-range': '"stale"' });
      expect(stale.statusCode).toBe(200);
      expect(stale.rawPayload.length).toBe(1000);
    });

    it('answers HEAD with the headers and no body', async () => {
      const res = await rest.t.app.inject({ method: 'HEAD', url: `/recordings/${rec.id}/download`, headers: admin });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-length']).toBe('1000');
      expect(res.headers['accept-ranges']).toBe('bytes');
      expect(res.rawPayload.length).toBe(0);
      const partial = await rest.t.app.inject({ method: 'HEAD', url: `/recordings/${rec.id}/download`, headers: { ...admin, range: 'bytes=-10' } });
      expect(partial.statusCode).toBe(206);
      expect(partial.headers['content-length']).toBe('10');
      expect(partial.headers['content-range']).toBe('bytes 990-999/1000');
    });

    it('serves an empty file as 200 with no bytes, and refuses any range of it', async () => {
      const e = await makeRecording({ callId: rest.callA, status: 'empty', content: Buffer.alloc(0) });
      const res = await get(`/recordings/${e.id}/download`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-length']).toBe('0');
      expect(res.rawPayload.length).toBe(0);
      const ranged = await get(`/recordings/${e.id}/download`, { ...admin, range: 'bytes=0-' });
      expect(ranged.statusCode).toBe(416);
      expect(ranged.headers['content-range']).toBe('bytes */0');
    });

    it('refuses a recording still being written with 409', async () => {
      const live = await makeRecording({ callId: rest.callA, status: 'recording' });
      const res = await get(`/recordings/${live.id}/download`);
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('RECORDING_IN_PROGRESS');
    });

    it('answers 410 FILE_MISSING when the file is gone', async () => {
      const gone = await makeRecording({ callId: rest.callA, content: null });
      const res = await get(`/recordings/${gone.id}/download`);
      expect(res.statusCode).toBe(410);
      expect(res.json().error.code).toBe('FILE_MISSING');
      expect(res.headers['content-disposition']).toBeUndefined();
    });

    it('answers 404 for an unknown recording', async () => {
      const res = await get(`/recordings/${randomUUID()}/download`);
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('RECORDING_NOT_FOUND');
    });
  });

  describe('stored paths that leave RECORDINGS_DIR', () => {
    let escapes: Array<{ id: string; filePath: string }>;
    beforeAll(async () => {
      // A symlink inside the directory pointing at the secret outside it.
      mkdirSync(path.join(rest.recordingsDir, rest.callA), { recursive: true });
      symlinkSync(rest.secretPath, path.join(rest.recordingsDir, rest.callA, 'link-out.webm'));
      escapes = [];
      for (const filePath of [
        '../secret.txt',
        '../../etc/passwd',
        rest.secretPath,
        '/etc/passwd',
        `${rest.callA}/../../secret.txt`,
        `${rest.callA}/link-out.webm`,
      ]) {
        escapes.push({ id: (await makeRecording({ callId: rest.callA, filePath })).id, filePath });
      }
    });

    it('never serves them', async () => {
      for (const e of escapes) {
        for (const range of [undefined, 'bytes=0-5']) {
          const res = await get(`/recordings/${e.id}/download`, range ? { ...admin, range } : admin);
          expect({ filePath: e.filePath, status: res.statusCode }).toEqual({ filePath: e.filePath, status: 500 });
          expect(res.json().error.code).toBe('RECORDING_PATH_INVALID');
          expect(res.body).not.toContain(SECRET);
          expect(res.body).not.toContain('root:');
        }
      }
    });

    it('deletes only the row, never the file outside', async () => {
      for (const e of escapes) {
        const res = await del(`/recordings/${e.id}`);
        expect(res.statusCode).toBe(204);
        expect(await rest.t.db.prisma.recording.findUnique({ where: { id: e.id } })).toBeNull();
      }
      expect(readFileSync(rest.secretPath, 'utf8')).toBe(SECRET);
      expect(existsSync('/etc/passwd')).toBe(true);
    });
  });

  describe('delete', () => {
    it('removes the file and the row; a second delete is 404', async () => {
      const r = await makeRecording({ callId: rest.callA });
      expect(existsSync(r.abs)).toBe(true);
      const res = await del(`/recordings/${r.id}`);
      expect(res.statusCode).toBe(204);
      expect(res.body).toBe('');
      expect(existsSync(r.abs)).toBe(false);
      expect(await rest.t.db.prisma.recording.findUnique({ where: { id: r.id } })).toBeNull();
      expect((await get(`/recordings/${r.id}`)).statusCode).toBe(404);
      const again = await del(`/recordings/${r.id}`);
      expect(again.statusCode).toBe(404);
      expect(again.json().error.code).toBe('RECORDING_NOT_FOUND');
    });

    it('deletes the row when the file is already gone', async () => {
      const r = await makeRecording({ callId: rest.callA, content: null });
      expect((await del(`/recordings/${r.id}`)).statusCode).toBe(204);
      expect(await rest.t.db.prisma.recording.findUnique({ where: { id: r.id } })).toBeNull();
    });

    it('refuses a recording still being written with 409 and keeps it', async () => {
      const r = await makeRecording({ callId: rest.callA, status: 'recording' });
      const res = await del(`/recordings/${r.id}`);
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('RECORDING_IN_PROGRESS');
      expect(existsSync(r.abs)).toBe(true);
      expect(await rest.t.db.prisma.recording.findUnique({ where: { id: r.id } })).not.toBeNull();
    });
  });
});
