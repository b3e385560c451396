import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CvoptError } from '@cvopt/core';
import type { Study } from '@cvopt/optimizer';
import { hypYaml, progressSvg, trialsCsv } from './render.js';
import { writeAtomic } from './store.js';
import type { RunConfig, TrialRecord, TuneResult } from './types.js';

/** The end of a tune run: pick the best trial (the constrained rule), write every result file, copy best/. */

export function finish(a: { runDir: string; cfg: RunConfig; study: Study; trials: TrialRecord[]; trained: number; replayed: number; started: number; paramNames: string[] }): TuneResult {
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

function sum(v: number[] | undefined): number {
  return (v ?? []).reduce((s, x) => s + x, 0);
}

export function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
