import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import createClient from 'openapi-fetch';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { startTestApp, TEST_API_KEY, type TestApp } from './helpers/app';

/**
 * The OpenAPI document is good enough for a generated typed client: openapi-typescript
 * turns the live /docs/json into types, a small TypeScript file calls EVERY operation
 * through openapi-fetch with typed parameters and bodies, and tsc must accept it (a
 * type error fails the test). The compiled file then runs against the live server:
 * every operation answers without a validation error, and list calls without `limit`
 * work. A second file of deliberate mistakes proves the compiler does refuse them.
 */

const CALLS = `
import type { Client } from 'openapi-fetch';
import type { paths } from './api';

export type Api = Client<paths>;
export interface Outcome { op: string; status: number; code?: string }
const outcome = (op: string, r: { response: Response; error?: unknown }): Outcome => {
  const e = r.error as { error?: { code?: string } } | undefined;
  return { op, status: r.response.status, ...(e?.error?.code ? { code: e.error.code } : {}) };
};

/** Every operation of the document, with typed parameters; ids that do not exist answer 404. */
export async function everyOperation(api: Api, callId: string, missing: string): Promise<Outcome[]> {
  const id = { params: { path: { id: missing } } };
  const call = { params: { path: { id: callId } } };
  return [
    outcome('getHealth', await api.GET('/health')),
    outcome('getReadiness', await api.GET('/ready')),
    outcome('getMetrics', await api.GET('/metrics', { parseAs: 'text' })),
    outcome('getJwks', await api.GET('/.well-known/jwks.json')),
    outcome('issueToken', await api.POST('/auth/token', { body: { user_id: 'typed', room: 'typed-room', role: 'host', ttl_seconds: 600 } })),
    outcome('issueDevToken', await api.POST('/dev/token', { body: { display_name: 'Typed', room: 'typed-room' } })),
    outcome('createCall', await api.POST('/calls', { body: { room_id: 'typed-other', mode: 'p2p', metadata: { topic: 'types' } } })),
    outcome('listCalls', await api.GET('/calls', { params: { query: { status: 'created', room_id: 'typed-room', limit: 5 } } })),
    outcome('getCall', await api.GET('/calls/{id}', call)),
    outcome('inviteToCall', await api.POST('/calls/{id}/invitations', { ...call, body: { user_ids: ['bob'], timeout_seconds: 5 } })),
    outcome('getCallHistory', await api.GET('/calls/{id}/history', call)),
    outcome('sendUserMessage', await api.POST('/users/{user_id}/messages', { params: { path: { user_id: 'bob' } }, body: { text: 'hello', call_id: callId } })),
    outcome('startRecording', await api.POST('/calls/{id}/recordings', { ...call, body: { mode: 'participant' } })),
    outcome('stopRecording', await api.POST('/calls/{id}/recordings/stop', call)),
    outcome('listRecordings', await api.GET('/recordings', { params: { query: { call_id: callId, status: 'completed', from: '2020-01-01T00:00:00Z' } } })),
    outcome('getRecording', await api.GET('/recordings/{id}', id)),
    outcome('downloadRecording', await api.GET('/recordings/{id}/download', { ...id, parseAs: 'blob' })),
    outcome('deleteRecording', await api.DELETE('/recordings/{id}', id)),
    outcome(
      'createUpload',
      await api.POST('/calls/{id}/uploads', { ...call, body: { file_name: 'a.webm', mime_type: 'video/webm', size_bytes: 4, sha256: '0'.repeat(64) } }),
    ),
    outcome('getCallUploadOptions', await api.OPTIONS('/calls/{id}/uploads', call)),
    outcome('getUploadOptions', await api.OPTIONS('/uploads/{id}', id)),
    outcome('getUpload', await api.GET('/uploads/{id}', id)),
    outcome('getUploadOffset', await api.HEAD('/uploads/{id}', { params: { path: { id: missing }, header: { 'tus-resumable': '1.0.0' } } })),
    outcome(
      'appendUploadChunk',
      await api.PATCH('/uploads/{id}', {
        params: { path: { id: missing }, header: { 'tus-resumable': '1.0.0', 'upload-offset': '0' } },
        body: new Uint8Array(0),
        bodySerializer: (b: unknown) => b as BodyInit,
        headers: { 'content-type': 'application/offset+octet-stream' },
      }),
    ),
    outcome('terminateUpload', await api.DELETE('/uploads/{id}', { params: { path: { id: missing }, header: { 'tus-resumable': '1.0.0' } } })),
    outcome('listWebhookDeliveries', await api.GET('/admin/webhooks/deliveries', { params: { query: { status: 'failed', event_type: 'call.started' } } })),
    outcome('retryWebhookDelivery', await api.POST('/admin/webhooks/deliveries/{id}/retry', { params: { path: { id: '1' } } })),
    outcome('getWebConfig', await api.GET('/web/config.json')),
    outcome('getWebFile', await api.GET('/web/{file}', { params: { path: { file: 'style.css' } }, parseAs: 'text' })),
    outcome('getCallPage', await api.GET('/', { parseAs: 'text' })),
    outcome('getAdminPage', await api.GET('/admin', { parseAs: 'text' })),
    outcome('endCall', await api.POST('/calls/{id}/end', call)),
  ];
}

/** A few calls whose typed results the test checks: lists without limit, a call created and read. */
export async function live(api: Api) {
  const created = await api.POST('/calls', { body: { room_id: 'typed-live', metadata: { n: 1 } } });
  if (!created.data) throw new Error('createCall failed: ' + JSON.stringify(created.error));
  const id: string = created.data.id;
  const read = await api.GET('/calls/{id}', { params: { path: { id } } });
  const calls = await api.GET('/calls');
  const recordings = await api.GET('/recordings');
  const deliveries = await api.GET('/admin/webhooks/deliveries', { params: { query: {} } });
  return {
    created: { status: created.response.status, id, room: created.data.room_id },
    read: { status: read.response.status, room: read.data?.room_id, participants: read.data?.participants.length },
    calls: { status: calls.response.status, ids: (calls.data?.items ?? []).map((c) => c.id) },
    recordings: { status: recordings.response.status, items: recordings.data?.items.length },
    deliveries: { status: deliveries.response.status, items: deliveries.data?.items.length },
  };
}
`;

