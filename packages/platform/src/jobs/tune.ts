import { closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CvoptError, Rng, serializeError, toCvoptError, type SerializedError } from '@cvopt/core';
import { loadDetectionDataset } from '@cvopt/datasets';
import { createOrtEngine, readManifest } from '@cvopt/engines';
import {
  Study,
  STRATEGY_NAMES,
  deploymentFitness,
  genomeKey,
  tuneSpace,
  type Evaluation,
  type FitnessTerms,
  type Genome,
  type StrategyName,
  type StudyState,
  type Trial,
} from '@cvopt/optimizer';
import { parse as parseYaml, LineCounter, parseDocument, isMap, isPair, isScalar } from 'yaml';
import { exportModel } from './export.js';
import { trainModel } from './train.js';
import { hypYaml, progressSvg, trialsCsv } from './tune-report.js';

/**
 * The tune job: a genetic search over training hyperparameters where each trial trains the model through the
 * Python worker, exports it to ONNX, and measures p95 latency on the target engine. Every finished trial is
 * appended (fsync'd) to trials.jsonl and the optimiser state is saved after each generation, so `resume`
 * replays finished trials instead of retraining them and reaches the same result as an uninterrupted run.
 */

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
  /** Target engine for latency: ort-cpu (default) or ort-cuda. */
  engine?: string;
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

interface RunConfig {
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
  engine: string;
  fitness: { wMap50?: number; wMap5095?: number; latencyWeight?: number; targetLatencyMs?: number };
  constraints: TuneConstraints;
  sizeObjective: boolean;
  latencyRuns: number;
  space: unknown;
}

const ENGINE_PROVIDERS: Record<string, 'cpu' | 'cuda'> = { 'ort-cpu': 'cpu', 'ort-cuda': 'cuda' };
const WARMUP_RUNS = 3;
const GPU_TRIAL_LIMIT = 2;

