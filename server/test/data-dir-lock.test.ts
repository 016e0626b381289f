import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { DataDirLockedError, lockDataDir, STALE_MS } from '../db/dataDirLock';
import { tempDir } from './helpers/env';

describe('the DATA_DIR lock', () => {
  let data: ReturnType<typeof tempDir>;
  let file: string;
  beforeEach(() => {
    data = tempDir();
    file = path.join(data.dir, 'pglite.lock');
  });
  afterEach(() => data.remove());

  it('is held by one owner at a time and freed by its release', () => {
    const release = lockDataDir(file, data.dir);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid });
    // Our own pid in the file reads as a previous life (a restarted container's pid 1), so a live foreign pid stands in for a second process.
    writeFileSync(file, JSON.stringify({ pid: process.ppid, host: hostname(), since: 'then' }));
    expect(() => lockDataDir(file, data.dir)).toThrow(DataDirLockedError);
    expect(() => lockDataDir(file, data.dir)).toThrow(`is in use by another Switchboard process (pid ${process.ppid} `);
    release(); // not ours any more: left in place
    expect(existsSync(file)).toBe(true);
  });

  it('removes its file on release, and can be taken again', () => {
    lockDataDir(file, data.dir)();
    expect(existsSync(file)).toBe(false);
    lockDataDir(file, data.dir)();
  });

  it('takes over a lock whose owner on this host is gone', () => {
    writeFileSync(file, JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), since: 'then' }));
    const release = lockDataDir(file, data.dir);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid });
    release();
  });

  it("judges another host's lock by its age", () => {
    writeFileSync(file, JSON.stringify({ pid: 1, host: 'elsewhere', since: 'then' }));
    expect(() => lockDataDir(file, data.dir)).toThrow('pid 1 on elsewhere');
    const old = new Date(Date.now() - STALE_MS - 1000);
    utimesSync(file, old, old);
    lockDataDir(file, data.dir)();
  });
});
