import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CvoptError } from '@cvopt/core';
import { synthDetection } from '@cvopt/datasets';
import { STRATEGY_NAMES, type StrategyName } from '@cvopt/optimizer';
import { readSpaceFile, tune, type TrialRecord, type TuneOptions, type TuneResult } from '../src/index.js';

// End to end through the real Python trainer, ONNX export and ONNX Runtime: the smallest preset, 64 px, one
// epoch on 40 synthetic images, population 3 for 2 generations, two trials at a time. The five runs share a
// trial cache, so generation 1 (the same genomes for every strategy with one seed) is trained once.
let root: string;
let data: string;
const runs = new Map<StrategyName, TuneResult>();

const SMALL: Omit<TuneOptions, 'out' | 'strategy'> = {
  model: 'yolov8p',
  data: '',
  generations: 2,
  population: 3,
  epochs: 1,
  imgsz: 64,
  batch: 8,
  seed: 3,
  latencyRuns: 5,
  // A tight target makes the latency penalty differ between trials, so fitness is not just mAP after one epoch.
  targetLatencyMs: 2,
  maxParallel: 2,
};

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cvopt-tune-'));
  const synth = await synthDetection({ out: join(root, 'data'), images: 40, imgsz: 64, seed: 1, classes: 2 });
  data = synth.dataYaml;
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

function lines(file: string): TrialRecord[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TrialRecord);
}

describe('cvopt tune end to end (real trainer, export and ONNX Runtime)', () => {
  it('runs all five strategies; the best is never worse than the default', async () => {
    for (const strategy of STRATEGY_NAMES) {
      const t0 = Date.now();
      const opts: TuneOptions = { ...SMALL, data, strategy, out: join(root, strategy), cacheDir: join(root, 'trial-cache') };
      // A latency limit that binds on a busy CPU, so feasibility rules (not only the objective) decide.
      if (strategy === 'constrained') opts.constraints = { maxLatencyMs: 25, maxSizeMb: 100 };
      const r = await tune(opts);
      runs.set(strategy, r);
      // Wall time is reported, never asserted.
      console.log(`tune ${strategy}: ${r.trials.length} trials (${r.trained} trained) in ${((Date.now() - t0) / 1000).toFixed(1)} s; best ${r.best.fitness?.toFixed(4)} vs default ${r.default?.fitness?.toFixed(4)}`);

      expect(r.trials).toHaveLength(6);
      const gen1 = r.trials.filter((t) => t.generation === 1);
      expect(gen1).toHaveLength(3);
      if (strategy !== STRATEGY_NAMES[0]) {
        // Reused from the first run, with fitness recomputed under this run's settings.
        for (const t of gen1) expect(t).toMatchObject({ status: 'cached', cachedFromRun: runs.get(STRATEGY_NAMES[0])!.runDir });
        expect(gen1.map((t) => t.params)).toEqual(runs.get(STRATEGY_NAMES[0])!.trials.slice(0, 3).map((t) => t.params));
      }
      const dflt = r.default!;
      expect(dflt.generation).toBe(1);
      expect(dflt.params).toMatchObject({ lr0: 0.01, momentum: 0.937, mosaic: 1, imgsz: 64 });
      expect(['ok', 'cached']).toContain(dflt.status);
      const violation = (t: TrialRecord) => (t.violations ?? []).reduce((a, b) => a + b, 0);
      if (violation(dflt) === 0) expect(r.best.fitness!).toBeGreaterThanOrEqual(dflt.fitness!);
      // Under Deb's rules an infeasible default loses to any feasible trial, whatever its fitness.
      else expect(violation(r.best)).toBeLessThanOrEqual(violation(dflt));
      for (const t of r.trials.filter((x) => x.status !== 'failed')) {
        expect(t.terms!.fitness).toBeCloseTo(0.7 * t.metrics!.map50 + 0.3 * t.metrics!.map5095 - t.terms!.latencyPenalty, 12);
        expect(t.terms!.latencyPenalty).toBeCloseTo(Math.max(0, t.p95Ms! / 2 - 1), 9);
        expect(t.p95Ms!).toBeGreaterThan(0);
        expect(t.metrics!.map50).toBeGreaterThanOrEqual(0);
      }
      // Every trial persisted (in the order they finished), and the summary files written.
      expect(lines(join(r.runDir, 'trials.jsonl')).map((t) => t.id).sort()).toEqual([0, 1, 2, 3, 4, 5]);
      const hyp = parseYaml(readFileSync(r.files.bestHyp!, 'utf8')) as Record<string, number>;
      expect(hyp.lr0).toBe(r.best.params.lr0);
      expect(hyp).not.toHaveProperty('imgsz');
      expect(readFileSync(r.files.trialsCsv!, 'utf8').split('\n')[0]).toMatch(/^id,generation,status,default,fitness,map50/);
      expect(readFileSync(r.files.progress!, 'utf8')).toMatch(/^<svg[^]*<polyline[^]*<\/svg>\n$/);
      expect(existsSync(join(r.runDir, 'best', 'model.onnx'))).toBe(true);
      expect(existsSync(join(r.runDir, 'best', 'model.json'))).toBe(true);
      if (strategy === 'nsga2') {
        const pareto = JSON.parse(readFileSync(r.files.pareto!, 'utf8')) as { front: { id: number }[]; knee: { id: number } | null };
        expect(pareto.front.length).toBeGreaterThan(0);
        expect(pareto.front.map((p) => p.id)).toContain(pareto.knee!.id);
      }
      if (strategy === 'constrained') for (const t of r.trials.filter((x) => x.status === 'ok')) expect(t.violations).toHaveLength(2);
    }
  }, 600_000);

  it('resumes after a crash by replaying logged trials, proposing exactly the same genomes', async () => {
    const original = runs.get('elitist');
    expect(original, 'the five-strategy test must run first').toBeDefined();
    const dir = join(root, 'elitist-crash');
    cpSync(original!.runDir, dir, { recursive: true });
    // A crash during generation 2: trials 0-3 are in the log (plus a torn half line), the optimiser state is gone.
    const log = readFileSync(join(dir, 'trials.jsonl'), 'utf8').split('\n').filter(Boolean);
    const kept = log.filter((l) => (JSON.parse(l) as TrialRecord).id < 4);
    const torn = log.find((l) => (JSON.parse(l) as TrialRecord).id === 4)!;
    writeFileSync(join(dir, 'trials.jsonl'), `${kept.join('\n')}\n${torn.slice(0, 40)}`);
    rmSync(join(dir, 'state.json'));

    const r = await tune({ ...SMALL, data, strategy: 'elitist', out: dir, resume: true });
    expect(r.replayed).toBe(4);
    expect(r.trials.map((t) => t.params)).toEqual(original!.trials.map((t) => t.params));
    expect(r.trials.slice(0, 4)).toEqual(original!.trials.slice(0, 4));
    expect(lines(join(dir, 'trials.jsonl')).map((t) => t.id).sort()).toEqual([0, 1, 2, 3, 4, 5]);

    // Resuming a finished run trains nothing and gives the same answer.
    const again = await tune({ ...SMALL, data, strategy: 'elitist', out: dir, resume: true });
    expect(again.trained).toBe(0);
    expect(again.best.id).toBe(r.best.id);
  }, 300_000);

  it('stops with TRIALS_ALL_FAILED when every first-generation trial fails, recording each error', async () => {
    const out = join(root, 'all-failed');
    const err = await tune({ ...SMALL, data, strategy: 'elitist', model: join(root, 'no-such-model.pt'), out }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CvoptError);
    expect((err as CvoptError).code).toBe('TRIALS_ALL_FAILED');
    expect((err as CvoptError).hint).toMatch(/cvopt train/);
    const recs = lines(join(out, 'trials.jsonl'));
    expect(recs).toHaveLength(3);
    for (const t of recs) {
      expect(t.status).toBe('failed');
      expect(t.fitness).toBeNull();
      expect(t.error?.code).toBe('NOT_FOUND');
    }
  }, 120_000);
});