export async function tune(opts: TuneOptions): Promise<TuneResult> {
  const started = performance.now();
  const cfg = validate(opts);
  const runDir = resolve(opts.out);
  mkdirSync(runDir, { recursive: true });
  const paths = {
    config: join(runDir, 'run.json'),
    log: join(runDir, 'trials.jsonl'),
    state: join(runDir, 'state.json'),
  };

  const hasLog = existsSync(paths.log) && statSync(paths.log).size > 0;
  if (hasLog && !opts.resume) {
    throw new CvoptError('CONFLICT', `${runDir} already holds a tune run (trials.jsonl)`, {
      where: { file: paths.log },
      hint: 'pass --resume to continue it, or choose another --out',
    });
  }
  if (opts.resume && existsSync(paths.config)) {
    const before = JSON.parse(readFileSync(paths.config, 'utf8')) as RunConfig;
    const changed = (Object.keys(cfg) as (keyof RunConfig)[]).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(cfg[k]));
    if (changed.length) {
      throw new CvoptError('CONFLICT', `cannot resume ${runDir} with different settings: ${changed.join(', ')} changed`, {
        where: { file: paths.config, field: changed[0] },
        hint: 'resume with the same flags as the original run (see run.json), or start a new run in another --out',
      });
    }
  }
  writeAtomic(paths.config, JSON.stringify(cfg, null, 2));

  const { space, fixed } = tuneSpace(cfg.imgsz, cfg.space);
  const dataset = loadDetectionDataset(cfg.data);
  const trainSplit = dataset.splits.train ?? [];
  const valSplit = dataset.splits.val ?? dataset.splits.test ?? [];
  if (trainSplit.length === 0 || valSplit.length === 0) {
    throw new CvoptError('DATASET_INVALID', `tuning needs images in both train and val splits (found ${trainSplit.length} and ${valSplit.length})`, {
      where: { file: dataset.yamlPath },
      hint: 'point train and val in data.yaml at image folders; the val split scores every trial',
    });
  }

  const logged = opts.resume ? readLog(paths.log) : new Map<number, TrialRecord>();
  let study: Study;
  if (opts.resume && existsSync(paths.state)) {
    study = Study.fromJSON(JSON.parse(readFileSync(paths.state, 'utf8')) as StudyState);
  } else {
    study = new Study({ space, strategy: cfg.strategy, population: cfg.population, generations: cfg.generations, rng: new Rng(cfg.seed) });
  }

  const records = new Map<number, TrialRecord>();
  const byKey = new Map<string, TrialRecord>();
  // Trials from generations already folded into the saved state are history, not pending work.
  for (const t of study.trials()) {
    const r = logged.get(t.id);
    if (r) {
      records.set(r.id, r);
      if (r.status === 'ok') byKey.set(r.key, r);
    }
  }
  const log = new TrialLog(paths.log);
  const shared = opts.cacheDir ? new TrialCache(opts.cacheDir, cfg) : undefined;
  const latencyLock = new Lock();
  const emit = (e: TuneEvent) => opts.onEvent?.(e);
  let trained = 0;
  let replayed = 0;
  const slots = Math.max(1, Math.min(opts.maxParallel ?? 1, cfg.device === 'cuda' ? GPU_TRIAL_LIMIT : Infinity));

  const runTrial = async (t: Trial): Promise<TrialRecord> => {
    // SGD is pinned: the trainer's 'auto' optimiser would replace lr0 and momentum, the very genes searched.
    const params: Genome = { optimizer: 'SGD', ...fixed, ...t.params };
    const key = genomeKey(params);
    const prior = logged.get(t.id);
    if (prior) {
      if (prior.key !== key) {
        throw new CvoptError('CONFLICT', `trial ${t.id} in trials.jsonl has other hyperparameters than this run proposes`, {
          where: { file: paths.log },
          hint: 'the run directory belongs to a different search; start a new run in another --out',
        });
      }
      replayed++;
      emit({ type: 'trial-end', record: prior, replayed: true });
      return prior;
    }
    const t0 = performance.now();
    const same = byKey.get(key) ?? shared?.get(key);
    let rec: TrialRecord;
    if (same) {
      // Metrics and latency carry over; fitness and objectives are recomputed under this run's settings.
      const terms = deploymentFitness({ ...same.metrics!, p95Ms: same.p95Ms ?? null }, cfg.fitness);
      const ev = evaluationFor(cfg, terms, same.sizeMb ?? 0);
      rec = { ...same, id: t.id, generation: t.generation, isDefault: t.isDefault, status: 'cached', terms, fitness: terms.fitness, objectives: ev.objectives, durationS: 0, finishedAt: new Date().toISOString() };
      delete rec.violations;
      delete rec.cachedFromRun;
      if (ev.violations) rec.violations = ev.violations;
      if (byKey.has(key)) rec.cachedFrom = same.id;
      else {
        delete rec.cachedFrom;
        rec.cachedFromRun = same.cachedFromRun ?? '?';
      }
    } else {
      emit({ type: 'trial-start', trial: t.id, generation: t.generation, params });
      rec = await trainAndMeasure(t, params, key);
      trained++;
      rec.durationS = round3((performance.now() - t0) / 1000);
      if (rec.status === 'ok') shared?.put(key, { ...rec, cachedFromRun: runDir });
    }
    log.append(rec);
    if (rec.status === 'ok') byKey.set(key, rec);
    emit({ type: 'trial-end', record: rec, replayed: false });
    return rec;
  };

  const trainAndMeasure = async (t: Trial, params: Genome, key: string): Promise<TrialRecord> => {
    const dir = join(runDir, 'trials', String(t.id).padStart(4, '0'));
    const base = { type: 'trial' as const, id: t.id, generation: t.generation, key, isDefault: t.isDefault, params, durationS: 0 };
    try {
      const imgsz = Number(params.imgsz ?? cfg.imgsz);
      const hyp = Object.fromEntries(Object.entries(params).filter(([k]) => k !== 'imgsz'));
      const progress = (stage: string) => (m: { step: number; total: number; message?: string }) =>
        emit({ type: 'trial-progress', trial: t.id, stage, step: m.step, total: m.total, ...(m.message ? { message: m.message } : {}) });
      const trainedOut = await trainModel(
        { model: cfg.model, data: cfg.data, out: join(dir, 'train'), epochs: cfg.epochs, imgsz, batch: cfg.batch, device: cfg.device, seed: cfg.seed, hyp, existOk: true },
        { onProgress: progress('train'), ...(opts.signal ? { signal: opts.signal } : {}) },
      );
      const checkpoint = String(trainedOut.best ?? trainedOut.last ?? '');
      const metrics = readMetrics(trainedOut.metrics);
      const onnx = join(dir, 'model.onnx');
      // exportModel also checks ONNX Runtime against PyTorch, so a trial never scores a mis-exported model.
      await exportModel({ checkpoint, out: onnx, imgsz }, { onProgress: progress('export'), ...(opts.signal ? { signal: opts.signal } : {}) });
      const p95Ms = await latencyLock.run(() => measureP95(onnx, cfg, cfg.latencyRuns));
      const sizeMb = round3(statSync(onnx).size / 1e6);
      const terms = deploymentFitness({ ...metrics, p95Ms }, cfg.fitness);
      const ev = evaluationFor(cfg, terms, sizeMb);
      const rec: TrialRecord = { ...base, status: 'ok', metrics, p95Ms, sizeMb, terms, fitness: terms.fitness, objectives: ev.objectives, checkpoint, onnx, finishedAt: new Date().toISOString() };
      if (ev.violations) rec.violations = ev.violations;
      return rec;
    } catch (e) {
      const err = toCvoptError(e);
      if (err.code === 'CANCELLED' || opts.signal?.aborted) throw new CvoptError('CANCELLED', 'tuning was interrupted; continue it with --resume', { hint: `cvopt tune ... --out ${runDir} --resume` });
      return { ...base, status: 'failed', error: serializeError(err), fitness: null, objectives: [], finishedAt: new Date().toISOString() };
    }
  };

  while (!study.done) {
    const generation = study.generation;
    const pending = study.ask();
    const results = await pool(pending, slots, runTrial);
    pending.forEach((t, i) => {
      const r = results[i]!;
      records.set(r.id, r);
      study.tell(t.id, r.status === 'failed' ? { objectives: [], failed: true, error: r.error?.message ?? 'failed' } : { objectives: r.objectives, ...(r.violations ? { violations: r.violations } : {}) });
    });
    writeAtomic(paths.state, JSON.stringify(study.toJSON()));

    const gen = [...records.values()].filter((r) => r.generation === generation);
    if (generation === 1 && gen.every((r) => r.status === 'failed')) {
      const first = gen[0]?.error;
      throw new CvoptError('TRIALS_ALL_FAILED', `all ${gen.length} trials of generation 1 failed${first ? `; the first with ${first.code}: ${first.message}` : ''}`, {
        where: { file: paths.log },
        hint: 'every trial failed, so the problem is the setup rather than the hyperparameters: check the model and dataset with `cvopt train` using the same flags, and read the errors in trials.jsonl',
        details: { errors: gen.map((r) => r.error) },
      });
    }
    const fit = (rs: TrialRecord[]) => {
      const v = rs.filter((r) => r.fitness !== null).map((r) => r.fitness as number);
      return v.length ? Math.max(...v) : null;
    };
    emit({
      type: 'generation-end',
      generation,
      generations: cfg.generations,
      bestFitness: fit([...records.values()]),
      generationBest: fit(gen),
      failed: gen.filter((r) => r.status === 'failed').length,
    });
  }

  const trials = [...records.values()].sort((a, b) => a.id - b.id);
  return finish({ runDir, cfg, study, trials, trained, replayed, started, paramNames: ['optimizer', ...Object.keys(fixed), ...space.params.map((p) => p.name)] });
}

