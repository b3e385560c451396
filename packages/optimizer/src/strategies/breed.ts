import type { Rng } from '@cvopt/core';
import { blxAlpha, gaussianMutation, tournament } from '../operators.js';
import type { Evaluation } from '../ranking.js';
import type { Member, VariationOptions } from './types.js';

/**
 * `size` children from `pop`: two parents by k-tournaments under `compare`, BLX-α crossover with probability
 * crossoverRate (else a copy of the first parent), then Gaussian mutation.
 */
export function breedByTournament(
  pop: readonly Member[],
  size: number,
  k: number,
  rng: Rng,
  compare: (a: Evaluation, b: Evaluation) => number,
  opts: VariationOptions,
): number[][] {
  const alpha = opts.alpha ?? 0.5;
  const pc = opts.crossoverRate ?? 0.9;
  const sigma = opts.sigma ?? 0.1;
  const dim = pop[0]?.x.length ?? 0;
  const rate = opts.mutationRate ?? 1 / Math.max(1, dim);
  const better = (i: number, j: number) => compare(pop[i]!.eval, pop[j]!.eval) < 0;
  const children: number[][] = [];
  while (children.length < size) {
    const a = pop[tournament(pop.length, k, rng, better)]!.x;
    const b = pop[tournament(pop.length, k, rng, better)]!.x;
    const child = rng.float() < pc ? blxAlpha(a, b, rng, alpha) : a.slice();
    children.push(gaussianMutation(child, rng, sigma, rate));
  }
  return children;
}
