import { readRegularFile, regularFileSize, type FileRefusal } from '@cvopt/core';

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

export type TextRead = { ok: true; text: string } | FileRefusal;

/** The text of a regular file of at most `maxBytes`, or why not. Never blocks, never reads past the limit. */
export function readTextBounded(path: string, maxBytes: number): TextRead {
  const r = readRegularFile(path, maxBytes);
  return r.ok ? { ok: true, text: r.bytes.toString('utf8') } : r;
}

export { regularFileSize };

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
