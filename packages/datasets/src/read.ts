import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/**
 * How much a dataset check or load may read from one file. Datasets come from anywhere: a label "file" can be a
 * FIFO (reading blocks forever), a symlink to /dev/zero (never ends) or a 100 MB row, so every read is bounded.
 */
export interface DatasetReadLimits {
  /** One label .txt. A label with 10 000 boxes is about 400 KB. */
  labelBytes: number;
  /** One split list (.txt of image paths): ~60 bytes a line, so room for millions of images. */
  listBytes: number;
  /** data.yaml. */
  yamlBytes: number;
  /** One image file whose header is read. */
  imageBytes: number;
  /** Problems reported per file; past it one more problem says how many were left out. */
  problemsPerFile: number;
}

export const DEFAULT_READ_LIMITS: Readonly<DatasetReadLimits> = Object.freeze({
  labelBytes: 8 << 20,
  listBytes: 256 << 20,
  yamlBytes: 4 << 20,
  imageBytes: 512 << 20,
  problemsPerFile: 100,
});

export function readLimits(partial: Partial<DatasetReadLimits> = {}): DatasetReadLimits {
  return { ...DEFAULT_READ_LIMITS, ...partial };
}

export type FileRefusal = { ok: false; reason: 'missing' | 'not-regular' | 'too-large' | 'unreadable'; message: string };
export type TextRead = { ok: true; text: string } | FileRefusal;
export type SizeRead = { ok: true; size: number } | FileRefusal;

function describe(mode: { isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isDirectory(): boolean; isSocket(): boolean }): string {
  if (mode.isFIFO()) return 'a FIFO (named pipe)';
  if (mode.isCharacterDevice() || mode.isBlockDevice()) return 'a device';
  if (mode.isDirectory()) return 'a folder';
  if (mode.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Open `path` without blocking (O_NONBLOCK: a FIFO opens at once), check through the descriptor that it is a
 * regular file no larger than `maxBytes`, then run `use` on the descriptor. Symlinks to regular files are fine.
 */
function withRegularFile<T>(path: string, maxBytes: number, use: (fd: number, size: number) => T): T | FileRefusal {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') return { ok: false, reason: 'missing', message: 'does not exist' };
    if (err.code === 'EISDIR') return { ok: false, reason: 'not-regular', message: 'is a folder, not a file' };
    return { ok: false, reason: 'unreadable', message: `cannot be opened: ${err.message}` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { ok: false, reason: 'not-regular', message: `is ${describe(st)}, not a regular file` };
    if (st.size > maxBytes) return { ok: false, reason: 'too-large', message: `is ${st.size} bytes, over the limit of ${maxBytes}` };
    return use(fd, st.size);
  } finally {
    closeSync(fd);
  }
}

/** The text of a regular file of at most `maxBytes`, or why not. Never blocks, never reads past the limit. */
export function readTextBounded(path: string, maxBytes: number): TextRead {
  return withRegularFile(path, maxBytes, (fd, size): TextRead => {
    // one byte more than the size: a file that grew since fstat is read up to the limit, not without end
    const buf = Buffer.allocUnsafe(Math.min(size + 1, maxBytes + 1));
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
    }
    if (got > maxBytes) return { ok: false, reason: 'too-large', message: `grew past the limit of ${maxBytes} bytes while being read` };
    return { ok: true, text: buf.toString('utf8', 0, got) };
  });
}

/** The size of a regular file of at most `maxBytes`, or why not (for files another reader opens by path). */
export function regularFileSize(path: string, maxBytes: number): SizeRead {
  return withRegularFile(path, maxBytes, (_fd, size): SizeRead => ({ ok: true, size }));
}

/** Smallest and largest of a list without spreading it into arguments (which overflows the stack past ~100k). */
export function minMax(values: ArrayLike<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}
