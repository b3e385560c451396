import type { EngineId, SerializedError } from '@cvopt/core';
import type { FitnessTerms, Genome, StrategyName } from '@cvopt/optimizer';

/** The shapes of a tune run: its options, events, trial records, result, and the settings saved in run.json. */

export interface TuneConstraints {
  /** Hard p95 limit (ms) for the constrained strategy; defaults to targetLatencyMs. */
  maxLatencyMs?: number;
  /** Hard limit on the exported ONNX size in MB. */
  maxSizeMb?: number;
  /** Minimum validation mAP50. */
  minMap50?: number;
}

export interface TuneOptions {
  model: string;
  data: string;
  out: string;
  strategy: StrategyName;
  /** Default 5. */
  generations?: number;
  /** Candidates per generation. Default 8. */
  population?: number;
  /** Training epochs per trial. Default 10. */
  epochs?: number;
  /** Input size of the default genome; the searched sizes are multiples of 32 up to it. Default 640. */
  imgsz?: number;
  /** Default 16. */
  batch?: number;
  device?: 'cpu' | 'cuda';
  /** Seeds the search and every trial's training. Default 0. */
  seed?: number;
  /** Target engine for latency: any ONNX Runtime id of core's ENGINES (default ort-cpu). */
  engine?: EngineId;
  targetLatencyMs?: number;
  /** w of the latency penalty. Default 1. */
  latencyWeight?: number;
  wMap50?: number;
  wMap5095?: number;
  /** Timed runs per latency measurement (after 3 warm-up runs). Default 30. */
  latencyRuns?: number;
  /** YAML file overriding the search space. */
  spaceFile?: string;
  constraints?: TuneConstraints;
  /** NSGA-II: add the ONNX size as a third objective. */
  sizeObjective?: boolean;
  resume?: boolean;
  /**
   * A directory shared between runs: a trial already trained by any run with the same model, data, epochs,
   * batch, device, seed and genome is reused from it (its metrics and latency), not retrained.
   */
  cacheDir?: string;
  /** Concurrent trials. Default 1; at most 2 on a GPU. */
  maxParallel?: number;
  onEvent?: (e: TuneEvent) => void;
  signal?: AbortSignal;
}

export type TuneEvent =
  | { type: 'trial-start'; trial: number; generation: number; params: Genome }
  | { type: 'trial-progress'; trial: number; stage: string; step: number; total: number; message?: string }
  | { type: 'trial-end'; record: TrialRecord; replayed: boolean }
  | { type: 'generation-end'; generation: number; generations: number; bestFitness: number | null; generationBest: number | null; failed: number };

export interface TrialRecord {
  type: 'trial';
  id: number;
  generation: number;
  key: string;
  isDefault: boolean;
  /** Everything passed to training: searched values, pinned values and imgsz. */
  params: Genome;
  /** ok: trained here; cached: an identical genome was already trained (see cachedFrom); failed: see error. */
  status: 'ok' | 'cached' | 'failed';
  cachedFrom?: number;
  /** For a trial reused from the shared trial cache: the run that trained it. */
  cachedFromRun?: string;
  error?: SerializedError;
  metrics?: { map50: number; map5095: number };
  p95Ms?: number;
  sizeMb?: number;
  terms?: FitnessTerms;
  /** Null when the trial failed: a failure is infeasible, never a fitness of 0. */
  fitness: number | null;
  objectives: number[];
  violations?: number[];
  checkpoint?: string;
  onnx?: string;
  durationS: number;
  finishedAt: string;
}

export interface TuneResult {
  runDir: string;
  strategy: StrategyName;
  generations: number;
  population: number;
  trials: TrialRecord[];
  best: TrialRecord;
  default: TrialRecord | undefined;
  /** NSGA-II: the non-dominated trials and the knee among them. */
  pareto?: { front: TrialRecord[]; knee: TrialRecord | undefined };
  /** Trials actually trained by this invocation (replayed and cached ones excluded). */
  trained: number;
  replayed: number;
  durationS: number;
  files: Record<string, string>;
}

export interface RunConfig {
  model: string;
  data: string;
  strategy: StrategyName;
  generations: number;
  population: number;
  epochs: number;
  imgsz: number;
  batch: number;
  device: 'cpu' | 'cuda';
  seed: number;
  engine: EngineId;
  fitness: { wMap50?: number; wMap5095?: number; latencyWeight?: number; targetLatencyMs?: number };
  constraints: TuneConstraints;
  sizeObjective: boolean;
  latencyRuns: number;
  space: unknown;
}
