import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/**
 * Bounded reads of files a user names (datasets, models, images, manifests). A path from anywhere can be a FIFO
 * (reading blocks forever), a device such as /dev/zero (never ends), a folder, or far larger than its kind can
 * be: open without blocking, check through the descriptor that it is a regular file under the cap, then read at
 * most the cap. Refusals are values, so callers turn them into their own error code or dataset problem.
 */
export type FileRefusal = { ok: false; reason: 'missing' | 'not-regular' | 'too-large' | 'unreadable'; message: string };
export type FileRead = { ok: true; bytes: Buffer } | FileRefusal;
export type FileSize = { ok: true; size: number } | FileRefusal;

export interface RegularFileOptions {
  /** Follow a symlink at the last step (default true); false for paths whose real location was checked. */
  follow?: boolean;
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isDirectory()) return 'a folder';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function withRegularFile<T>(path: string, maxBytes: number, opts: RegularFileOptions, use: (fd: number, size: number) => T): T | FileRefusal {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (opts.follow === false ? constants.O_NOFOLLOW : 0));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') return { ok: false, reason: 'missing', message: 'does not exist' };
    if (err.code === 'EISDIR') return { ok: false, reason: 'not-regular', message: 'is a folder, not a regular file' };
    if (err.code === 'ELOOP') return { ok: false, reason: 'not-regular', message: 'is a symlink where a real file is required' };
    return { ok: false, reason: 'unreadable', message: `cannot be opened: ${err.message}` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { ok: false, reason: 'not-regular', message: `is ${kindOf(st)}, not a regular file` };
    if (st.size > maxBytes) return { ok: false, reason: 'too-large', message: `is ${st.size} bytes, over the limit of ${maxBytes}` };
    return use(fd, st.size);
  } finally {
    closeSync(fd);
  }
}

/** The bytes of a regular file of at most `maxBytes`, or why not. Never blocks, never reads past the cap. */
export function readRegularFile(path: string, maxBytes: number, opts: RegularFileOptions = {}): FileRead {
  return withRegularFile(path, maxBytes, opts, (fd, size): FileRead => {
    // one byte over the size: a file that grows while read stops at the cap instead of never
    const buf = Buffer.allocUnsafe(Math.min(size + 1, maxBytes + 1));
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
    }
    if (got > maxBytes) return { ok: false, reason: 'too-large', message: `grew past the limit of ${maxBytes} bytes while being read` };
    return { ok: true, bytes: buf.subarray(0, got) };
  });
}

/** The size of a regular file of at most `maxBytes`, or why not (for files another program opens by path). */
export function regularFileSize(path: string, maxBytes: number, opts: RegularFileOptions = {}): FileSize {
  return withRegularFile(path, maxBytes, opts, (_fd, size): FileSize => ({ ok: true, size }));
}
