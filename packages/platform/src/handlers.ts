import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  BenchPayloadSchema,
  BenchResultSchema,
  CheckPayloadSchema,
  CheckResultSchema,
  EvalPayloadSchema,
  EvalResultSchema,
  ExportPayloadSchema,
  ExportResultSchema,
  PackagePayloadSchema,
  PackageResultSchema,
  QUEUE_OF,
  QuantizePayloadSchema,
  QuantizeResultSchema,
  QuickstartPayloadSchema,
  QuickstartResultSchema,
  SelectPayloadSchema,
  SelectResultSchema,
  TrainPayloadSchema,
  TrainResultSchema,
  TunePayloadSchema,
  TuneResultSchema,
  type Decision,
  type JobContext,
  type JobHandler,
  type JobKind,
} from '@cvopt/core';
import { selectEngine, writeDecision } from '@cvopt/bench';
import { DEFAULT_LIMITS, packageArtifact, type PackageResult } from '@cvopt/packager';
import { checkOnnx, quantizeOnnx, type CheckReport, type QuantizeReport } from '@cvopt/onnx';
import { benchModel, readBenchmarkReport, type BenchModelResult } from './jobs/bench.js';
import { evaluateModel, type EvalResult } from './jobs/eval.js';
import { evalTrackJob } from './jobs/eval-track.js';
import { exportModel, type ExportResult } from './jobs/export.js';
import { predictJob } from './jobs/predict.js';
import { quickstart, type QuickstartResult } from './jobs/quickstart.js';
import { trainModel, type TrainResult } from './jobs/train.js';
import { tune } from './jobs/tune/index.js';
import type { TuneEvent, TuneResult } from './jobs/tune/types.js';

/**
 * Every platform job as a JobHandler (core job-contract.ts): payload and result schemas from core, run(payload, ctx).
 * The CLI runs them in-process with runLocal; the job system runs them from its queues. A handler reports through
 * ctx.progress / ctx.log and stops on ctx.signal.
 */

type Z<S> = S extends { _zod: { output: infer O } } ? O : never;

function handler<K extends JobKind, P, R>(h: Omit<JobHandler<P, R>, 'queue' | 'kind'> & { kind: K }): JobHandler<P, R> {
  return { ...h, queue: QUEUE_OF[h.kind] };
}

/** Worker progress and metric messages → the job context. */
function workerHooks(ctx: JobContext) {
  return {
    signal: ctx.signal,
    onProgress: (m: { stage: string; step: number; total: number; message?: string | undefined }) => ctx.progress({ stage: m.stage, step: m.step, total: m.total, ...(m.message ? { message: m.message } : {}) }),
    onMetric: (m: { epoch?: number | undefined; values: Record<string, number | null> }) => {
      const metrics = Object.fromEntries(Object.entries(m.values).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1])));
      ctx.progress({ stage: 'metric', step: m.epoch ?? 0, total: 0, metrics });
    },
    onLog: (line: string) => ctx.log('debug', line),
  };
}

export const trainHandler = handler<'train', Z<typeof TrainPayloadSchema>, TrainResult>({
  kind: 'train',
  payload: TrainPayloadSchema,
  result: TrainResultSchema as never,
  summary: 'train a YOLOv8-architecture detector or classifier in the PyTorch worker',
  gpuNeed: (p) => (p.device === 'cuda' ? { vramMb: p.vramMb ?? 4096 } : undefined),
  run: (p, ctx) => trainModel(p, workerHooks(ctx)),
});

export const exportHandler = handler<'export', Z<typeof ExportPayloadSchema>, ExportResult>({
  kind: 'export',
  payload: ExportPayloadSchema,
  result: ExportResultSchema as never,
  summary: 'export a checkpoint to ONNX + model.json, checked against PyTorch',
  run: (p, ctx) => exportModel(p, workerHooks(ctx)),
});

export const evalHandler = handler<'eval', Z<typeof EvalPayloadSchema>, EvalResult>({
  kind: 'eval',
  payload: EvalPayloadSchema,
  result: EvalResultSchema as never,
  summary: 'accuracy of a model on one engine over a dataset, under the recorded protocol',
  run: (p, ctx) =>
    evaluateModel({
      ...p,
      onProgress: (done, total) => ctx.progress({ stage: 'evaluate', step: done, total }),
      onStage: (m) => ctx.log('info', m),
      signal: ctx.signal,
    } as Parameters<typeof evaluateModel>[0]),
});

