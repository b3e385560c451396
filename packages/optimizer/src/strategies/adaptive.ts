import { blxAlpha, gaussianMutation, tournament } from '../operators.js';
import { objectiveCompare, scalar } from '../ranking.js';
import { survivors } from './elitist.js';
import type { GenerationInput, GenerationOutput, Strategy } from './types.js';

/**
 * (μ+λ) with self-tuning mutation. Strength follows Rechenberg's 1/5th success rule: when more than a fifth of
 * the children beat their first parent the step grows (σ /= c), otherwise it shrinks (σ *= c). Rate follows
 * diversity: when the population's mean per-gene standard deviation falls below `diversityFloor`, the per-gene
 * rate doubles (up to 1) to spread it again; otherwise it relaxes halfway back to its start.
 */
export interface AdaptiveOptions {
  /** Initial mutation step in gene units. Default 0.1. */
  sigma0?: number;
  /** Step bounds. Default [1e-4, 0.5]. */
  sigmaMin?: number;
  sigmaMax?: number;
  /**
   * Shrink factor of the 1/5th rule. Default 0.7: stronger than Schwefel's per-mutation 0.817 because it is
   * applied once per generation of λ children (chosen on the sphere/Rastrigin benchmark, bench/optimizer.mjs).
   */
  c?: number;
  /** Success rate target. Default 0.2. */
  target?: number;
  /** Initial per-gene mutation rate. Default max(1/dim, 0.3). */
  rate0?: number;
  /** Mean per-gene std below which the rate is raised. Default 0.02. */
  diversityFloor?: number;
  /** BLX-α widening of the crossover; default 0.3. */
  alpha?: number;
  /** Probability that a child is a crossover. Default 0.9. */
  crossoverRate?: number;
}

export function adaptiveStrategy(opts: AdaptiveOptions = {}): Strategy {
  const sigma0 = opts.sigma0 ?? 0.1;
  const sigmaMin = opts.sigmaMin ?? 1e-4;
  const sigmaMax = opts.sigmaMax ?? 0.5;
  const c = opts.c ?? 0.7;
  const target = opts.target ?? 0.2;
  const floor = opts.diversityFloor ?? 0.02;
  const alpha = opts.alpha ?? 0.3;
  const pc = opts.crossoverRate ?? 0.9;
  return {
    name: 'adaptive',
    multiObjective: false,
    initialState: (dim) => {
      const rate0 = opts.rate0 ?? Math.max(1 / Math.max(1, dim), 0.3);
      return { sigma: sigma0, rate: rate0, rate0, parentScores: null, successRate: null, diversity: null };
    },
    next({ population, offspring, size, rng, state }: GenerationInput): GenerationOutput {
      let sigma = state.sigma as number;
      let rate = state.rate as number;
      const rate0 = state.rate0 as number;
      const parentScores = state.parentScores as number[] | null;
      let successRate: number | null = null;
      if (parentScores) {
        let wins = 0;
        offspring.forEach((o, i) => {
          if (scalar(o.eval) < (parentScores[i] ?? Infinity)) wins++;
        });
        successRate = wins / Math.max(1, offspring.length);
        sigma = successRate > target ? sigma / c : successRate < target ? sigma * c : sigma;
        sigma = Math.min(sigmaMax, Math.max(sigmaMin, sigma));
      }
      const pop = survivors([...population, ...offspring], size, objectiveCompare);
      const diversity = meanStd(pop.map((m) => m.x));
      rate = diversity < floor ? Math.min(1, rate * 2) : rate + (rate0 - rate) / 2;

      const better = (i: number, j: number) => objectiveCompare(pop[i]!.eval, pop[j]!.eval) < 0;
      const children: number[][] = [];
      const scores: number[] = [];
      while (children.length < size) {
        const pa = pop[tournament(pop.length, 2, rng, better)]!;
        const pb = pop[tournament(pop.length, 2, rng, better)]!;
        const child = rng.float() < pc ? blxAlpha(pa.x, pb.x, rng, alpha) : pa.x.slice();
        children.push(gaussianMutation(child, rng, sigma, rate));
        scores.push(scalar(pa.eval));
      }
      return { population: pop, children, state: { sigma, rate, rate0, parentScores: scores, successRate, diversity } };
    },
  };
}

function meanStd(xs: number[][]): number {
  if (xs.length < 2) return 0;
  const dim = xs[0]!.length;
  let total = 0;
  for (let k = 0; k < dim; k++) {
    const mean = xs.reduce((s, x) => s + x[k]!, 0) / xs.length;
    total += Math.sqrt(xs.reduce((s, x) => s + (x[k]! - mean) ** 2, 0) / xs.length);
  }
  return total / Math.max(1, dim);
}
