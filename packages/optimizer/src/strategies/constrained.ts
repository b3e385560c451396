import { breedByTournament, variation } from './breed.js';
import { armMutation, armsInitialState, creditArms, type ArmSettings } from './mutation-arms.js';
import { scalar, totalViolation, type Evaluation } from '../ranking.js';
import { survivors } from './elitist.js';
import type { GenerationInput, GenerationOutput, Strategy, VariationOptions } from './types.js';

/**
 * (μ+λ) under the ε-constrained comparison (Takahama & Sakai 2006), which needs no penalty weights: two members
 * whose total violations are both ≤ ε (or equal) compare by objective, otherwise the smaller violation wins. ε
 * starts at the violation of the best `epsilonQuantile` of the first generation and falls as (1 − t/Tc)^cp to 0 at
 * generation Tc = epsilonUntil × generations; from there on the comparison is exactly Deb's feasibility rules
 * (feasible beats infeasible, feasible by objective, infeasible by total violation), so the final population is
 * feasible whenever enough feasible points were found. Early on, slightly infeasible members that score well are
 * kept, so the population can close in on optima that lie on the boundary from both sides.
 */
export interface ConstrainedOptions extends VariationOptions {
  /** Tournament size under the ε comparison. Default 2. */
  k?: number;
  /**
   * Survival clearance in gene units (see ElitistOptions.clearance). Default 0, exact duplicates only: feasible
   * regions can be far thinner than any useful radius (g06's is under 1e-4 wide near its optimum).
   */
  clearance?: number;
  /**
   * Polynomial-mutation distribution indices, chosen per child by probability matching as in `adaptive` (they
   * replace `etaM`; `mutation: 'gaussian'` turns this off). Default [5, 20, 100]: coarse, standard, and a fine
   * one that lands on thin feasible regions far more often.
   */
  etaMs?: number[];
  /** Quantile of generation 1's violations that sets ε(0). Default 0.2 (0 = plain Deb's rules throughout). */
  epsilonQuantile?: number;
  /** Fraction of the generations after which ε = 0. Default 0.9. */
  epsilonUntil?: number;
  /**
   * Exponent cp of the ε schedule. Default 20: ε falls below 1 % of ε(0) within the first fifth of Tc and then
   * stays small but non-zero, which widens thin feasible regions just enough to move along them.
   */
  epsilonPower?: number;
}

/**
 * Variation defaults of the constrained strategy: half the crossovers along the parents' line, since optima of
 * constrained problems sit where boundaries meet, at the tip of narrow feasible ridges that per-gene crossover
 * keeps leaving. Chosen on CEC2006 g06 (bench/optimizer.mjs --deap-budgets).
 */
export const CONSTRAINED_VARIATION = { lineRate: 0.5, etaLine: 1 } as const;
export const CONSTRAINED_ETAS: readonly number[] = [5, 20, 100];

export function constrainedStrategy(opts: ConstrainedOptions = {}): Strategy {
  const k = opts.k ?? 2;
  const quantile = opts.epsilonQuantile ?? 0.2;
  const until = opts.epsilonUntil ?? 0.9;
  const cp = opts.epsilonPower ?? 20;
  const arms: ArmSettings = { etas: opts.etaMs?.length ? opts.etaMs.slice() : CONSTRAINED_ETAS, beta: 0.3, pMin: 0.05 };
  return {
    name: 'constrained',
    multiObjective: false,
    initialState: () => ({ epsilon0: null, epsilon: null, ...armsInitialState(arms) }),
    next({ population, offspring, size, rng, state, generation = 1, generations = 1 }: GenerationInput): GenerationOutput {
      let epsilon0 = (state.epsilon0 as number | null | undefined) ?? null;
      if (epsilon0 === null) {
        const v = offspring.map((m) => totalViolation(m.eval)).filter(Number.isFinite).sort((a, b) => a - b);
        epsilon0 = quantile > 0 && v.length > 0 ? v[Math.min(v.length - 1, Math.floor(quantile * v.length))]! : 0;
      }
      const tc = until * generations;
      const epsilon = generation < tc ? epsilon0 * Math.pow(1 - generation / tc, cp) : 0;
      const compare = epsilonCompare(epsilon);
      const pop = survivors([...population, ...offspring], size, compare, opts.clearance ?? 0);
      const { probabilities, quality } = creditArms(arms, state, offspring, pop);
      const v = variation(opts, CONSTRAINED_VARIATION);
      const rate = v.mutationRate ?? 1 / Math.max(1, pop[0]?.x.length ?? 1);
      const used: number[] = [];
      const mutate = opts.mutation === 'gaussian' ? undefined : armMutation(arms, probabilities, rate, rng, used);
      const children = breedByTournament(pop, size, k, rng, compare, opts, CONSTRAINED_VARIATION, mutate);
      return { population: pop, children, state: { epsilon0, epsilon, probabilities, quality, arms: used.length ? used.slice(0, size) : null } };
    },
  };
}

/**
 * The ε-level comparison (< 0 when a is better): objective when both violations are ≤ ε or equal, else violation.
 * With ε = 0 it is Deb's rules; a failed trial (infinite violation) loses to everything that ran.
 */
export function epsilonCompare(epsilon: number): (a: Evaluation, b: Evaluation) => number {
  return (a, b) => {
    const va = totalViolation(a);
    const vb = totalViolation(b);
    if ((va <= epsilon && vb <= epsilon) || va === vb) {
      const fa = scalar(a);
      const fb = scalar(b);
      return fa === fb ? 0 : fa < fb ? -1 : 1;
    }
    return va < vb ? -1 : 1;
  };
}
