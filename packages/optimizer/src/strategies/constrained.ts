import { blxAlpha, gaussianMutation, tournament } from '../operators.js';
import { debCompare } from '../ranking.js';
import { survivors } from './elitist.js';
import type { GenerationInput, GenerationOutput, Strategy } from './types.js';

/**
 * (μ+λ) under Deb's feasibility rules, with no penalty weights to tune: selection and survival both use them
 * (feasible beats infeasible; among feasible the better objective; among infeasible the smaller total
 * violation). Infeasible members therefore still guide the search toward the feasible region.
 */
export interface ConstrainedOptions {
  /** Tournament size under Deb's rules. Default 2. */
  k?: number;
  /** BLX-α widening. Default 0.5. */
  alpha?: number;
  /** Probability that a child is a crossover. Default 0.9. */
  crossoverRate?: number;
  /** Gaussian mutation step in gene units. Default 0.1. */
  sigma?: number;
  /** Per-gene mutation probability. Default 1/dim. */
  mutationRate?: number;
}

export function constrainedStrategy(opts: ConstrainedOptions = {}): Strategy {
  const k = opts.k ?? 2;
  const alpha = opts.alpha ?? 0.5;
  const pc = opts.crossoverRate ?? 0.9;
  const sigma = opts.sigma ?? 0.1;
  return {
    name: 'constrained',
    multiObjective: false,
    initialState: () => ({}),
    next({ population, offspring, size, rng, state }: GenerationInput): GenerationOutput {
      const pop = survivors([...population, ...offspring], size, debCompare);
      const dim = pop[0]?.x.length ?? 0;
      const rate = opts.mutationRate ?? 1 / Math.max(1, dim);
      const better = (i: number, j: number) => debCompare(pop[i]!.eval, pop[j]!.eval) < 0;
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