function finish(a: { runDir: string; cfg: RunConfig; study: Study; trials: TrialRecord[]; trained: number; replayed: number; started: number; paramNames: string[] }): TuneResult {
  const { runDir, cfg, study, trials } = a;
  const ok = trials.filter((r) => r.fitness !== null);
  const feasible = ok.filter((r) => !r.violations || r.violations.every((v) => v === 0));
  // The constrained strategy reports the best feasible trial; if none is feasible, the least-violating one.
  const candidates = cfg.strategy === 'constrained' && feasible.length === 0 ? ok.slice().sort((x, y) => sum(x.violations) - sum(y.violations) || x.id - y.id).slice(0, 1) : feasible.length ? feasible : ok;
  const best = candidates.slice().sort((x, y) => (y.fitness as number) - (x.fitness as number) || x.id - y.id)[0];
  if (!best) throw new CvoptError('TRIALS_ALL_FAILED', 'no trial finished', { hint: 'read the errors in trials.jsonl' });

  const files: Record<string, string> = {
    trialsJsonl: join(runDir, 'trials.jsonl'),
    trialsJson: join(runDir, 'trials.json'),
    trialsCsv: join(runDir, 'trials.csv'),
    bestHyp: join(runDir, 'best_hyp.yaml'),
    progress: join(runDir, 'progress.svg'),
    summary: join(runDir, 'summary.json'),
    state: join(runDir, 'state.json'),
  };
  writeAtomic(files.trialsJson!, JSON.stringify(trials, null, 2));
  writeAtomic(files.trialsCsv!, trialsCsv(trials, a.paramNames));
  writeAtomic(
    files.bestHyp!,
    hypYaml(best.params, [
      `best of ${trials.length} trials (${cfg.strategy}, seed ${cfg.seed}): trial ${best.id}, fitness ${best.fitness?.toFixed(4)}`,
      `use with: cvopt train --hyp best_hyp.yaml --imgsz ${String(best.params.imgsz ?? cfg.imgsz)}`,
    ]),
  );
  writeAtomic(files.progress!, progressSvg(trials, cfg.generations, `cvopt tune — ${cfg.strategy}, fitness per generation`));

  let pareto: TuneResult['pareto'];
  if (cfg.strategy === 'nsga2') {
    const byId = new Map(trials.map((r) => [r.id, r]));
    // A cached repeat of a genome is the same point: list it once.
    const seen = new Set<string>();
    const front = study
      .paretoFront()
      .map((t) => byId.get(t.id)!)
      .filter((r) => r && !seen.has(r.key) && seen.add(r.key));
    const kneeTrial = study.chosenPoint();
    const kneeKey = kneeTrial ? byId.get(kneeTrial.id)?.key : undefined;
    pareto = { front, knee: front.find((r) => r.key === kneeKey) };
    files.pareto = join(runDir, 'pareto.json');
    writeAtomic(
      files.pareto,
      JSON.stringify(
        {
          objectives: cfg.sizeObjective ? ['-accuracy', 'p95_ms', 'size_mb'] : ['-accuracy', 'p95_ms'],
          note: 'accuracy = wMap50·mAP50 + wMap5095·mAP50-95; all objectives minimised; knee = the point farthest below the line joining the extremes',
          front: front.map(paretoRow),
          knee: pareto.knee ? paretoRow(pareto.knee) : null,
          bestByFitness: paretoRow(best),
        },
        null,
        2,
      ),
    );
  }

  const bestDir = join(runDir, 'best');
  mkdirSync(bestDir, { recursive: true });
  if (best.checkpoint && existsSync(best.checkpoint)) copyFileSync(best.checkpoint, join(bestDir, 'model.pt'));
  if (best.onnx && existsSync(best.onnx)) {
    copyFileSync(best.onnx, join(bestDir, 'model.onnx'));
    const manifest = join(best.onnx, '..', 'model.json');
    if (existsSync(manifest)) copyFileSync(manifest, join(bestDir, 'model.json'));
  }
  files.best = bestDir;

  const result: TuneResult = {
    runDir,
    strategy: cfg.strategy,
    generations: cfg.generations,
    population: cfg.population,
    trials,
    best,
    default: trials.find((r) => r.isDefault),
    ...(pareto ? { pareto } : {}),
    trained: a.trained,
    replayed: a.replayed,
    durationS: round3((performance.now() - a.started) / 1000),
    files,
  };
  writeAtomic(
    files.summary!,
    JSON.stringify({ strategy: cfg.strategy, best: best.id, bestFitness: best.fitness, default: result.default?.id ?? null, defaultFitness: result.default?.fitness ?? null, trials: trials.length, failed: trials.filter((r) => r.status === 'failed').length, trained: a.trained, replayed: a.replayed, durationS: result.durationS }, null, 2),
  );
  return result;
}

