import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createPostgresDatabase, freePort, mediaPorts, tempDir } from './helpers/env';
import { requireBuiltMain, runServer, waitReady, type Proc } from './helpers/process';

const waitReadyOn = (port: number, proc: Proc) => waitReady(proc, () => fetch(`http://127.0.0.1:${port}/ready`));

describe('the server process', () => {
  beforeAll(() => {
    requireBuiltMain();
  });

  it('starts on embedded defaults, serves, writes dev keys, keeps secrets out of its logs, and stops cleanly on SIGTERM', async () => {
    const data = tempDir();
    const port = await freePort();
    const proc = await runServer({ PORT: String(port), HOST: '127.0.0.1', DATA_DIR: data.dir, MEDIASOUP_WORKERS: '1' });
    try {
      const ready = await waitReadyOn(port, proc);
      expect(((await ready.json()) as { checks: { database: { detail: string } } }).checks.database.detail).toBe('pglite');
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      expect(health.status).toBe(200);

      const apiKey = readFileSync(path.join(data.dir, 'keys', 'dev-api-key'), 'utf8').trim();
      const res = await fetch(`http://127.0.0.1:${port}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
        body: JSON.stringify({ user_id: 'u1', room: 'r1', role: 'host' }),
      });
      expect(res.status).toBe(201);
      const { token } = (await res.json()) as { token: string };
      const call = await fetch(`http://127.0.0.1:${port}/calls`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: '{}',
      });
      expect(call.status).toBe(201);
      expect(existsSync(path.join(data.dir, 'keys', 'jwt-private.pem'))).toBe(true);
      expect(existsSync(path.join(data.dir, 'pglite'))).toBe(true);

      // The embedded database is this process's: a second server on the same DATA_DIR refuses.
      const second = await runServer({ PORT: String(await freePort()), HOST: '127.0.0.1', DATA_DIR: data.dir, MEDIASOUP_WORKERS: '1' });
      expect(await second.exited).toBe(1);
      expect(second.out()).toContain(`DATA_DIR ${data.dir} is in use by another Switchboard process (pid ${proc.child.pid} `);
      expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(200);

      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
      expect(existsSync(path.join(data.dir, 'pglite.lock'))).toBe(false);
      const logs = proc.out();
      expect(logs).toContain('switchboard is ready');
      expect(logs).toContain('"msg":"stopped"');
      expect(logs).not.toContain(apiKey);
      expect(logs).not.toContain(token);
      expect(logs).not.toContain('PRIVATE KEY');
    } finally {
      proc.child.kill('SIGKILL');
      data.remove();
    }
  });

  it('takes over the DATA_DIR lock of a crashed server at once', async () => {
    const data = tempDir();
    const env = { HOST: '127.0.0.1', DATA_DIR: data.dir, MEDIASOUP_WORKERS: '1' };
    const port = await freePort();
    const first = await runServer({ ...env, PORT: String(port) });
    let next: Proc | undefined;
    try {
      await waitReadyOn(port, first);
      first.child.kill('SIGKILL');
      await first.exited;
      expect(existsSync(path.join(data.dir, 'pglite.lock'))).toBe(true);
      const port2 = await freePort();
      const started = Date.now();
      next = await runServer({ ...env, PORT: String(port2) });
      await waitReadyOn(port2, next);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(JSON.parse(readFileSync(path.join(data.dir, 'pglite.lock'), 'utf8'))).toMatchObject({ pid: next.child.pid });
    } finally {
      first.child.kill('SIGKILL');
      next?.child.kill('SIGKILL');
      await next?.exited;
      data.remove();
    }
  });

  it('stops within SHUTDOWN_TIMEOUT_MS on SIGTERM to its whole process group, without replacing workers, and frees its ports', async () => {
    const data = tempDir();
    const media = await mediaPorts();
    const port = await freePort();
    const env = { ...media.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: data.dir, MEDIASOUP_WORKERS: '2', SHUTDOWN_TIMEOUT_MS: '5000' };
    const first = await runServer(env, { detached: true });
    let again: Proc | undefined;
    try {
      await waitReadyOn(port, first);
      const t0 = Date.now();
      // As systemd or `docker stop` of a shell entrypoint do: the mediasoup workers get the signal too,
      // and (as seen with SIGINT from a terminal) may be gone before the server has stopped them.
      const workerPids = execFileSync('pgrep', ['-P', String(first.child.pid)])
        .toString()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
      expect(workerPids).toHaveLength(2);
      process.kill(-first.child.pid!, 'SIGTERM');
      for (const pid of workerPids) process.kill(pid, 'SIGKILL');
      expect(await first.exited).toBe(0);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(first.out()).not.toMatch(/replacing it|could not replace|could not re-create/);
      // The same ports at once: nothing of the first is left holding them.
      again = await runServer(env);
      await waitReadyOn(port, again);
    } finally {
      first.child.kill('SIGKILL');
      again?.child.kill('SIGKILL');
      await again?.exited;
      await media.release();
      data.remove();
    }
  });

  it('starts against PostgreSQL when DATABASE_URL is set', async () => {
    const data = tempDir();
    const db = await createPostgresDatabase();
    const port = await freePort();
    const proc = await runServer({ PORT: String(port), HOST: '127.0.0.1', DATA_DIR: data.dir, DATABASE_URL: db.url, MEDIASOUP_WORKERS: '1' });
    try {
      const ready = await waitReadyOn(port, proc);
      expect(((await ready.json()) as { checks: { database: { detail: string } } }).checks.database.detail).toBe('postgres');
      proc.child.kill('SIGINT');
      expect(await proc.exited).toBe(0);
    } finally {
      proc.child.kill('SIGKILL');
      await db.drop();
      data.remove();
    }
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT: must be an integer/],
    [{ DATABASE_URL: 'mysql://x@y/z' }, /DATABASE_URL: must be a postgres/],
    [{ NODE_ENV: 'production' }, /JWT_PRIVATE_KEY: is required in production/],
    [{ JWT_PRIVATE_KEY_FILE: '/nonexistent.pem' }, /JWT_PRIVATE_KEY_FILE: cannot read file/],
  ])('refuses to start with %j and names the variable', async (env, message) => {
    const data = tempDir();
    const proc = await runServer({ DATA_DIR: data.dir, ...env });
    try {
      expect(await proc.exited).toBe(1);
      expect(proc.out()).toMatch(message);
    } finally {
      data.remove();
    }
  });

  it('exits with a clear message when PostgreSQL is unreachable', async () => {
    const data = tempDir();
    const port = await freePort();
    const proc = await runServer({
      DATA_DIR: data.dir,
      PORT: String(port),
      DATABASE_URL: `postgresql://postgres@127.0.0.1:${await freePort()}/nope`,
      MEDIASOUP_WORKERS: '1',
    });
    try {
      expect(await proc.exited).toBe(1);
      expect(proc.out()).toMatch(/failed to start/);
      expect(proc.out()).toMatch(/ECONNREFUSED/);
    } finally {
      data.remove();
    }
  });
});
