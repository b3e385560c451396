import { blxAlpha, gaussianMutation, tournament } from '../operators.js';
import { objectiveCompare } from '../ranking.js';
import type { GenerationInput, GenerationOutput, Strategy } from './types.js';

/**
 * Generational GA: parents by tournament selection of size k, BLX-α crossover, Gaussian mutation; the offspring
 * replace the population. The study still remembers the best trial ever seen.
 */
export interface TournamentOptions {
  /** Tournament size; larger is greedier. Default 3. */
  k?: number;
  /** BLX-α widening. Default 0.5. */
  alpha?: number;
  /** Probability that a child is a crossover (otherwise a copy of the first parent). Default 0.9. */
  crossoverRate?: number;
  /** Gaussian mutation step in gene units. Default 0.1. */
  sigma?: number;
  /** Per-gene mutation probability. Default 1/dim. */
  mutationRate?: number;
}

export function tournamentStrategy(opts: TournamentOptions = {}): Strategy {
  const k = opts.k ?? 3;
  const alpha = opts.alpha ?? 0.5;
  const pc = opts.crossoverRate ?? 0.9;
  const sigma = opts.sigma ?? 0.1;
  return {
    name: 'tournament',
    multiObjective: false,
    initialState: () => ({}),
    next({ offspring, size, rng, state }: GenerationInput): GenerationOutput {
      const pop = offspring;
      const dim = pop[0]?.x.length ?? 0;
      const rate = opts.mutationRate ?? 1 / Math.max(1, dim);
      const better = (i: number, j: number) => objectiveCompare(pop[i]!.eval, pop[j]!.eval) < 0;
      const children: number[][] = [];
      while (children.length < size) {
        const a = pop[tournament(pop.length, k, rng, better)]!.x;
        const b = pop[tournament(pop.length, k, rng, better)]!.x;
        const child = rng.float() < pc ? blxAlpha(a, b, rng, alpha) : a.slice();
        children.push(gaussianMutation(child, rng, sigma, rate));
      }
      return { population: pop, children, state };
    },
  };
}
