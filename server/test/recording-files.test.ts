import { mkdirSync, readFileSync, symlinkSync, writeFileSync, existsSync, lstatSync } from 'node:fs';
import path from 'node:path';
import {
  fileEtag,
  ifRangeAllows,
  isInside,
  openRecordingFile,
  parseRange,
  realRecordingPath,
  removeRecordingFile,
  resolveRecordingPath,
  UnsafePathError,
} from '../recording/files';
import { tempDir } from './helpers/env';

describe('resolveRecordingPath (lexical)', () => {
  const root = '/srv/recordings';

  it('resolves plain relative paths under the root', () => {
    expect(resolveRecordingPath(root, 'call/a.webm')).toBe('/srv/recordings/call/a.webm');
    expect(resolveRecordingPath(root, 'a.webm')).toBe('/srv/recordings/a.webm');
    expect(resolveRecordingPath(root, './call/./a.webm')).toBe('/srv/recordings/call/a.webm');
    expect(resolveRecordingPath(root + '/', 'call/..x.webm')).toBe('/srv/recordings/call/..x.webm');
  });

  it.each([
    ['', 'empty'],
    ['/etc/passwd', 'absolute'],
    ['../../etc/passwd', 'parent'],
    ['call/../../x', 'parent in the middle'],
    ['call/../a.webm', 'parent even when it would stay inside'],
    ['..', 'the parent itself'],
    ['.', 'the root itself'],
    ['a\0.webm', 'NUL'],
    ['..\\..\\etc\\passwd', 'backslashes'],
    ['C:/Windows/win.ini', 'drive letter'],
  ])('refuses %j (%s)', (rel) => {
    expect(() => resolveRecordingPath(root, rel)).toThrow(UnsafePathError);
  });

  it('isInside needs a strict descendant', () => {
    expect(isInside('/a', '/a/b')).toBe(true);
    expect(isInside('/a', '/a')).toBe(false);
    expect(isInside('/a', '/ab')).toBe(false);
    expect(isInside('/a', '/a/..b')).toBe(true);
    expect(isInside('/a/b', '/a')).toBe(false);
  });
});

describe('file access under a real directory', () => {
  const outside = tempDir('sb-outside-');
  const base = tempDir('sb-recfiles-');
  const root = path.join(base.dir, 'recordings');
  const secret = path.join(outside.dir, 'secret.txt');

  beforeAll(() => {
    mkdirSync(path.join(root, 'call'), { recursive: true });
    writeFileSync(path.join(root, 'call', 'a.webm'), 'hello world');
    writeFileSync(secret, 'top secret');
    mkdirSync(path.join(outside.dir, 'dir'));
    writeFileSync(path.join(outside.dir, 'dir', 'b.webm'), 'outside file');
    // A link to a file outside, a link to a directory outside, a link inside, and a loop.
    symlinkSync(secret, path.join(root, 'call', 'escape.webm'));
    symlinkSync(path.join(outside.dir, 'dir'), path.join(root, 'linkdir'));
    symlinkSync(path.join(root, 'call', 'a.webm'), path.join(root, 'call', 'alias.webm'));
    symlinkSync(path.join(root, 'loop1'), path.join(root, 'loop2'));
    symlinkSync(path.join(root, 'loop2'), path.join(root, 'loop1'));
    // Sibling directory whose name starts with the root's name.
    mkdirSync(`${root}-evil`);
    writeFileSync(`${root}-evil/x.webm`, 'evil');
  });
  afterAll(() => {
    base.remove();
    outside.remove();
  });

  it('opens a file inside and reports its size', async () => {
    const f = await openRecordingFile(root, 'call/a.webm');
    expect(f).not.toBeNull();
    try {
      expect(f!.size).toBe(11);
      const buf = Buffer.alloc(11);
      await f!.handle.read(buf, 0, 11, 0);
      expect(buf.toString()).toBe('hello world');
    } finally {
      await f!.handle.close();
    }
  });

  it('follows a symlink that stays inside', async () => {
    expect(await realRecordingPath(root, 'call/alias.webm')).toBe(path.join(await realRoot(), 'call', 'a.webm'));
    const f = await openRecordingFile(root, 'call/alias.webm');
    expect(f?.size).toBe(11);
    await f?.handle.close();
  });

  it('returns null for a missing file, a missing directory, a directory, and a missing root', async () => {
    expect(await openRecordingFile(root, 'call/none.webm')).toBeNull();
    expect(await openRecordingFile(root, 'nodir/none.webm')).toBeNull();
    expect(await openRecordingFile(root, 'call')).toBeNull();
    expect(await openRecordingFile(root, 'call/a.webm/x')).toBeNull();
    expect(await openRecordingFile(path.join(base.dir, 'absent'), 'call/a.webm')).toBeNull();
  });

  it.each(['call/escape.webm', 'linkdir/b.webm', 'loop1', '../recordings-evil/x.webm', '/etc/passwd', '../../../../etc/passwd', secret])(
    'refuses %s and never opens it',
    async (rel) => {
      await expect(openRecordingFile(root, rel)).rejects.toBeInstanceOf(UnsafePathError);
    },
  );

  it('removes a file inside, reports a missing one, and removes a link itself rather than its target', async () => {
    writeFileSync(path.join(root, 'call', 'del.webm'), 'x');
    expect(await removeRecordingFile(root, 'call/del.webm')).toBe(true);
    expect(existsSync(path.join(root, 'call', 'del.webm'))).toBe(false);
    expect(await removeRecordingFile(root, 'call/del.webm')).toBe(false);
    expect(await removeRecordingFile(root, 'nodir/del.webm')).toBe(false);

    // A link inside whose target is outside: the link goes, the target stays.
    symlinkSync(secret, path.join(root, 'call', 'escape2.webm'));
    expect(await removeRecordingFile(root, 'call/escape2.webm')).toBe(true);
    expect(() => lstatSync(path.join(root, 'call', 'escape2.webm'))).toThrow();
    expect(readFileSync(secret, 'utf8')).toBe('top secret');
  });

  it('refuses to remove anything through a directory outside the root', async () => {
    await expect(removeRecordingFile(root, 'linkdir/b.webm')).rejects.toBeInstanceOf(UnsafePathError);
    await expect(removeRecordingFile(root, '../recordings-evil/x.webm')).rejects.toBeInstanceOf(UnsafePathError);
    await expect(removeRecordingFile(root, 'call')).rejects.toBeInstanceOf(UnsafePathError);
    expect(readFileSync(path.join(outside.dir, 'dir', 'b.webm'), 'utf8')).toBe('outside file');
    expect(readFileSync(`${root}-evil/x.webm`, 'utf8')).toBe('evil');
  });

  async function realRoot(): Promise<string> {
    const { realpath } = await import('node:fs/promises');
    return realpath(root);
  }
});

