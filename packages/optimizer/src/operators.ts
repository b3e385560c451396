import type { Rng } from '@cvopt/core';
import { clamp01 } from './space.js';

/**
 * Variation operators on genes in [0, 1]. Every operator returns new arrays inside the unit box, so decoding
 * always yields in-bound values. All randomness comes from the Rng passed in.
 */

/** A standard normal draw. Box–Muller without a cached spare, so the Rng's saved state is the whole story. */
export function gaussian(rng: Rng): number {
  let u = 0;
  while (u === 0) u = rng.float();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.float());
}

/**
 * Blend crossover BLX-α (Eshelman & Schaffer 1993): each child gene is uniform on the parents' interval widened
 * by α of its length on both sides. α = 0.5 keeps the population's spread roughly constant.
 */
export function blxAlpha(a: readonly number[], b: readonly number[], rng: Rng, alpha = 0.5): number[] {
  return a.map((ai, i) => {
    const bi = b[i]!;
    const lo = Math.min(ai, bi);
    const hi = Math.max(ai, bi);
    const d = hi - lo;
    return clamp01(rng.uniform(lo - alpha * d, hi + alpha * d));
  });
}

/**
 * Gaussian mutation: each gene, with probability `rate`, moves by N(0, sigma²) and reflects at the box edges
 * (reflection keeps the distribution from piling up on the bounds as clipping would).
 */
export function gaussianMutation(x: readonly number[], rng: Rng, sigma: number, rate: number): number[] {
  return x.map((v) => (rng.float() < rate ? reflect01(v + sigma * gaussian(rng)) : v));
}

/**
 * Simulated binary crossover (Deb & Agrawal 1995), bounded form, distribution index `eta`: larger eta keeps
 * children closer to their parents. Each gene crosses with probability 0.5; the pair crosses with probability pc.
 */
export function sbx(a: readonly number[], b: readonly number[], rng: Rng, eta = 15, pc = 0.9): [number[], number[]] {
  const c1 = a.slice();
  const c2 = b.slice();
  if (rng.float() >= pc) return [c1, c2];
  for (let i = 0; i < a.length; i++) {
    if (rng.float() >= 0.5) continue;
    const x1 = Math.min(a[i]!, b[i]!);
    const x2 = Math.max(a[i]!, b[i]!);
    if (x2 - x1 < 1e-14) continue;
    const u = rng.float();
    const child = (beta: number, sign: -1 | 1): number => {
      const alpha = 2 - Math.pow(beta, -(eta + 1));
      const bq = u <= 1 / alpha ? Math.pow(u * alpha, 1 / (eta + 1)) : Math.pow(1 / (2 - u * alpha), 1 / (eta + 1));
      return clamp01(0.5 * (x1 + x2 + sign * bq * (x2 - x1)));
    };
    const y1 = child(1 + (2 * x1) / (x2 - x1), -1);
    const y2 = child(1 + (2 * (1 - x2)) / (x2 - x1), 1);
    if (rng.float() < 0.5) {
      c1[i] = y1;
      c2[i] = y2;
    } else {
      c1[i] = y2;
      c2[i] = y1;
    }
  }
  return [c1, c2];
}

/**
 * SBX along the line through the parents: one spread factor β for all genes (SBX's distribution, index `eta`),
 * children (1 ± β)/2·a + (1 ∓ β)/2·b. Unlike per-gene SBX it keeps the parents' direction, so it follows narrow
 * valleys and constraint boundaries that are not aligned with the axes. β is shortened when a child would leave
 * the unit box, so children stay on the line and in bounds.
 */
export function sbxLine(a: readonly number[], b: readonly number[], rng: Rng, eta = 20): [number[], number[]] {
  const u = rng.float();
  let beta = u <= 0.5 ? Math.pow(2 * u, 1 / (eta + 1)) : Math.pow(1 / (2 * (1 - u)), 1 / (eta + 1));
  // Child gene = m ± β·h with m the midpoint and h half the difference; cap β so every gene stays in [0, 1].
  for (let i = 0; i < a.length; i++) {
    const m = 0.5 * (a[i]! + b[i]!);
    const h = Math.abs(0.5 * (a[i]! - b[i]!));
    if (h > 1e-14) beta = Math.min(beta, m / h, (1 - m) / h);
  }
  const c1 = a.map((ai, i) => clamp01(0.5 * (ai + b[i]!) + beta * 0.5 * (ai - b[i]!)));
  const c2 = a.map((ai, i) => clamp01(0.5 * (ai + b[i]!) - beta * 0.5 * (ai - b[i]!)));
  return [c1, c2];
}

/** Polynomial mutation (Deb & Goyal 1996), bounded form, distribution index `eta`, per-gene probability `rate`. */
export function polynomialMutation(x: readonly number[], rng: Rng, eta = 20, rate?: number): number[] {
  const pm = rate ?? 1 / Math.max(1, x.length);
  return x.map((v) => {
    if (rng.float() >= pm) return v;
    const u = rng.float();
    const mp = 1 / (eta + 1);
    let dq: number;
    if (u < 0.5) {
      const xy = 1 - v;
      dq = Math.pow(2 * u + (1 - 2 * u) * Math.pow(xy, eta + 1), mp) - 1;
    } else {
      const xy = v;
      dq = 1 - Math.pow(2 * (1 - u) + 2 * (u - 0.5) * Math.pow(xy, eta + 1), mp);
    }
    return clamp01(v + dq);
  });
}

/**
 * Tournament selection: draw k contestants uniformly (with replacement) and return the index of the best by
 * `better(i, j)` (true when i beats j). k = 2 is the binary tournament.
 */
export function tournament(n: number, k: number, rng: Rng, better: (i: number, j: number) => boolean): number {
  let best = rng.int(0, n - 1);
  for (let t = 1; t < k; t++) {
    const c = rng.int(0, n - 1);
    if (better(c, best)) best = c;
  }
  return best;
}

function reflect01(v: number): number {
  let x = v;
  // A few reflections suffice for any sigma we use; clamp guards pathological draws.
  for (let i = 0; i < 4 && (x < 0 || x > 1); i++) x = x < 0 ? -x : 2 - x;
  return clamp01(x);
}