/** Each line a mistake the generated types must refuse. */
const WRONG = `
import type { Client } from 'openapi-fetch';
import type { paths } from './api';
export async function wrong(api: Client<paths>) {
  await api.GET('/calls', { params: { query: { limit: 'ten' } } });
  await api.GET('/calls/{id}');
  await api.POST('/calls', { body: { mode: 'mesh' } });
  await api.POST('/auth/token', { body: { role: 'host' } });
  await api.GET('/no/such/path');
}
`;
const MISTAKES = 5;

const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options'] as const;

/** What out/calls.js (compiled from CALLS) exports, as this file sees it. */
interface CompiledCalls {
  everyOperation(api: unknown, callId: string, missing: string): Promise<Array<{ op: string; status: number; code?: string }>>;
  live(api: unknown): Promise<{
    created: { status: number; id: string; room: string };
    read: { status: number; room?: string; participants?: number };
    calls: { status: number; ids: string[] };
    recordings: { status: number; items?: number };
    deliveries: { status: number; items?: number };
  }>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const compiled = (dir: string) => require(path.join(dir, 'out', 'calls.js')) as CompiledCalls;

describe('OpenAPI typed client (openapi-typescript + openapi-fetch)', () => {
  let t: TestApp;
  let dir: string;
  let baseUrl: string;
  let doc: { paths: Record<string, Record<string, { operationId?: string }>>; servers?: Array<{ url: string }> };
  let diagnostics: ts.Diagnostic[];

  beforeAll(async () => {
    t = await startTestApp('pglite');
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
    doc = (await (await fetch(`${baseUrl}/docs/json`)).json()) as typeof doc;

    dir = mkdtempSync(path.join(tmpdir(), 'sb-openapi-client-'));
    symlinkSync(path.resolve(__dirname, '../../node_modules'), path.join(dir, 'node_modules'), 'dir');
    writeFileSync(path.join(dir, 'package.json'), '{ "type": "commonjs" }\n');
    writeFileSync(path.join(dir, 'api.ts'), astToString(await openapiTS(doc as unknown as Parameters<typeof openapiTS>[0])));
    writeFileSync(path.join(dir, 'calls.ts'), CALLS);
    writeFileSync(path.join(dir, 'wrong.ts'), WRONG);
    const program = ts.createProgram(
      ['calls.ts', 'wrong.ts'].map((f) => path.join(dir, f)),
      {
        strict: true,
        noUncheckedIndexedAccess: true,
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.Node16,
        moduleResolution: ts.ModuleResolutionKind.Node16,
        lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
        types: [],
        outDir: path.join(dir, 'out'),
      },
    );
    diagnostics = [...ts.getPreEmitDiagnostics(program)];
    program.emit();
  }, 180_000);

  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const fileOf = (d: ts.Diagnostic) => (d.file ? path.basename(d.file.fileName) : '(global)');
  const show = (ds: ts.Diagnostic[]) => ds.map((d) => `${fileOf(d)}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`).join('\n');

  it('describes the server relative to the document when PUBLIC_URL is unset', () => {
    expect(doc.servers).toEqual([expect.objectContaining({ url: '/' })]);
  });

  it('calls every operation of the document', () => {
    const inDoc = Object.entries(doc.paths).flatMap(([p, ops]) => METHODS.filter((m) => ops[m]).map((m) => `${m.toUpperCase()} ${p}`));
    const called = [...CALLS.matchAll(/api\.(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\('([^']+)'/g)].map((m) => `${m[1]} ${m[2]}`);
    expect([...new Set(called)].sort()).toEqual(inDoc.sort());
  });

  it('compiles the typed calls with tsc, without a single error', () => {
    expect(show(diagnostics.filter((d) => fileOf(d) !== 'wrong.ts'))).toBe('');
  });

  it('refuses the deliberate mistakes (the types have teeth)', () => {
    const wrong = diagnostics.filter((d) => fileOf(d) === 'wrong.ts');
    const lines = new Set(wrong.map((d) => d.file!.getLineAndCharacterOfPosition(d.start ?? 0).line));
    expect(lines.size).toBe(MISTAKES);
  });

  it('runs every typed call against the live server: no call is refused as malformed, none fails', async () => {
    const calls = compiled(dir);
    const api = createClient<object>({ baseUrl, headers: { 'x-api-key': TEST_API_KEY } });
    const created = await fetch(`${baseUrl}/calls`, {
      method: 'POST',
      headers: { 'x-api-key': TEST_API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ room_id: 'typed-room' }),
    });
    const callId = ((await created.json()) as { id: string }).id;
    const outcomes = await calls.everyOperation(api, callId, randomUUID());
    expect(outcomes.map((o) => o.op).sort()).toEqual(
      Object.values(doc.paths)
        .flatMap((ops) => METHODS.flatMap((m) => ops[m]?.operationId ?? []))
        .sort(),
    );
    const bad = outcomes.filter((o) => o.status >= 500 || o.code === 'VALIDATION_FAILED' || o.code === 'INVALID_JSON');
    expect(bad).toEqual([]);
    const status = Object.fromEntries(outcomes.map((o) => [o.op, o.status]));
    expect(status).toMatchObject({ getHealth: 200, getReadiness: 200, getMetrics: 200, getJwks: 200, issueToken: 201, issueDevToken: 201, createCall: 201 });
    expect(status).toMatchObject({ listCalls: 200, getCall: 200, getCallHistory: 200, listRecordings: 200, listWebhookDeliveries: 200, endCall: 200 });
    expect(status).toMatchObject({ getRecording: 404, downloadRecording: 404, deleteRecording: 404, getUploadOffset: 404, retryWebhookDelivery: 404 });
  });

  it('lists without limit and creates a call through the typed client', async () => {
    const calls = compiled(dir);
    const r = await calls.live(createClient<object>({ baseUrl, headers: { 'x-api-key': TEST_API_KEY } }));
    expect(r.created).toMatchObject({ status: 201, room: 'typed-live' });
    expect(r.read).toEqual({ status: 200, room: 'typed-live', participants: 0 });
    expect(r.calls.status).toBe(200);
    expect(r.calls.ids).toContain(r.created.id);
    expect(r.recordings).toEqual({ status: 200, items: 0 });
    expect(r.deliveries).toEqual({ status: 200, items: 0 });
  });
});
