import { objectiveCompare } from '../ranking.js';
import { breedByTournament, variation } from './breed.js';
import { survivors } from './elitist.js';
import { armMutation, armsInitialState, creditArms, type ArmSettings } from './mutation-arms.js';
import type { GenerationInput, GenerationOutput, Strategy, VariationOptions } from './types.js';

/**
 * (μ+λ) whose mutation strength adapts to the search: each child's polynomial mutation uses a coarse (ηm 5, jumps
 * that leave local optima) or a standard (ηm 20) distribution index, drawn with probabilities that follow how often
 * each one's children survived the last generations (probability matching, see mutation-arms.ts). Parents by
 * tournament, SBX crossover, survival with clearing as in `elitist`.
 */
export interface AdaptiveOptions extends VariationOptions {
  /** Tournament size of parent selection. Default 3. */
  k?: number;
  /** Survival clearance in gene units (see ElitistOptions.clearance). Default 0.002. */
  clearance?: number;
  /** The polynomial-mutation distribution indices to choose from (replace `etaM`; `mutation` is ignored). Default [5, 20]. */
  etaMs?: number[];
  /** Adaptation rate β of each index's survival quality. Default 0.3. */
  adaptRate?: number;
  /** Floor pMin on each index's probability, so none is ever ruled out. Default 0.05. */
  minProbability?: number;
}

export const ADAPTIVE_ETAS: readonly number[] = [5, 20];

export function adaptiveStrategy(opts: AdaptiveOptions = {}): Strategy {
  const arms: ArmSettings = {
    etas: opts.etaMs?.length ? opts.etaMs.slice() : ADAPTIVE_ETAS,
    beta: opts.adaptRate ?? 0.3,
    pMin: opts.minProbability ?? 0.05,
  };
  const k = opts.k ?? 3;
  return {
    name: 'adaptive',
    multiObjective: false,
    initialState: () => armsInitialState(arms),
    next({ population, offspring, size, rng, state }: GenerationInput): GenerationOutput {
      const pop = survivors([...population, ...offspring], size, objectiveCompare, opts.clearance ?? 0.002);
      const { probabilities, quality } = creditArms(arms, state, offspring, pop);
      const v = variation(opts);
      const rate = v.mutationRate ?? 1 / Math.max(1, pop[0]?.x.length ?? 1);
      const used: number[] = [];
      const children = breedByTournament(pop, size, k, rng, objectiveCompare, opts, {}, armMutation(arms, probabilities, rate, rng, used));
      return { population: pop, children, state: { probabilities, quality, arms: used.slice(0, size) } };
    },
  };
}
