import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { admin, startTestApp, type TestApp } from './app';
import { tempDir, type Backend } from './env';

type Headers = Record<string, string>;

export interface RecOpts {
  callId: string;
  content?: Buffer | null;
  status?: string;
  kind?: 'participant' | 'composite';
  participantId?: string | null;
  segment?: number;
  mimeType?: string;
  filePath?: string;
  sessionId?: string;
  startedAt?: Date;
}

/** A file outside RECORDINGS_DIR that must never be served. */
export const SECRET = 'do-not-serve-this-secret';

export interface RecordingsApp {
  t: TestApp;
  /** RECORDINGS_DIR: a directory inside the test's own, so that `../secret.txt` from it names a real file outside it. */
  recordingsDir: string;
  /** That file, holding SECRET. */
  secretPath: string;
  /** Room rec-a's call, with alice (participantA) as its host. */
  callA: string;
  /** Room rec-b's call. */
  callB: string;
  participantA: string;
  post(url: string, payload: unknown, headers?: Headers): Promise<LightMyRequestResponse>;
  get(url: string, headers?: Headers): Promise<LightMyRequestResponse>;
  del(url: string, headers?: Headers): Promise<LightMyRequestResponse>;
  /** A recording row, and its file (unless content is null) at recordingsDir/<call>/<id>.webm. */
  makeRecording(o: RecOpts): Promise<{ id: string; content: Buffer; filePath: string; abs: string }>;
  /** Walks every page of `url` (a /recordings query) and returns the ids in order. */
  walk(url: string, headers?: Headers): Promise<{ ids: string[]; pages: number }>;
}

/** The recordings REST API on `backend`: the app and two calls, started before the file's tests and removed after them. */
export function useRecordingsApp(backend: Backend): RecordingsApp {
  const base = tempDir('sb-recrest-');
  const rest: RecordingsApp = {
    t: undefined as unknown as TestApp,
    recordingsDir: path.join(base.dir, 'recordings'),
    secretPath: path.join(base.dir, 'secret.txt'),
    callA: '',
    callB: '',
    participantA: '',
    post: (url, payload, headers = admin) => rest.t.app.inject({ method: 'POST', url, headers, payload: payload as object }),
    get: (url, headers = admin) => rest.t.app.inject({ method: 'GET', url, headers }),
    del: (url, headers = admin) => rest.t.app.inject({ method: 'DELETE', url, headers }),
    async makeRecording(o) {
      const id = randomUUID();
      const content = o.content === undefined ? randomBytes(1000) : (o.content ?? Buffer.alloc(0));
      const filePath = o.filePath ?? `${o.callId}/${id}.webm`;
      const abs = path.join(rest.recordingsDir, filePath);
      if (o.content !== null && o.filePath === undefined) {
        mkdirSync(path.dirname(abs), { recursive: true });
        writeFileSync(abs, content);
      }
      await rest.t.db.prisma.recording.create({
        data: {
          id,
          callId: o.callId,
          sessionId: o.sessionId ?? randomUUID(),
          participantId: o.kind === 'composite' ? null : o.participantId === undefined ? rest.participantA : o.participantId,
          kind: o.kind ?? 'participant',
          segment: o.segment ?? 0,
          mimeType: o.mimeType ?? 'video/webm',
          filePath,
          codec: 'vp8+opus',
          sizeBytes: o.content === null ? null : BigInt(content.length),
          durationMs: 1234,
          status: o.status ?? 'completed',
          startedAt: o.startedAt,
          endedAt: o.status === 'recording' ? null : new Date(),
        },
      });
      return { id, content, filePath, abs };
    },
    async walk(url, headers = admin) {
      const ids: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const sep = url.includes('?') ? '&' : '?';
        const res = await rest.get(`${url}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`, headers);
        expect(res.statusCode).toBe(200);
        const body = res.json();
        ids.push(...body.items.map((i: { id: string }) => i.id));
        cursor = body.next_cursor;
        pages++;
      } while (cursor && pages < 100);
      return { ids, pages };
    },
  };
  beforeAll(async () => {
    mkdirSync(rest.recordingsDir, { recursive: true });
    writeFileSync(rest.secretPath, SECRET);
    rest.t = await startTestApp(backend, { RECORDINGS_DIR: rest.recordingsDir });
    expect(rest.t.config.recordingsDir).toBe(rest.recordingsDir);
    rest.callA = (await rest.post('/calls', { room_id: 'rec-a' })).json().id;
    rest.callB = (await rest.post('/calls', { room_id: 'rec-b' })).json().id;
    rest.participantA = (await rest.t.db.prisma.participant.create({ data: { callId: rest.callA, userId: 'alice', role: 'host' } })).id;
  });
  afterAll(async () => {
    await rest.t?.close();
    base.remove();
  });
  return rest;
}
