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

/** The variation shared by the tournament, elitist and constrained strategies. */
export interface VariationOptions {
  /** BLX-α widening. Default 0.5. */
  alpha?: number;
  /** Probability that a child is a crossover (otherwise a copy of the first parent). Default 0.9. */
  crossoverRate?: number;
  /** Gaussian mutation step in gene units. Default 0.1. */
  sigma?: number;
  /** Per-gene mutation probability. Default 1/dim. */
  mutationRate?: number;
}
