import { breedByTournament } from './breed.js';
import { objectiveCompare } from '../ranking.js';
import type { GenerationInput, GenerationOutput, Member, Strategy, VariationOptions } from './types.js';

/**
 * (μ+λ) evolution: parents and offspring compete together and the best μ survive, so the elite is carried over
 * unchanged (and never re-evaluated). Parents by tournament, SBX crossover, polynomial mutation (breed.ts);
 * survival with clearing.
 */
export interface ElitistOptions extends VariationOptions {
  /** Tournament size of parent selection. Default 3. */
  k?: number;
  /**
   * Survival clearance in gene units: a member within this Chebyshev distance of a better survivor only survives
   * when there are not enough others. Default 0.002 (a 500th of each range); 0 clears exact duplicates only.
   */
  clearance?: number;
}

export function elitistStrategy(opts: ElitistOptions = {}): Strategy {
  return {
    name: 'elitist',
    multiObjective: false,
    initialState: () => ({}),
    next({ population, offspring, size, rng, state }: GenerationInput): GenerationOutput {
      const pop = survivors([...population, ...offspring], size, objectiveCompare, opts.clearance ?? 0.002);
      const children = breedByTournament(pop, size, opts.k ?? 3, rng, objectiveCompare, opts);
      return { population: pop, children, state };
    },
  };
}

/**
 * The best `size` members by `compare`, ties by id so the order never depends on the sort's stability, with
 * clearing (Pétrowski 1996): a member within Chebyshev distance `radius` (gene units) of a better kept member
 * only survives when there are not enough others. Copies and near-copies would crowd out the diversity that
 * crossover needs to leave a local optimum (and a cached re-evaluation teaches nothing). radius 0 clears exact
 * duplicates only.
 */
export function survivors(
  all: Member[],
  size: number,
  compare: (a: Member['eval'], b: Member['eval']) => number,
  radius = 0,
): Member[] {
  const sorted = all.slice().sort((a, b) => compare(a.eval, b.eval) || a.id - b.id);
  const unique: Member[] = [];
  const dups: Member[] = [];
  for (const m of sorted) {
    const near = unique.some((u) => chebyshev(u.x, m.x) <= radius);
    (near ? dups : unique).push(m);
  }
  return [...unique, ...dups].slice(0, size);
}

function chebyshev(a: readonly number[], b: readonly number[]): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}