export const benchHandler = handler<'bench', Z<typeof BenchPayloadSchema>, BenchModelResult>({
  kind: 'bench',
  payload: BenchPayloadSchema,
  result: BenchResultSchema as never,
  summary: 'benchmark a model on every engine this machine has; writes report.json, report.md, chart.svg',
  run: (p, ctx) =>
    benchModel({ ...p, signal: ctx.signal } as Parameters<typeof benchModel>[0], {
      onStage: (m) => ctx.log('info', m),
      onEngine: (e) => ctx.progress({ stage: e.stage === 'start' ? `${e.engine}…` : `${e.engine} ${e.status ?? ''}`.trim(), step: e.index, total: e.total }),
    }),
});

export const tuneHandler = handler<'tune', Z<typeof TunePayloadSchema>, TuneResult>({
  kind: 'tune',
  payload: TunePayloadSchema,
  result: TuneResultSchema as never,
  summary: 'genetic search over training hyperparameters with a deployment-aware fitness',
  gpuNeed: (p) => (p.device === 'cuda' ? { vramMb: 4096 } : undefined),
  run: (p, ctx) =>
    tune({
      ...(p as Parameters<typeof tune>[0]),
      signal: ctx.signal,
      onEvent: (e) => tuneEventToContext(e, ctx),
    }),
});

const num = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : Math.abs(x) >= 100 ? x.toFixed(1) : x.toFixed(4));

/** Tune events as a job reports them: training progress, and one info line per finished trial and generation. */
function tuneEventToContext(e: TuneEvent, ctx: JobContext): void {
  if (e.type === 'trial-start') ctx.log('debug', `trial ${e.trial} (gen ${e.generation}) starts: ${JSON.stringify(e.params)}`);
  else if (e.type === 'trial-progress') ctx.progress({ stage: `trial ${e.trial} ${e.stage}`, step: e.step, total: e.total, ...(e.message ? { message: e.message } : {}) });
  else if (e.type === 'trial-end') {
    const r = e.record;
    const what =
      r.status === 'failed'
        ? `FAILED ${r.error?.code}: ${r.error?.message}`
        : `fitness ${num(r.fitness)} (mAP50 ${num(r.metrics?.map50)}, p95 ${num(r.p95Ms)} ms)${r.status === 'cached' ? ` = trial ${r.cachedFrom ?? r.cachedFromRun}` : ''}`;
    ctx.log('info', `trial ${r.id} (gen ${r.generation})${e.replayed ? ' replayed from the log:' : ''} ${what}`);
  } else {
    ctx.progress({ stage: 'generation', step: e.generation, total: e.generations, ...(e.bestFitness !== null ? { metrics: { bestFitness: e.bestFitness } } : {}) });
    ctx.log('info', `generation ${e.generation}/${e.generations}: best this generation ${num(e.generationBest)}, best so far ${num(e.bestFitness)}${e.failed ? `, ${e.failed} failed` : ''}`);
  }
}

export const quantizeHandler = handler<'quantize', Z<typeof QuantizePayloadSchema>, QuantizeReport>({
  kind: 'quantize',
  payload: QuantizePayloadSchema,
  result: QuantizeResultSchema as never,
  summary: 'static INT8 QDQ quantization (or FP16) with the accuracy guard',
  run: (p, ctx) => {
    const { model, out, evalImages, maxDrop, fp16, intraOpNumThreads, protocol, ...rest } = p;
    return quantizeOnnx(model, out, {
      ...rest,
      fp16,
      ...(evalImages !== undefined ? { evalImages } : {}),
      ...(maxDrop !== undefined ? { maxDrop } : {}),
      ...(intraOpNumThreads ? { intraOpNumThreads } : {}),
      ...(protocol ? { protocol: protocol as never } : {}),
      onProgress: (stage, done, total) => ctx.progress({ stage, step: done, total }),
    });
  },
});