describe('tune input validation', () => {
  it('refuses to overwrite a run without --resume, and a resume with changed settings', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cvopt-tune-v-'));
    try {
      writeFileSync(join(out, 'trials.jsonl'), '{"type":"trial","id":0}\n');
      const e1 = await tune({ ...SMALL, data: data ?? '.', strategy: 'elitist', out }).catch((e: unknown) => e);
      expect((e1 as CvoptError).code).toBe('CONFLICT');
      expect((e1 as CvoptError).hint).toMatch(/--resume/);
      writeFileSync(join(out, 'run.json'), JSON.stringify({ strategy: 'nsga2' }));
      const e2 = await tune({ ...SMALL, data: data ?? '.', strategy: 'elitist', out, resume: true }).catch((e: unknown) => e);
      expect((e2 as CvoptError).code).toBe('CONFLICT');
      expect((e2 as CvoptError).message).toMatch(/strategy/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('rejects bad flags with the field', async () => {
    const base = { ...SMALL, data: '.', out: join(tmpdir(), 'never-written') };
    const err = async (o: Partial<TuneOptions>) => (await tune({ ...base, strategy: 'elitist', ...o }).catch((e: unknown) => e)) as CvoptError;
    expect((await err({ imgsz: 100 })).where?.field).toBe('imgsz');
    expect((await err({ population: 1 })).where?.field).toBe('population');
    expect((await err({ engine: 'tensorrt' })).where?.field).toBe('engine');
    expect((await err({ strategy: 'greedy' as StrategyName })).where?.field).toBe('strategy');
    expect((await err({ targetLatencyMs: -3 })).where?.field).toBe('targetLatencyMs');
  });

  it('points at the file, line and field of a bad search space', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cvopt-space-'));
    try {
      const file = join(dir, 'space.yaml');
      writeFileSync(file, 'lr0:\n  low: 0.0001\n  high: 0.01\nmosaic: 0\nbox:\n  low: 30\n  high: 3\n');
      const e = (() => {
        try {
          readSpaceFile(file);
        } catch (x) {
          return x as CvoptError;
        }
        throw new Error('expected an error');
      })();
      expect(e.code).toBe('INVALID_CONFIG');
      expect(e.where).toEqual({ file, line: 6, field: 'box.low' });
      writeFileSync(file, 'lr0: {low: 1e-4, high: 1e-2}\nimgsz: {choices: [32, 64]}\n');
      expect(readSpaceFile(file)).toEqual({ lr0: { low: 1e-4, high: 1e-2 }, imgsz: { choices: [32, 64] } });
      writeFileSync(file, 'momentom: 0.9\n');
      expect(() => readSpaceFile(file)).toThrow(/unknown hyperparameter "momentom"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
