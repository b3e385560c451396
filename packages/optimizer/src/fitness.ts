import { CvoptError } from '@cvopt/core';

/**
 * Deployment-aware fitness (DESIGN.md): accuracy traded against latency on the target engine.
 * fitness = wMap50·mAP50 + wMap5095·mAP50-95 − w·max(0, p95/target − 1). Every term is returned so a trial
 * records exactly how its score was made.
 */
export interface FitnessConfig {
  /** Weight of mAP50. Default 0.7. */
  wMap50?: number;
  /** Weight of mAP50-95. Default 0.3. */
  wMap5095?: number;
  /** Latency penalty weight w. Default 1. */
  latencyWeight?: number;
  /** Target p95 latency in ms; no penalty when absent. */
  targetLatencyMs?: number;
}

export interface FitnessTerms {
  map50: number;
  map5095: number;
  p95Ms: number | null;
  accuracy: number;
  latencyPenalty: number;
  fitness: number;
  wMap50: number;
  wMap5095: number;
  latencyWeight: number;
  targetLatencyMs: number | null;
}

export const DEFAULT_FITNESS = { wMap50: 0.7, wMap5095: 0.3, latencyWeight: 1 } as const;

export function deploymentFitness(m: { map50: number; map5095: number; p95Ms?: number | null }, cfg: FitnessConfig = {}): FitnessTerms {
  const wMap50 = cfg.wMap50 ?? DEFAULT_FITNESS.wMap50;
  const wMap5095 = cfg.wMap5095 ?? DEFAULT_FITNESS.wMap5095;
  const w = cfg.latencyWeight ?? DEFAULT_FITNESS.latencyWeight;
  const target = cfg.targetLatencyMs ?? null;
  if (target !== null && !(target > 0)) {
    throw new CvoptError('INVALID_ARGUMENT', `target latency must be > 0 ms, got ${target}`, { where: { field: 'targetLatencyMs' } });
  }
  const p95 = m.p95Ms ?? null;
  const accuracy = wMap50 * m.map50 + wMap5095 * m.map5095;
  const latencyPenalty = target !== null && p95 !== null ? w * Math.max(0, p95 / target - 1) : 0;
  return {
    map50: m.map50,
    map5095: m.map5095,
    p95Ms: p95,
    accuracy,
    latencyPenalty,
    fitness: accuracy - latencyPenalty,
    wMap50,
    wMap5095,
    latencyWeight: w,
    targetLatencyMs: target,
  };
}
