import type { Rng } from '@cvopt/core';
import { blxAlpha, gaussianMutation, polynomialMutation, sbx, sbxLine, tournament } from '../operators.js';
import type { Evaluation } from '../ranking.js';
import type { Member, VariationOptions } from './types.js';

/** Variation settings with every default filled in (see VariationOptions for what each means). */
export interface Variation {
  crossover: 'sbx' | 'blx';
  mutation: 'polynomial' | 'gaussian';
  crossoverRate: number;
  etaC: number;
  etaM: number;
  alpha: number;
  sigma: number;
  /** Per-gene mutation probability; undefined = 1/dim. */
  mutationRate: number | undefined;
  lineRate: number;
  etaLine: number;
}

export function variation(opts: VariationOptions, defaults: Partial<Variation> = {}): Variation {
  return {
    crossover: opts.crossover ?? defaults.crossover ?? 'sbx',
    mutation: opts.mutation ?? defaults.mutation ?? 'polynomial',
    crossoverRate: opts.crossoverRate ?? defaults.crossoverRate ?? 0.9,
    etaC: opts.etaC ?? defaults.etaC ?? 20,
    etaM: opts.etaM ?? defaults.etaM ?? 20,
    alpha: opts.alpha ?? defaults.alpha ?? 0.5,
    sigma: opts.sigma ?? defaults.sigma ?? 0.1,
    mutationRate: opts.mutationRate ?? defaults.mutationRate,
    lineRate: opts.lineRate ?? defaults.lineRate ?? 0,
    etaLine: opts.etaLine ?? defaults.etaLine ?? 1,
  };
}

/**
 * Two children of two parents: with probability crossoverRate a crossover (SBX — along the parents' line for a
 * `lineRate` share of pairs — or two BLX-α draws), else copies; then mutation of each (polynomial or Gaussian).
 * `mutate` replaces the mutation, for strategies that adapt it.
 */
export function mate(
  a: readonly number[],
  b: readonly number[],
  rng: Rng,
  v: Variation,
  mutate?: (x: number[]) => number[],
): [number[], number[]] {
  let c1: number[];
  let c2: number[];
  if (v.crossover === 'sbx' && v.lineRate > 0 && rng.float() < v.lineRate) {
    [c1, c2] = rng.float() < v.crossoverRate ? sbxLine(a, b, rng, v.etaLine) : [a.slice(), b.slice()];
  } else if (v.crossover === 'sbx') [c1, c2] = sbx(a, b, rng, v.etaC, v.crossoverRate);
  else if (rng.float() < v.crossoverRate) [c1, c2] = [blxAlpha(a, b, rng, v.alpha), blxAlpha(a, b, rng, v.alpha)];
  else [c1, c2] = [a.slice(), b.slice()];
  const rate = v.mutationRate ?? 1 / Math.max(1, a.length);
  const m =
    mutate ?? ((x: number[]) => (v.mutation === 'polynomial' ? polynomialMutation(x, rng, v.etaM, rate) : gaussianMutation(x, rng, v.sigma, rate)));
  return [m(c1), m(c2)];
}

/**
 * `size` children from `pop`: pairs of parents by k-tournaments under `compare`, each pair mated (see `mate`,
 * `mutate` overrides the mutation); children are made in pairs and the last odd one is dropped.
 */
export function breedByTournament(
  pop: readonly Member[],
  size: number,
  k: number,
  rng: Rng,
  compare: (a: Evaluation, b: Evaluation) => number,
  opts: VariationOptions,
  defaults: Partial<Variation> = {},
  mutate?: (x: number[]) => number[],
): number[][] {
  const v = variation(opts, defaults);
  const better = (i: number, j: number) => compare(pop[i]!.eval, pop[j]!.eval) < 0;
  const children: number[][] = [];
  while (children.length < size) {
    const a = pop[tournament(pop.length, k, rng, better)]!.x;
    const b = pop[tournament(pop.length, k, rng, better)]!.x;
    const [c1, c2] = mate(a, b, rng, v, mutate);
    children.push(c1);
    if (children.length < size) children.push(c2);
  }
  return children;
}
