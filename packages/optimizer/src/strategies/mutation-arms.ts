import type { Rng } from '@cvopt/core';
import { polynomialMutation } from '../operators.js';
import type { Member, StrategyState } from './types.js';

/**
 * Adaptive choice of the polynomial-mutation strength by probability matching (Thierens 2005). Each child is
 * mutated with one of several distribution indices ηm, drawn with probabilities that follow how often each one's
 * children survived: q ← (1 − β)·q + β·(survivors / children) per index, p = pMin + (1 − K·pMin)·q/Σq. The state
 * (probabilities, qualities, the index each pending child used) lives in the strategy state, so it resumes exactly.
 */
export interface ArmSettings {
  etas: readonly number[];
  /** Adaptation rate β. */
  beta: number;
  /** Probability floor pMin (capped at 1/K). */
  pMin: number;
}

export function armsInitialState(s: ArmSettings): StrategyState {
  return { probabilities: s.etas.map(() => 1 / s.etas.length), quality: s.etas.map(() => 1), arms: null };
}

/** Credit each index with the share of its children (offspring, in asked order) that are in `kept`. */
export function creditArms(s: ArmSettings, state: StrategyState, offspring: readonly Member[], kept: readonly Member[]): { probabilities: number[]; quality: number[] } {
  const quality = (state.quality as number[] | undefined)?.slice() ?? s.etas.map(() => 1);
  const arms = state.arms as number[] | null | undefined;
  if (arms) {
    const ids = new Set(kept.map((m) => m.id));
    const made = s.etas.map(() => 0);
    const survived = s.etas.map(() => 0);
    offspring.forEach((o, i) => {
      const a = arms[i];
      if (a === undefined || a >= s.etas.length) return;
      made[a]!++;
      if (ids.has(o.id)) survived[a]!++;
    });
    s.etas.forEach((_, a) => {
      if (made[a]! > 0) quality[a] = (1 - s.beta) * quality[a]! + s.beta * (survived[a]! / made[a]!);
    });
  }
  const total = quality.reduce((sum, q) => sum + q, 0);
  const k = s.etas.length;
  const pMin = Math.min(s.pMin, 1 / k);
  const probabilities = quality.map((q) => (total > 0 ? pMin + (1 - k * pMin) * (q / total) : 1 / k));
  return { probabilities, quality };
}

/** A mutation that draws an index per child, records it in `used` and applies polynomial mutation with it. */
export function armMutation(
  s: ArmSettings,
  probabilities: readonly number[],
  rate: number,
  rng: Rng,
  used: number[],
): (x: number[]) => number[] {
  return (x) => {
    const a = pick(probabilities, rng);
    used.push(a);
    return polynomialMutation(x, rng, s.etas[a]!, rate);
  };
}

/** Roulette draw of an index by probability. */
function pick(p: readonly number[], rng: Rng): number {
  let r = rng.float() * p.reduce((s, x) => s + x, 0);
  for (let i = 0; i < p.length; i++) {
    r -= p[i]!;
    if (r < 0) return i;
  }
  return p.length - 1;
}
