import type { Rng } from '@cvopt/core';
import type { Evaluation } from '../ranking.js';

/** An evaluated point as a strategy sees it: genes in [0, 1] and its evaluation. */
export interface Member {
  id: number;
  x: number[];
  eval: Evaluation;
}

export type StrategyState = Record<string, number | number[] | null>;

export interface GenerationInput {
  /** Survivors of the previous generation (empty after generation 1). */
  population: Member[];
  /** The generation just evaluated, in the order it was asked. */
  offspring: Member[];
  /** Population size μ (and offspring per generation λ). */
  size: number;
  rng: Rng;
  state: StrategyState;
  /** The generation just evaluated (1-based) and the study's total, for schedules. */
  generation?: number;
  generations?: number;
}

export interface GenerationOutput {
  population: Member[];
  /** Genes of the next generation to evaluate, exactly `size` of them. */
  children: number[][];
  state: StrategyState;
}

/**
 * One genetic algorithm: survival and variation, nothing else. It keeps no state of its own between calls (the
 * study passes `state` in and stores what comes back), so runs never share hidden state and resume exactly.
 */
export interface Strategy {
  readonly name: StrategyName;
  readonly multiObjective: boolean;
  initialState(dim: number): StrategyState;
  next(input: GenerationInput): GenerationOutput;
}

export const STRATEGY_NAMES = ['tournament', 'elitist', 'adaptive', 'constrained', 'nsga2'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** The variation shared by the tournament, elitist, adaptive and constrained strategies. */
export interface VariationOptions {
  /** 'sbx' (simulated binary, bounded; default) or 'blx' (BLX-α). */
  crossover?: 'sbx' | 'blx';
  /** 'polynomial' (Deb's bounded polynomial mutation; default) or 'gaussian' (reflecting at the bounds). */
  mutation?: 'polynomial' | 'gaussian';
  /** Probability that a pair of parents is crossed (otherwise copied). Default 0.9. */
  crossoverRate?: number;
  /** SBX distribution index (larger = children nearer their parents). Default 20. */
  etaC?: number;
  /** Polynomial-mutation distribution index. Default 20. */
  etaM?: number;
  /** BLX-α widening, for crossover 'blx'. Default 0.5. */
  alpha?: number;
  /** Gaussian mutation step in gene units, for mutation 'gaussian'. Default 0.1. */
  sigma?: number;
  /** Per-gene mutation probability. Default 1/dim. */
  mutationRate?: number;
  /** Share of SBX crossovers done along the parents' line (sbxLine) instead of gene by gene. Default 0. */
  lineRate?: number;
  /**
   * SBX distribution index of the line crossover. Default 1: a wide spread, so children also extrapolate along
   * the line (a step as long as the parents' distance is common), which is what follows a narrow ridge.
   */
  etaLine?: number;
}
