import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CvoptError, Rng, serializeError, toCvoptError } from '@cvopt/core';
import { loadDetectionDataset } from '@cvopt/datasets';
import { Study, deploymentFitness, genomeKey, tuneSpace, type Evaluation, type FitnessTerms, type Genome, type StudyState, type Trial } from '@cvopt/optimizer';
import { exportModel } from '../export.js';
import { trainModel } from '../train.js';
import { validate } from './config.js';
import { Lock, measureP95 } from './latency.js';
import { finish, round3 } from './report.js';
import { readLog, TrialCache, TrialLog, writeAtomic } from './store.js';
import type { RunConfig, TrialRecord, TuneEvent, TuneOptions, TuneResult } from './types.js';

export { readSpaceFile } from './config.js';
export type * from './types.js';

/**
 * The tune job: a genetic search over training hyperparameters where each trial trains the model through the
 * Python worker, exports it to ONNX, and measures p95 latency on the target engine. Every finished trial is
 * appended (fsync'd) to trials.jsonl and the optimiser state is saved after each generation, so `resume`
 * replays finished trials instead of retraining them and reaches the same result as an uninterrupted run.
 */

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
      const p95Ms = await latencyLock.run(() => measureP95(onnx, cfg, cfg.latencyRuns, opts.signal));
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