describe('parseRange', () => {
  const size = 1000;
  it.each([
    [undefined, { type: 'full' }],
    ['bytes=0-499', { type: 'partial', start: 0, end: 499 }],
    ['bytes=500-999', { type: 'partial', start: 500, end: 999 }],
    ['bytes=500-5000', { type: 'partial', start: 500, end: 999 }],
    ['bytes=0-0', { type: 'partial', start: 0, end: 0 }],
    ['bytes=999-', { type: 'partial', start: 999, end: 999 }],
    ['bytes=100-', { type: 'partial', start: 100, end: 999 }],
    ['bytes=-1', { type: 'partial', start: 999, end: 999 }],
    ['bytes=-250', { type: 'partial', start: 750, end: 999 }],
    ['bytes=-5000', { type: 'partial', start: 0, end: 999 }],
    ['bytes=-99999999999999999999', { type: 'partial', start: 0, end: 999 }],
    ['Bytes = 1-2', { type: 'partial', start: 1, end: 2 }],
    ['bytes=1000-', { type: 'unsatisfiable' }],
    ['bytes=1000-2000', { type: 'unsatisfiable' }],
    ['bytes=99999999999999999999-', { type: 'unsatisfiable' }],
    ['bytes=-0', { type: 'unsatisfiable' }],
    ['bytes=5-1', { type: 'full' }],
    ['bytes=-', { type: 'full' }],
    ['bytes=abc', { type: 'full' }],
    ['bytes=1-2-3', { type: 'full' }],
    ['bytes=0x10-20', { type: 'full' }],
    ['bytes=+1-2', { type: 'full' }],
    ['items=0-10', { type: 'full' }],
    ['0-10', { type: 'full' }],
    ['bytes=0-1,5-6', { type: 'full' }],
    ['bytes=2000-3000,0-1', { type: 'full' }],
  ])('%j', (header, expected) => {
    expect(parseRange(header, size)).toEqual(expected);
  });

  it('treats every range of an empty file as unsatisfiable', () => {
    expect(parseRange('bytes=0-', 0)).toEqual({ type: 'unsatisfiable' });
    expect(parseRange('bytes=-10', 0)).toEqual({ type: 'unsatisfiable' });
    expect(parseRange(undefined, 0)).toEqual({ type: 'full' });
  });
});

describe('If-Range', () => {
  const mtime = new Date('2026-01-02T03:04:05.678Z');
  const etag = fileEtag(1234, mtime);
  const lm = mtime.toUTCString();
  it('allows a range without If-Range, or with the current ETag or Last-Modified', () => {
    expect(ifRangeAllows(undefined, etag, lm)).toBe(true);
    expect(ifRangeAllows(etag, etag, lm)).toBe(true);
    expect(ifRangeAllows(lm, etag, lm)).toBe(true);
  });
  it('ignores the range for another validator or a weak one', () => {
    expect(ifRangeAllows('"other"', etag, lm)).toBe(false);
    expect(ifRangeAllows(`W/${etag}`, etag, lm)).toBe(false);
    expect(ifRangeAllows('Thu, 01 Jan 1970 00:00:00 GMT', etag, lm)).toBe(false);
    expect(fileEtag(1235, mtime)).not.toBe(etag);
  });
});
