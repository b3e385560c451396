import { breedByTournament } from './breed.js';
import { objectiveCompare } from '../ranking.js';
import type { GenerationInput, GenerationOutput, Member, Strategy, VariationOptions } from './types.js';

/**
 * (μ+λ) evolution: parents and offspring compete together and the best μ survive, so the elite is carried over
 * unchanged (and never re-evaluated). Parents by binary tournament, BLX-α crossover, Gaussian mutation.
 */
export type ElitistOptions = VariationOptions;

export function elitistStrategy(opts: ElitistOptions = {}): Strategy {
  return {
    name: 'elitist',
    multiObjective: false,
    initialState: () => ({}),
    next({ population, offspring, size, rng, state }: GenerationInput): GenerationOutput {
      const pop = survivors([...population, ...offspring], size, objectiveCompare);
      const children = breedByTournament(pop, size, 2, rng, objectiveCompare, opts);
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
