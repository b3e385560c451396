import { Rng } from '@cvopt/core';

/**
 * Seeded byte-level damage to real files for the HTTP fuzz test (replace with the shared test/fuzz/mutate.ts once
 * it is on main). Most mutants keep the magic number, so decoders get past it and meet broken lengths inside.
 */
const KINDS = ['truncate', 'flip', 'overwrite', 'zeros', 'ones', 'duplicate', 'delete', 'insert', 'big-int'] as const;
const BIG = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

export function mutant(src: Uint8Array, rng: Rng): { bytes: Buffer; how: string } {
  const n = src.length;
  const kind = KINDS[rng.int(0, KINDS.length - 1)]!;
  // Half the positions in the first KiB, where headers and lengths are.
  const at = n <= 1 ? 0 : rng.bool() ? rng.int(0, Math.min(n, 1024) - 1) : rng.int(0, n - 1);
  const span = Math.max(1, Math.min(n - at, 1 + Math.floor(rng.float() ** 3 * 2048)));
  const b = Buffer.from(src);
  const how = `${kind}@${at}`;
  switch (kind) {
    case 'truncate':
      return { bytes: b.subarray(0, at), how };
    case 'flip':
      for (let i = 0, k = rng.int(1, 8); i < k; i++) {
        const p = i === 0 ? at : rng.int(0, n - 1);
        b[p] = b[p]! ^ (1 << rng.int(0, 7));
      }
      return { bytes: b, how };
    case 'overwrite':
      for (let i = at; i < at + span; i++) b[i] = rng.int(0, 255);
      return { bytes: b, how: `${how}+${span}` };
    case 'zeros':
    case 'ones':
      b.fill(kind === 'zeros' ? 0 : 0xff, at, at + span);
      return { bytes: b, how: `${how}+${span}` };
    case 'duplicate':
      return { bytes: Buffer.concat([b.subarray(0, at + span), b.subarray(at, at + span), b.subarray(at + span)]), how: `${how}+${span}` };
    case 'delete':
      return { bytes: Buffer.concat([b.subarray(0, at), b.subarray(at + span)]), how: `${how}+${span}` };
    case 'insert': {
      const extra = Buffer.alloc(span);
      for (let i = 0; i < span; i++) extra[i] = rng.int(0, 255);
      return { bytes: Buffer.concat([b.subarray(0, at), extra, b.subarray(at)]), how: `${how}+${span}` };
    }
    case 'big-int': {
      const v = BIG[rng.int(0, BIG.length - 1)]!;
      if (at + 4 <= n) {
        if (rng.bool()) b.writeUInt32LE(v >>> 0, at);
        else b.writeUInt32BE(v >>> 0, at);
      }
      return { bytes: b, how: `${how}=${v}` };
    }
  }
}