function paretoRow(r: TrialRecord) {
  return { id: r.id, fitness: r.fitness, accuracy: r.terms?.accuracy ?? null, map50: r.metrics?.map50 ?? null, map5095: r.metrics?.map5095 ?? null, p95Ms: r.p95Ms ?? null, sizeMb: r.sizeMb ?? null, params: r.params };
}

/** Negate for minimisation without producing -0, which JSON cannot keep: a replayed trial must equal the original. */
const minimise = (x: number): number => (x === 0 ? 0 : -x);

/** Objectives (all minimised) and constraint violations of one trial for the chosen strategy. */
function evaluationFor(cfg: RunConfig, terms: FitnessTerms, sizeMb: number): Evaluation {
  if (cfg.strategy === 'nsga2') {
    const objectives = [minimise(terms.accuracy), terms.p95Ms ?? 0];
    if (cfg.sizeObjective) objectives.push(sizeMb);
    return { objectives };
  }
  if (cfg.strategy !== 'constrained') return { objectives: [minimise(terms.fitness)] };
  const c = cfg.constraints;
  const violations: number[] = [];
  // Each violation is relative to its limit so they add up on one scale.
  if (c.maxLatencyMs !== undefined) violations.push(Math.max(0, (terms.p95Ms ?? 0) / c.maxLatencyMs - 1));
  if (c.maxSizeMb !== undefined) violations.push(Math.max(0, sizeMb / c.maxSizeMb - 1));
  if (c.minMap50 !== undefined) violations.push(Math.max(0, (c.minMap50 - terms.map50) / c.minMap50));
  return { objectives: [minimise(terms.fitness)], violations };
}

