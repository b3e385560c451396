import { polynomialMutation, sbx } from '../operators.js';
import { crowdingDistance, nonDominatedSort, totalViolation } from '../ranking.js';
import type { GenerationInput, GenerationOutput, Member, Strategy } from './types.js';

/**
 * NSGA-II (Deb, Pratap, Agarwal & Meyarivan 2002): survival by constrained non-dominated sorting then crowding
 * distance; parents by crowded binary tournament (lower rank, then larger crowding); SBX crossover and polynomial
 * mutation, the operators of the paper.
 */
export interface Nsga2Options {
  /** SBX distribution index. Default 20. */
  etaC?: number;
  /** SBX pair crossover probability. Default 0.9. */
  crossoverRate?: number;
  /** Polynomial-mutation distribution index. Default 10 (coarser than the usual 20: keeps ZDT2's concave front from collapsing to its f1 = 0 end). */
  etaM?: number;
  /** Per-gene mutation probability. Default 1/dim. */
  mutationRate?: number;
}

export function nsga2Strategy(opts: Nsga2Options = {}): Strategy {
  const etaC = opts.etaC ?? 20;
  const pc = opts.crossoverRate ?? 0.9;
  const etaM = opts.etaM ?? 10;
  return {
    name: 'nsga2',
    multiObjective: true,
    initialState: () => ({}),
    next({ population, offspring, size, rng, state }: GenerationInput): GenerationOutput {
      const { pop, rank, crowd } = nsga2Survival([...population, ...offspring], size);
      const dim = pop[0]?.x.length ?? 0;
      const rate = opts.mutationRate ?? 1 / Math.max(1, dim);
      const pick = (): Member => {
        const i = rng.int(0, pop.length - 1);
        const j = rng.int(0, pop.length - 1);
        if (rank[i]! !== rank[j]!) return pop[rank[i]! < rank[j]! ? i : j]!;
        if (crowd[i]! !== crowd[j]!) return pop[crowd[i]! > crowd[j]! ? i : j]!;
        return pop[rng.bool() ? i : j]!;
      };
      const children: number[][] = [];
      while (children.length < size) {
        const [c1, c2] = sbx(pick().x, pick().x, rng, etaC, pc);
        children.push(polynomialMutation(c1, rng, etaM, rate));
        if (children.length < size) children.push(polynomialMutation(c2, rng, etaM, rate));
      }
      return { population: pop, children, state };
    },
  };
}

/** Environmental selection of NSGA-II; also returns each survivor's rank and crowding distance. */
export function nsga2Survival(all: Member[], size: number): { pop: Member[]; rank: number[]; crowd: number[] } {
  const fronts = nonDominatedSort(all.map((m) => m.eval));
  const pop: Member[] = [];
  const rank: number[] = [];
  const crowd: number[] = [];
  for (let f = 0; f < fronts.length && pop.length < size; f++) {
    const front = fronts[f]!;
    // Crowding only means something among feasible points; infeasible ones are already ordered by violation.
    const d = crowdingDistance(front.map((i) => (totalViolation(all[i]!.eval) === 0 ? all[i]!.eval.objectives : [0])));
    const order = front.map((_, k) => k).sort((a, b) => d[b]! - d[a]! || all[front[a]!]!.id - all[front[b]!]!.id);
    for (const k of order) {
      if (pop.length >= size) break;
      pop.push(all[front[k]!]!);
      rank.push(f);
      crowd.push(d[k]!);
    }
  }
  return { pop, rank, crowd };
}
