import { Rng } from '@cvopt/core';

/**
 * Seeded corruptions of real files, for fuzz-style tests: truncations and byte-level mutations that keep most of
 * the file intact, so parsers get past their magic numbers and meet broken lengths, counts and offsets deep inside.
 * The same (input, seed) always gives the same mutants, so a failure names a case that can be replayed.
 *
 *   const cases = mutants(bytes, 200, 7);              // [{ bytes, how }], how = e.g. "int-boundary@1032"
 *   for (const c of cases) await entryPoint(c.bytes);  // expect a typed refusal or a result, never a crash
 */
export interface Mutant {
  bytes: Uint8Array;
  /** What was done and where, for the failure message. */
  how: string;
}

export const MUTATIONS = ['truncate', 'flip-bits', 'overwrite', 'zero-run', 'ff-run', 'duplicate', 'delete', 'insert', 'int-boundary'] as const;
export type MutationKind = (typeof MUTATIONS)[number];

/** Integers that break length and count fields: 0, ±1 around powers of two, the signed and unsigned extremes. */
const BOUNDARY_U32 = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

export interface MutateOptions {
  /** Share of positions drawn from the first `headBytes` bytes, where headers and lengths live. Default 0.5. */
  headBias?: number;
  headBytes?: number;
}

function position(rng: Rng, length: number, opts: MutateOptions): number {
  if (length <= 1) return 0;
  const head = Math.min(length, opts.headBytes ?? 1024);
  return rng.float() < (opts.headBias ?? 0.5) ? rng.int(0, head - 1) : rng.int(0, length - 1);
}

/** One mutant of `input` (never modified), of a kind drawn with `rng`. */
export function mutate(source: Uint8Array, rng: Rng, opts: MutateOptions = {}): Mutant {
  // a plain Uint8Array: Buffer#slice is a view, and mutating it would corrupt the caller's file for later cases
  const input = source instanceof Buffer ? new Uint8Array(source) : source;
  const kind = MUTATIONS[rng.int(0, MUTATIONS.length - 1)] as MutationKind;
  const n = input.length;
  const at = position(rng, n, opts);
  const span = Math.max(1, Math.min(n - at, 1 + Math.floor(rng.float() ** 3 * 4096)));
  const out = (bytes: Uint8Array, detail = ''): Mutant => ({ bytes, how: `${kind}@${at}${detail}` });
  switch (kind) {
    case 'truncate':
      return out(input.slice(0, at));
    case 'flip-bits': {
      const b = input.slice();
      const flips = rng.int(1, 8);
      for (let i = 0; i < flips; i++) {
        const p = i === 0 ? at : position(rng, n, opts);
        if (p < n) b[p] = (b[p] as number) ^ (1 << rng.int(0, 7));
      }
      return out(b, `x${flips}`);
    }
    case 'overwrite': {
      const b = input.slice();
      for (let i = at; i < at + span && i < n; i++) b[i] = rng.int(0, 255);
      return out(b, `+${span}`);
    }
    case 'zero-run':
    case 'ff-run': {
      const b = input.slice();
      b.fill(kind === 'zero-run' ? 0 : 0xff, at, at + span);
      return out(b, `+${span}`);
    }
    case 'duplicate': {
      const chunk = input.subarray(at, at + span);
      const b = new Uint8Array(n + chunk.length);
      b.set(input.subarray(0, at + chunk.length));
      b.set(chunk, at + chunk.length);
      b.set(input.subarray(at + chunk.length), at + 2 * chunk.length);
      return out(b, `+${chunk.length}`);
    }
    case 'delete': {
      const b = new Uint8Array(n - Math.min(span, n - at));
      b.set(input.subarray(0, at));
      b.set(input.subarray(at + span), at);
      return out(b, `+${span}`);
    }
    case 'insert': {
      const extra = Uint8Array.from({ length: Math.min(span, 256) }, () => rng.int(0, 255));
      const b = new Uint8Array(n + extra.length);
      b.set(input.subarray(0, at));
      b.set(extra, at);
      b.set(input.subarray(at), at + extra.length);
      return out(b, `+${extra.length}`);
    }
    case 'int-boundary': {
      const b = input.slice();
      const v = BOUNDARY_U32[rng.int(0, BOUNDARY_U32.length - 1)] as number;
      const little = rng.float() < 0.5;
      const width = [1, 2, 4][rng.int(0, 2)] as number;
      for (let i = 0; i < width && at + i < n; i++) {
        const shift = 8 * (little ? i : width - 1 - i);
        b[at + i] = Math.floor(v / 2 ** shift) & 0xff;
      }
      return out(b, `=${v.toString(16)}/${width}${little ? 'le' : 'be'}`);
    }
  }
}

/** `count` mutants of `input` from one seed: about one in six a plain truncation, the rest drawn by kind. */
export function mutants(source: Uint8Array, count: number, seed: number, opts: MutateOptions = {}): Mutant[] {
  const input = new Uint8Array(source);
  const rng = new Rng(seed);
  const out: Mutant[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 6 === 0) {
      const at = position(rng, input.length, opts);
      out.push({ bytes: input.slice(0, at), how: `truncate@${at}` });
    } else out.push(mutate(input, rng, opts));
  }
  return out;
}