async function measureP95(onnx: string, cfg: RunConfig, runs: number): Promise<number> {
  const provider = ENGINE_PROVIDERS[cfg.engine]!;
  const manifest = readManifest(onnx);
  const engine = await createOrtEngine(onnx, manifest, { provider });
  try {
    const dims = manifest.input.shape.map((d) => (typeof d === 'number' ? d : 1));
    const input = new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.5);
    for (let i = 0; i < WARMUP_RUNS; i++) await engine.run(input, dims);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await engine.run(input, dims);
      times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    // Nearest-rank p95.
    return round3(times[Math.min(times.length - 1, Math.ceil(0.95 * times.length) - 1)]!);
  } finally {
    await engine.close();
  }
}

function readMetrics(m: unknown): { map50: number; map5095: number } {
  const o = (m ?? {}) as Record<string, unknown>;
  const map50 = Number(o.map50);
  const map5095 = Number(o.map5095 ?? o.map50_95);
  if (!Number.isFinite(map50) || !Number.isFinite(map5095)) {
    throw new CvoptError('WORKER_FAILED', `the train worker returned no validation mAP (metrics: ${JSON.stringify(m)})`, {
      hint: 'the trial needs a val split; check the worker log',
    });
  }
  return { map50, map5095 };
}

function validate(opts: TuneOptions): RunConfig {
  const field = (name: string, message: string, hint?: string): never => {
    throw new CvoptError('INVALID_ARGUMENT', message, { where: { field: name }, ...(hint ? { hint } : {}) });
  };
  if (!STRATEGY_NAMES.includes(opts.strategy)) field('strategy', `unknown strategy "${String(opts.strategy)}"`, `use one of ${STRATEGY_NAMES.join(', ')}`);
  const int = (name: string, v: number | undefined, dflt: number, min: number): number => {
    const n = v ?? dflt;
    if (!Number.isInteger(n) || n < min) field(name, `${name} must be an integer ≥ ${min}, got ${String(n)}`);
    return n;
  };
  const pos = (name: string, v: number | undefined): number | undefined => {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) field(name, `${name} must be a number > 0, got ${String(v)}`);
    return v;
  };
  const engine = opts.engine ?? 'ort-cpu';
  if (!(engine in ENGINE_PROVIDERS)) field('engine', `tuning measures latency on ort-cpu or ort-cuda, not "${engine}"`, 'pass --engine ort-cpu (or ort-cuda on a GPU machine)');
  const imgsz = int('imgsz', opts.imgsz, 640, 32);
  if (imgsz % 32 !== 0) field('imgsz', `imgsz must be a multiple of 32, got ${imgsz}`);
  const fitness: RunConfig['fitness'] = {};
  if (pos('wMap50', opts.wMap50) !== undefined) fitness.wMap50 = opts.wMap50!;
  if (pos('wMap5095', opts.wMap5095) !== undefined) fitness.wMap5095 = opts.wMap5095!;
  if (opts.latencyWeight !== undefined) {
    if (!(Number.isFinite(opts.latencyWeight) && opts.latencyWeight >= 0)) field('latencyWeight', `latency weight must be ≥ 0, got ${opts.latencyWeight}`);
    fitness.latencyWeight = opts.latencyWeight;
  }
  if (pos('targetLatencyMs', opts.targetLatencyMs) !== undefined) fitness.targetLatencyMs = opts.targetLatencyMs!;
  const constraints: TuneConstraints = {};
  const maxLatency = pos('maxLatencyMs', opts.constraints?.maxLatencyMs) ?? (opts.strategy === 'constrained' ? opts.targetLatencyMs : undefined);
  if (maxLatency !== undefined) constraints.maxLatencyMs = maxLatency;
  if (pos('maxSizeMb', opts.constraints?.maxSizeMb) !== undefined) constraints.maxSizeMb = opts.constraints!.maxSizeMb!;
  const minMap50 = opts.constraints?.minMap50;
  if (minMap50 !== undefined) {
    if (!(minMap50 > 0 && minMap50 <= 1)) field('minMap50', `minimum mAP50 must be in (0, 1], got ${minMap50}`);
    constraints.minMap50 = minMap50;
  }
  if (opts.maxParallel !== undefined) int('maxParallel', opts.maxParallel, 1, 1);
  const device = opts.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda') field('device', `device must be cpu or cuda, got "${String(device)}"`);
  return {
    model: opts.model,
    data: resolve(opts.data),
    strategy: opts.strategy,
    generations: int('generations', opts.generations, 5, 1),
    population: int('population', opts.population, 8, 2),
    epochs: int('epochs', opts.epochs, 10, 1),
    imgsz,
    batch: int('batch', opts.batch, 16, 1),
    device,
    seed: int('seed', opts.seed, 0, 0),
    engine,
    fitness,
    constraints,
    sizeObjective: Boolean(opts.sizeObjective),
    latencyRuns: int('latencyRuns', opts.latencyRuns, 30, 1),
    space: opts.spaceFile ? readSpaceFile(opts.spaceFile) : null,
  };
}

