import { startTestApp, type TestApp } from './helpers/app';
import { BACKENDS } from './helpers/env';

describe.each(BACKENDS)('health and readiness (%s)', (backend) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp(backend);
  });
  afterEach(() => t.close());

  it('is live and ready with the database and a media worker', async () => {
    expect((await t.app.inject('/health')).json()).toEqual({ status: 'ok' });
    const ready = await t.app.inject('/ready');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({
      status: 'ready',
      checks: {
        database: { ok: true, detail: backend },
        media_workers: { ok: true, detail: '1/1 alive' },
        recording: { ok: true, detail: expect.stringMatching(/ffmpeg$/) },
      },
    });
  });

  it('is not ready when the database is unreachable, and REST answers 503 DATABASE_UNAVAILABLE', async () => {
    await t.breakDatabase();
    const ready = await t.app.inject('/ready');
    expect(ready.statusCode).toBe(503);
    expect(ready.json().status).toBe('not_ready');
    expect(ready.json().checks.database.ok).toBe(false);
    expect((await t.app.inject('/health')).statusCode).toBe(200);
    const res = await t.app.inject({ method: 'GET', url: '/calls', headers: { 'x-api-key': 'test-api-key-0123456789abcdef' } });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('DATABASE_UNAVAILABLE');
  });

  it('reports a missing ffmpeg without becoming unready', async () => {
    const other = await startTestApp(backend, { FFMPEG_PATH: '/nonexistent/ffmpeg' });
    try {
      const ready = await other.app.inject('/ready');
      expect(ready.statusCode).toBe(200);
      expect(ready.json().checks.recording).toEqual({ ok: false, detail: 'ffmpeg not found: recording unavailable' });
    } finally {
      await other.close();
    }
  });

  it('is not ready while draining for shutdown', async () => {
    t.startDraining();
    expect((await t.app.inject('/ready')).statusCode).toBe(503);
  });

  it('serves the OpenAPI document with every route and its error schema', async () => {
    const res = await t.app.inject('/docs/json');
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toBe('3.1.0');
    for (const p of ['/auth/token', '/calls', '/calls/{id}', '/calls/{id}/end', '/health', '/ready', '/.well-known/jwks.json']) {
      expect(doc.paths[p]).toBeDefined();
    }
    expect(doc.paths['/calls'].post.requestBody).toBeDefined();
    expect(JSON.stringify(doc.paths['/calls/{id}'].get.responses['404'])).toContain('ErrorResponse');
    expect((await t.app.inject('/docs')).statusCode).toBeLessThan(400);
  });
});

describe('REST rate limit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('pglite', { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_SECONDS: '60' });
  });
  afterAll(() => t.close());

  it('answers 429 RATE_LIMITED past the configured rate, and never limits the probes', async () => {
    const headers = { 'x-api-key': 'test-api-key-0123456789abcdef' };
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await t.app.inject({ method: 'GET', url: '/calls', headers })).statusCode);
    expect(codes).toEqual([200, 200, 200, 429]);
    const limited = await t.app.inject({ method: 'GET', url: '/calls', headers });
    expect(limited.json().error.code).toBe('RATE_LIMITED');
    expect(limited.headers['retry-after']).toBeDefined();
    for (let i = 0; i < 5; i++) expect((await t.app.inject('/health')).statusCode).toBe(200);
    expect((await t.app.inject('/ready')).statusCode).toBe(200);
  });
});
