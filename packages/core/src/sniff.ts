import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { CvoptError } from './errors.js';

/**
 * What a file is, from its first bytes rather than its name, so a wrong-kind input is named for what it is ("this
 * is a JPEG image, not a YAML file") instead of parsed into pages of garbage.
 */

export type FileKind =
  | 'missing'
  | 'directory'
  | 'special'
  | 'empty'
  | 'jpeg'
  | 'png'
  | 'gif'
  | 'bmp'
  | 'webp'
  | 'tiff'
  | 'mp4'
  | 'avi'
  | 'matroska'
  | 'zip'
  | 'gzip'
  | 'pdf'
  | 'elf'
  | 'pickle'
  | 'onnx'
  | 'text'
  | 'binary';

export const FILE_KIND_NAMES: Record<FileKind, string> = {
  missing: 'a path that does not exist',
  directory: 'a folder',
  special: 'a device, FIFO or socket',
  empty: 'an empty file',
  jpeg: 'a JPEG image',
  png: 'a PNG image',
  gif: 'a GIF image',
  bmp: 'a BMP image',
  webp: 'a WebP image',
  tiff: 'a TIFF image',
  mp4: 'an MP4/MOV video',
  avi: 'an AVI video',
  matroska: 'a Matroska/WebM video',
  zip: 'a zip archive (a PyTorch checkpoint is one)',
  gzip: 'a gzip archive',
  pdf: 'a PDF document',
  elf: 'an executable program',
  pickle: 'a Python pickle',
  onnx: 'an ONNX model',
  text: 'a text file',
  binary: 'a binary file of unknown kind',
};

const HEAD_BYTES = 4096;

function startsWith(b: Buffer, sig: number[], at = 0): boolean {
  return b.length >= at + sig.length && sig.every((v, i) => b[at + i] === v);
}

/** The kind of whatever is at `path`: never reads more than 4 KiB, never opens a FIFO or device. */
export function sniffFileKind(path: string): FileKind {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 'missing';
  }
  if (st.isDirectory()) return 'directory';
  if (!st.isFile()) return 'special';
  if (st.size === 0) return 'empty';
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(Math.min(HEAD_BYTES, st.size));
  try {
    readSync(fd, b, 0, b.length, 0);
  } finally {
    closeSync(fd);
  }
  return sniffBytes(b);
}

export function sniffBytes(b: Buffer): FileKind {
  if (b.length === 0) return 'empty';
  if (startsWith(b, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47])) return 'png';
  if (startsWith(b, [0x47, 0x49, 0x46, 0x38])) return 'gif';
  if (startsWith(b, [0x42, 0x4d]) && b.length >= 14 && b.readUInt32LE(2) >= 26) return 'bmp';
  if (startsWith(b, [0x52, 0x49, 0x46, 0x46]) && startsWith(b, [0x57, 0x45, 0x42, 0x50], 8)) return 'webp';
  if (startsWith(b, [0x52, 0x49, 0x46, 0x46]) && startsWith(b, [0x41, 0x56, 0x49, 0x20], 8)) return 'avi';
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(b, [0x66, 0x74, 0x79, 0x70], 4)) return 'mp4';
  if (startsWith(b, [0x1a, 0x45, 0xdf, 0xa3])) return 'matroska';
  if (startsWith(b, [0x50, 0x4b, 0x03, 0x04]) || startsWith(b, [0x50, 0x4b, 0x05, 0x06])) return 'zip';
  if (startsWith(b, [0x1f, 0x8b])) return 'gzip';
  if (startsWith(b, [0x25, 0x50, 0x44, 0x46])) return 'pdf';
  if (startsWith(b, [0x7f, 0x45, 0x4c, 0x46])) return 'elf';
  // Pickle protocols 2-5 start with PROTO n; protocol 0/1 pickles are rare and look like text or binary.
  if (b[0] === 0x80 && b.length > 1 && b[1]! >= 2 && b[1]! <= 5) return 'pickle';
  // An ONNX ModelProto starts with field 1 (ir_version, varint) in every exporter we know.
  if (b[0] === 0x08 && b.length > 1 && b[1]! > 0 && b[1]! < 0x20) return 'onnx';
  if (looksLikeText(b)) return 'text';
  return 'binary';
}

function looksLikeText(b: Buffer): boolean {
  if (b.includes(0)) return false;
  // Valid UTF-8 (a cut multi-byte sequence at the end of the sample is allowed) with few control characters.
  let control = 0;
  for (const c of b) if (c < 0x09 || (c > 0x0d && c < 0x20)) control++;
  if (control > b.length / 100) return false;
  const text = new TextDecoder('utf-8', { fatal: false }).decode(b);
  const bad = (text.match(/\uFFFD/g) ?? []).length;
  return bad <= 3;
}

/**
 * Refuse a file that is not of an expected kind, naming what it is. `expected` lists acceptable kinds; `what` is
 * the expected thing in words ("a data.yaml", "an ONNX model").
 */
export function expectFileKind(path: string, expected: readonly FileKind[], what: string, opts: { code?: 'INVALID_ARGUMENT' | 'DATASET_INVALID' | 'MODEL_INVALID' | 'INVALID_CONFIG'; field?: string; hint?: string } = {}): FileKind {
  const kind = sniffFileKind(path);
  if (expected.includes(kind)) return kind;
  if (kind === 'missing') {
    throw new CvoptError('NOT_FOUND', `${path} does not exist`, { where: { file: path, ...(opts.field ? { field: opts.field } : {}) }, hint: opts.hint ?? `pass ${what}` });
  }
  throw new CvoptError(opts.code ?? 'INVALID_ARGUMENT', `${path} is ${FILE_KIND_NAMES[kind]}, not ${what}`, {
    where: { file: path, ...(opts.field ? { field: opts.field } : {}) },
    hint: opts.hint ?? `pass ${what}`,
  });
}