/** Parse a search-space YAML file; a validation error gets the file and the line of the offending key. */
export function readSpaceFile(file: string): unknown {
  if (!existsSync(file)) throw new CvoptError('NOT_FOUND', `search space file ${file} does not exist`, { where: { file }, hint: 'check the --space path' });
  const text = readFileSync(file, 'utf8');
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new CvoptError('INVALID_CONFIG', `${file} is not valid YAML: ${e.message.split('\n')[0]}`, {
      where: { file, ...(e.linePos?.[0] ? { line: e.linePos[0].line } : {}) },
      hint: 'fix the YAML syntax at that line',
    });
  }
  const data = parseYaml(text) as unknown;
  try {
    tuneSpace(640, data);
  } catch (e) {
    const err = toCvoptError(e);
    if (err.code !== 'INVALID_CONFIG') throw err;
    const fieldPath = err.where?.field;
    let line: number | undefined;
    if (fieldPath && isMap(doc.contents)) {
      // Walk as deep as the path goes; the deepest key found gives the line.
      let node: unknown = doc.contents;
      for (const part of fieldPath.split('.')) {
        if (!isMap(node)) break;
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === part);
        if (!pair || !isPair(pair)) break;
        const k = pair.key as { range?: [number, number, number] };
        if (k.range) line = lineCounter.linePos(k.range[0]).line;
        node = pair.value;
      }
    }
    throw new CvoptError('INVALID_CONFIG', err.message, { where: { file, ...(line !== undefined ? { line } : {}), ...(fieldPath ? { field: fieldPath } : {}) }, ...(err.hint ? { hint: err.hint } : {}) });
  }
  return data;
}

