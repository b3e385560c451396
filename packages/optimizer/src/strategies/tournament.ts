import { breedByTournament } from './breed.js';
import { objectiveCompare } from '../ranking.js';
import type { GenerationInput, GenerationOutput, Strategy, VariationOptions } from './types.js';

/**
 * Generational GA: parents by tournament selection of size k, SBX crossover, polynomial mutation; the offspring
 * replace the population. The study still remembers the best trial ever seen.
 */
export interface TournamentOptions extends VariationOptions {
  /** Tournament size; larger is greedier. Default 5. */
  k?: number;
}

export function tournamentStrategy(opts: TournamentOptions = {}): Strategy {
  const k = opts.k ?? 5;
  return {
    name: 'tournament',
    multiObjective: false,
    initialState: () => ({}),
    next({ offspring, size, rng, state }: GenerationInput): GenerationOutput {
      const pop = offspring;
      const children = breedByTournament(pop, size, k, rng, objectiveCompare, opts);
      return { population: pop, children, state };
    },
  };
}
