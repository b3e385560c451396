import { open } from 'node:fs/promises';

/** What a file is, from its first bytes, never from its name. */
export type Sniffed = 'zip' | 'gzip' | 'pickle' | 'torch-zip' | 'protobuf' | 'unknown';

export async function sniffFile(path: string): Promise<{ kind: Sniffed; head: Buffer }> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, 64, 0);
    return { kind: sniff(head.subarray(0, bytesRead)), head: head.subarray(0, bytesRead) };
  } finally {
    await fh.close();
  }
}

export function sniff(h: Buffer): Sniffed {
  if (h.length >= 4 && h.readUInt32LE(0) === 0x04034b50) {
    // torch.save writes a zip whose entries live under "<name>/data.pkl"; the first entry names it.
    const nameLen = h.length >= 30 ? h.readUInt16LE(26) : 0;
    const first = h.subarray(30, 30 + nameLen).toString('latin1');
    return /(^|\/)data\.pkl$|\/version$|(^|\/)byteorder$|\/\.data\//.test(first) ? 'torch-zip' : 'zip';
  }
  if (h.length >= 2 && h[0] === 0x1f && h[1] === 0x8b) return 'gzip';
  // Pickle protocol 2..5 opens with PROTO n; legacy torch files are such pickles too.
  if (h.length >= 2 && h[0] === 0x80 && h[1]! >= 2 && h[1]! <= 5) return 'pickle';
  // An ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
  if (h.length >= 2 && h[0] === 0x08) return 'protobuf';
  return 'unknown';
}
