import { blxAlpha, gaussianMutation, tournament } from '../operators.js';
import { objectiveCompare } from '../ranking.js';
import type { GenerationInput, GenerationOutput, Member, Strategy } from './types.js';

/**
 * (μ+λ) evolution: parents and offspring compete together and the best μ survive, so the elite is carried over
 * unchanged (and never re-evaluated). Parents by binary tournament, BLX-α crossover, Gaussian mutation.
 */
export interface ElitistOptions {
  /** BLX-α widening. Default 0.5. */
  alpha?: number;
  /** Probability that a child is a crossover. Default 0.9. */
  crossoverRate?: number;
  /** Gaussian mutation step in gene units. Default 0.1. */
  sigma?: number;
  /** Per-gene mutation probability. Default 1/dim. */
  mutationRate?: number;
}

export function elitistStrategy(opts: ElitistOptions = {}): Strategy {
  const alpha = opts.alpha ?? 0.5;
  const pc = opts.crossoverRate ?? 0.9;
  const sigma = opts.sigma ?? 0.1;
  return {
    name: 'elitist',
    multiObjective: false,
    initialState: () => ({}),
    next({ population, offspring, size, rng, state }: GenerationInput): GenerationOutput {
      const pop = survivors([...population, ...offspring], size, objectiveCompare);
      const dim = pop[0]?.x.length ?? 0;
      const rate = opts.mutationRate ?? 1 / Math.max(1, dim);
      const better = (i: number, j: number) => objectiveCompare(pop[i]!.eval, pop[j]!.eval) < 0;
      const children: number[][] = [];
      while (children.length < size) {
        const a = pop[tournament(pop.length, 2, rng, better)]!.x;
        const b = pop[tournament(pop.length, 2, rng, better)]!.x;
        const child = rng.float() < pc ? blxAlpha(a, b, rng, alpha) : a.slice();
        children.push(gaussianMutation(child, rng, sigma, rate));
      }
      return { population: pop, children, state };
    },
  };
}

/** The best `size` members by `compare`, ties by id so the order never depends on the sort's stability. */
export function survivors(all: Member[], size: number, compare: (a: Member['eval'], b: Member['eval']) => number): Member[] {
  return all
    .slice()
    .sort((a, b) => compare(a.eval, b.eval) || a.id - b.id)
    .slice(0, size);
}