export const checkHandler = handler<'check', Z<typeof CheckPayloadSchema>, CheckReport>({
  kind: 'check',
  payload: CheckPayloadSchema,
  result: CheckResultSchema as never,
  summary: 'operator report per engine target: every blocker at once',
  run: async (p) => {
    const report = await checkOnnx(p.model, { ...(p.targets ? { targets: p.targets } : {}), session: p.session });
    if (p.out) {
      mkdirSync(dirname(p.out), { recursive: true });
      writeFileSync(p.out, `${JSON.stringify(report, null, 2)}\n`);
    }
    return report;
  },
});

/** The decision as written; `file` is decision.json, or decision.rejected.json beside it when nothing won. */
export type SelectResult = Decision & { file: string };

export const selectHandler = handler<'select', Z<typeof SelectPayloadSchema>, SelectResult>({
  kind: 'select',
  payload: SelectPayloadSchema,
  result: SelectResultSchema as never,
  summary: 'pick the fastest engine of a benchmark report that meets the constraints; writes decision.json and copies the winner\'s model beside it',
  run: async (p) => {
    const report = readBenchmarkReport(p.report);
    const out = p.out ? resolve(p.out) : join(dirname(resolve(p.report)), 'decision.json');
    // The winner's model is copied beside the decision; a selection without a winner goes to
    // decision.rejected.json and never replaces a good decision.json.
    const { decision, file } = writeDecision(report, resolve(p.report), selectEngine(report, p.constraints), out);
    return { ...decision, file };
  },
});

export const quickstartHandler = handler<'quickstart', Z<typeof QuickstartPayloadSchema>, QuickstartResult>({
  kind: 'quickstart',
  payload: QuickstartPayloadSchema,
  result: QuickstartResultSchema as never,
  summary: 'the main job end to end on a synthetic dataset: train, export, eval, bench, select',
  run: (p, ctx) =>
    quickstart({ ...(p as Parameters<typeof quickstart>[0]), signal: ctx.signal }, {
      onStep: (step, total, title) => ctx.progress({ stage: 'step', step, total, message: title }),
      onProgress: (done, total, message) => ctx.progress({ stage: 'detail', step: done, total, message }),
    }),
});

export type PackageJobResult = PackageResult & { engine: string };

export const packageHandler = handler<'package', Z<typeof PackagePayloadSchema>, PackageJobResult>({
  kind: 'package',
  payload: PackagePayloadSchema,
  result: PackageResultSchema as never,
  summary: 'the deployable artifact of a selection (or of a model on an engine): runtime bundle, config, Dockerfiles, compose, Kubernetes, MANIFEST.json, and its .tar.gz',
  run: async (p, ctx) => {
    ctx.progress({ stage: 'package', step: 0, total: 1, message: 'bundling the runtime and the model' });
    const r = await packageArtifact({
      ...(p.decision ? { decision: p.decision } : {}),
      ...(p.model ? { model: p.model } : {}),
      ...(p.engine ? { engine: p.engine } : {}),
      ...(p.name ? { name: p.name } : {}),
      ...(p.limits ? { limits: { ...DEFAULT_LIMITS, ...(p.limits.cpus !== undefined ? { cpus: p.limits.cpus } : {}), ...(p.limits.memoryMb !== undefined ? { memoryMb: p.limits.memoryMb } : {}) } } : {}),
      out: p.out,
    });
    ctx.progress({ stage: 'package', step: 1, total: 1, message: r.dir });
    return { ...r, engine: r.manifest.engine };
  },
});

/** Every platform handler by kind: what the CLI calls and what `cvopt worker` hands the job system. */
export const PLATFORM_HANDLERS = {
  train: trainHandler,
  tune: tuneHandler,
  export: exportHandler,
  eval: evalHandler,
  bench: benchHandler,
  quantize: quantizeHandler,
  check: checkHandler,
  select: selectHandler,
  quickstart: quickstartHandler,
  package: packageHandler,
  predict: predictJob,
  'eval-track': evalTrackJob,
} as const satisfies Record<JobKind, JobHandler<any, unknown>>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The registry as the job system takes it. */
export const platformHandlerRegistry = (): ReadonlyMap<string, JobHandler<any, any>> => new Map(Object.entries(PLATFORM_HANDLERS)); // eslint-disable-line @typescript-eslint/no-explicit-any