/** Finished trials from the log; a torn last line (a crash mid-write) is ignored and that trial reruns. */
function readLog(file: string): Map<number, TrialRecord> {
  const out = new Map<number, TrialRecord>();
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as TrialRecord;
      if (r.type === 'trial' && Number.isInteger(r.id)) out.set(r.id, r);
    } catch {
      // torn write
    }
  }
  return out;
}

/** Append-only JSONL, fsync'd per record so a crash loses at most the trial in flight. */
class TrialLog {
  constructor(private readonly file: string) {
    // Drop a torn tail so the next record starts on its own line.
    if (existsSync(file)) {
      const text = readFileSync(file, 'utf8');
      if (text.length && !text.endsWith('\n')) writeAtomic(file, text.slice(0, text.lastIndexOf('\n') + 1));
    }
  }

  append(r: TrialRecord): void {
    const fd = openSync(this.file, 'a');
    try {
      writeSync(fd, `${JSON.stringify(r)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Trials shared across runs, one JSON file per trial keyed by the genome and everything else that decides
 * a training's outcome; the fitness settings are not part of the key because fitness is recomputed on reuse.
 */
class TrialCache {
  private readonly dir: string;
  private readonly salt: string;
  constructor(dir: string, cfg: RunConfig) {
    this.dir = resolve(dir);
    mkdirSync(this.dir, { recursive: true });
    const model = existsSync(cfg.model) ? `${resolve(cfg.model)}:${statSync(cfg.model).size}:${statSync(cfg.model).mtimeMs}` : cfg.model;
    this.salt = JSON.stringify([model, cfg.data, cfg.epochs, cfg.batch, cfg.device, cfg.seed, cfg.engine, cfg.latencyRuns]);
  }

  private file(key: string): string {
    return join(this.dir, `${createHash('sha256').update(this.salt).update(key).digest('hex').slice(0, 24)}.json`);
  }

  get(key: string): TrialRecord | undefined {
    const f = this.file(key);
    if (!existsSync(f)) return undefined;
    try {
      const r = JSON.parse(readFileSync(f, 'utf8')) as TrialRecord;
      return r.key === key && r.status === 'ok' ? r : undefined;
    } catch {
      return undefined;
    }
  }

  put(key: string, r: TrialRecord): void {
    writeAtomic(this.file(key), JSON.stringify(r));
  }
}

/** Serialises latency measurements so parallel trainings never share the CPU with a timing run of another trial. */
class Lock {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/** Run `fn` over `items` with at most `limit` in flight; results keep the items' order. */
async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return results;
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

function sum(v: number[] | undefined): number {
  return (v ?? []).reduce((s, x) => s + x, 0);
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
