import { breedByTournament } from './breed.js';
import { debCompare } from '../ranking.js';
import { survivors } from './elitist.js';
import type { GenerationInput, GenerationOutput, Strategy, VariationOptions } from './types.js';

/**
 * (μ+λ) under Deb's feasibility rules, with no penalty weights to tune: selection and survival both use them
 * (feasible beats infeasible; among feasible the better objective; among infeasible the smaller total
 * violation). Infeasible members therefore still guide the search toward the feasible region.
 */
export interface ConstrainedOptions extends VariationOptions {
  /** Tournament size under Deb's rules. Default 2. */
  k?: number;
}

export function constrainedStrategy(opts: ConstrainedOptions = {}): Strategy {
  const k = opts.k ?? 2;
  return {
    name: 'constrained',
    multiObjective: false,
    initialState: () => ({}),
    next({ population, offspring, size, rng, state }: GenerationInput): GenerationOutput {
      const pop = survivors([...population, ...offspring], size, debCompare);
      const children = breedByTournament(pop, size, k, rng, debCompare, opts);
      return { population: pop, children, state };
    },
  };
}
