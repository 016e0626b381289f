import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { DEFAULT_UPLOAD_CHUNK_MAX_BYTES } from '../config/config';
import { bearer } from './helpers/app';
import { tempDir } from './helpers/env';
import { MB, sha, tusUpload, useUploadsApp } from './helpers/uploads';
import { until } from './helpers/wait';

/**
 * The shipped proxies carry upload chunks: deploy/nginx/switchboard.conf and the
 * Ingress allow UPLOAD_CHUNK_MAX_BYTES (its default) and stream them; Debian's
 * nginx, run with the shipped file, proxies an 8 MiB tus chunk to a real server.
 */
const ROOT = path.resolve(__dirname, '../..');
const NGINX_CONF = readFileSync(path.join(ROOT, 'deploy/nginx/switchboard.conf'), 'utf8');
const INGRESS = readFileSync(path.join(ROOT, 'deploy/kubernetes/ingress.yaml'), 'utf8');
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const KUBECTL = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;

/** nginx/Ingress sizes: 64m, 128k, 1g, or bytes. */
function bytesOf(size: string): number {
  const m = /^(\d+)([kmg]?)$/i.exec(size.trim());
  if (!m) throw new Error(`not a size: ${size}`);
  return Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2]!.toLowerCase()]!;
}

/** The body of the nginx location whose pattern matches the upload paths. */
function uploadLocation(conf: string): string {
  const m = /location ~ \^\/\(uploads\/\|calls\/\[\^\/\]\+\/uploads\$\) \{([^}]*)\}/.exec(conf);
  if (!m) throw new Error('no upload location in switchboard.conf');
  return m[1]!;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

describe('proxies carry upload chunks', () => {
  it('nginx: the upload location takes UPLOAD_CHUNK_MAX_BYTES, unbuffered, with long timeouts', () => {
    const loc = uploadLocation(NGINX_CONF);
    expect(bytesOf(/client_max_body_size\s+(\S+);/.exec(loc)![1]!)).toBe(DEFAULT_UPLOAD_CHUNK_MAX_BYTES);
    expect(loc).toMatch(/proxy_request_buffering\s+off;/);
    for (const t of ['client_body_timeout', 'proxy_send_timeout', 'proxy_read_timeout']) {
      expect(Number(new RegExp(`${t}\\s+(\\d+)s;`).exec(loc)?.[1])).toBeGreaterThanOrEqual(300);
    }
  });

  it('Kubernetes: the Ingress takes UPLOAD_CHUNK_MAX_BYTES bodies, unbuffered; kustomize renders it', () => {
    const size = /nginx\.ingress\.kubernetes\.io\/proxy-body-size:\s*'([^']+)'/.exec(INGRESS)![1]!;
    expect(bytesOf(size)).toBe(DEFAULT_UPLOAD_CHUNK_MAX_BYTES);
    expect(INGRESS).toMatch(/nginx\.ingress\.kubernetes\.io\/proxy-request-buffering:\s*'off'/);
    if (!KUBECTL) return console.warn('kubectl not installed: `kubectl kustomize` not run');
    const out = spawnSync('kubectl', ['kustomize', path.join(ROOT, 'deploy/kubernetes')], { encoding: 'utf8' });
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    expect(out.stdout).toContain('kind: Ingress');
    expect(out.stdout).toMatch(/proxy-body-size: 64m/);
  });

  describe('through Debian nginx with the shipped configuration', () => {
    const u = useUploadsApp();
    const dir = tempDir('sb-nginx-');
    let nginx: ChildProcess | undefined;
    let base = '';

    beforeAll(async () => {
      if (!NGINX) return;
      const port = await freePort();
      const other = await freePort();
      const app = new URL(u.base).port;
      // The shipped file, with its addresses made local: no TLS, the test server as the one node.
      const conf = NGINX_CONF.replace(/listen 80;/, `listen 127.0.0.1:${other};`)
        .replace(/listen 443 ssl;/, `listen 127.0.0.1:${port};`)
        .replace(/^\s*listen \[::\]:\d+( ssl)?;$/gm, '')
        .replace(/^\s*ssl_\w+ .*;$/gm, '')
        .replace(/^\s*server 10\.0\.0\.11:8080 .*;$/m, `    server 127.0.0.1:${app};`)
        .replace(/^\s*server 10\.0\.0\.1[23]:8080 .*;$/gm, '');
      mkdirSync(path.join(dir.dir, 'logs'), { recursive: true });
      writeFileSync(path.join(dir.dir, 'switchboard.conf'), conf);
      writeFileSync(
        path.join(dir.dir, 'nginx.conf'),
        [
          'worker_processes 1;',
          'pid nginx.pid;',
          'error_log logs/error.log warn;',
          'events { worker_connections 64; }',
          'http {',
          '  access_log off;',
          '  client_body_temp_path tmp-body; proxy_temp_path tmp-proxy; fastcgi_temp_path tmp-f; uwsgi_temp_path tmp-u; scgi_temp_path tmp-s;',
          '  include switchboard.conf;',
          '}',
        ].join('\n'),
      );
      nginx = spawn(NGINX, ['-p', `${dir.dir}/`, '-c', 'nginx.conf', '-g', 'daemon off; user root;'], { stdio: ['ignore', 'ignore', 'pipe'] });
      base = `http://127.0.0.1:${port}`;
      await until('nginx to answer', async () => (await fetch(`${base}/health`).catch(() => undefined))?.status === 200, { timeoutMs: 15_000 });
    });

    afterAll(async () => {
      if (nginx && nginx.exitCode === null) {
        const exited = new Promise((r) => nginx!.once('exit', r));
        nginx.kill('SIGTERM');
        await exited;
      }
      dir.remove();
    });

    it('proxies an 8 MiB tus chunk (tus-js-client) to the node', async () => {
      if (!NGINX) return console.warn('nginx not installed (apt-get install nginx): proxy test skipped');
      const file = randomBytes(8 * MB + 1000);
      const { url, chunks } = await tusUpload(`${base}/calls/${u.callA}/uploads`, file, {
        headers: bearer(u.alice),
        chunkSize: 8 * MB,
        metadata: { filename: 'via-nginx.webm', filetype: 'video/webm', sha256: sha(file) },
      });
      expect(chunks).toBe(2);
      expect(url.startsWith(`${base}/uploads/`)).toBe(true);
      const r = await u.row(path.basename(url));
      expect(r.status).toBe('completed');
      expect(sha(readFileSync(u.absOf(r.filePath)))).toBe(sha(file));
    }, 60_000);
  });
});
