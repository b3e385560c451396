import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BenchmarkReportSchema,
  CvoptError,
  DEFAULT_EVAL_PROTOCOL,
  ENGINE_IDS,
  parseWith,
  type BenchmarkReport,
  type EngineId,
  type EngineResult,
  type Task,
} from '@cvopt/core';
import { SERVED_SPINNING } from '@cvopt/engines';
import { environmentFingerprint } from './environment.js';
import { sampleGpu, watchTree } from './supervise.js';
import type { BenchTarget, ChildJob, ChildResult, EngineLimits, MeasureSettings, ReadyTarget } from './types.js';

export const DEFAULT_LIMITS: EngineLimits = { timeS: 900, rssMb: 8192 };
export const DEFAULT_SETTINGS: Omit<MeasureSettings, 'images'> = { warmup: 5, iters: 50, minTimeMs: 0, batchSizes: [1, 2, 4, 8], threads: 0, repeatsIfUnstable: 2 };

export interface RunBenchmarkOptions {
  model: { path: string; sha256: string; task: Task; name?: string };
  dataset?: { path: string };
  targets: BenchTarget[];
  settings: Partial<MeasureSettings> & Pick<MeasureSettings, 'images'>;
  /** Limits for every engine, and overrides per engine. */
  limits?: Partial<EngineLimits>;
  engineLimits?: Partial<Record<EngineId, Partial<EngineLimits>>>;
  /** The FP32 reference for accuracy deltas (default ort-cpu, else pytorch). */
  baseline?: EngineId;
  /** Extra entries for the environment fingerprint (ORT, PyTorch, TensorRT, ffmpeg versions…). */
  versions?: Record<string, string>;
  /** Anything else worth recording with the run. */
  extraSettings?: Record<string, unknown>;
}

export interface BenchHooks {
  onProgress?: (e: { engine: EngineId; stage: 'start' | 'done'; index: number; total: number; status?: EngineResult['status'] }) => void;
  signal?: AbortSignal;
}

/** The compiled child entry: beside this file in dist, or dist/child.js when running from source (tests). */
export function childScript(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts') ? resolve(dirname(here), '../dist/child.js') : join(dirname(here), 'child.js');
}

const tail = (s: string, lines = 6) => s.trim().split('\n').slice(-lines).join(' | ').slice(-1200);

/** Run one engine in its own process under its limits; never throws for the engine's own failures. */
export async function runEngineChild(target: ReadyTarget, settings: MeasureSettings, limits: EngineLimits, signal?: AbortSignal): Promise<EngineResult> {
  const script = childScript();
  if (!existsSync(script)) {
    throw new CvoptError('NOT_READY', `the benchmark child ${script} is not built`, { hint: 'run `npx tsc -b packages/bench` (npm run build)' });
  }
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-bench-'));
  const job: ChildJob = { target, settings, resultFile: join(dir, 'result.json') };
  writeFileSync(join(dir, 'job.json'), JSON.stringify(job));
  try {
    const child = spawn(process.execPath, [script, join(dir, 'job.json')], { stdio: ['ignore', 'ignore', 'pipe'], env: process.env });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-8000);
    });
    const watch = watchTree(child, limits);
    const gpu = sampleGpu(target.runtime === 'pytorch' ? target.device === 'cuda' : target.provider !== 'cpu');
    const onAbort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    const exit = await new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((res) => child.once('close', (code, sig) => res({ code, sig })));
    signal?.removeEventListener('abort', onAbort);
    const tree = watch.stop();
    const g = gpu.stop();
    if (signal?.aborted) throw new CvoptError('CANCELLED', 'the benchmark was cancelled');
    const result: ChildResult | undefined = existsSync(job.resultFile) ? (JSON.parse(readFileSync(job.resultFile, 'utf8')) as ChildResult) : undefined;
    if (tree.killedFor || !result) {
      const how = exit.sig ? `was killed by ${exit.sig}` : `exited with code ${exit.code}`;
      const why = tree.killedFor ? ` because ${tree.killedFor}` : ' without a result';
      const err = stderr.trim() ? `; stderr: ${tail(stderr)}` : '';
      return { engine: target.engine, status: 'failed', error: { code: 'ENGINE_FAILED', message: `the ${target.engine} benchmark process ${how}${why}${err}` } };
    }
    if (!result.ok) return { engine: target.engine, status: 'failed', error: { code: result.code, message: result.message } };
    const f = result.figures;
    return {
      engine: target.engine,
      status: 'ok',
      model: result.model,
      figures: {
        ...f,
        resources: {
          cpuPercent: f.resources.cpuPercent,
          // The tree's sampled peak covers the Python worker; the child's own maxRSS catches spikes between samples.
          peakRssMb: Math.max(f.resources.peakRssMb, tree.peakRssMb),
          ...(g.utilPercent !== undefined ? { gpuUtilPercent: g.utilPercent } : {}),
          ...(g.memMb !== undefined ? { gpuMemMb: g.memMb } : {}),
        },
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Record the exact file an ONNX Runtime engine ran (for TensorRT: the ONNX its plan is built from). */
function withModelFile(r: EngineResult, t: ReadyTarget, s: MeasureSettings): EngineResult {
  if (r.status !== 'ok' || t.runtime !== 'onnxruntime') return r;
  const path = t.packageSource?.onnx ?? t.model;
  // Named as the runtime config names them: the service that serves this file with them gets these figures.
  const settings = { provider: t.provider, intraOpThreads: s.threads, intraOpSpinning: s.spinning ?? SERVED_SPINNING, ...t.packageSource?.settings };
  const tensorrt = t.packageSource?.tensorrt;
  return { ...r, modelFile: { path, sha256: createHash('sha256').update(readFileSync(path)).digest('hex'), manifest: t.manifest, settings, ...(tensorrt ? { tensorrt } : {}) } };
}

function checkSettings(s: MeasureSettings, limits: EngineLimits): void {
  const int = (field: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new CvoptError('INVALID_ARGUMENT', `${field} must be an integer ≥ ${min}, got ${v}`, { where: { field } });
  };
  int('warmup', s.warmup, 0);
  int('iters', s.iters, 1);
  int('threads', s.threads, 0);
  int('repeatsIfUnstable', s.repeatsIfUnstable, 0);
  if (!(s.minTimeMs >= 0)) throw new CvoptError('INVALID_ARGUMENT', `minTimeMs must be ≥ 0, got ${s.minTimeMs}`, { where: { field: 'minTimeMs' } });
  if (s.batchSizes.length === 0) throw new CvoptError('INVALID_ARGUMENT', 'batchSizes must list at least one batch size', { where: { field: 'batchSizes' } });
  for (const b of s.batchSizes) int('batchSizes', b, 1);
  if (s.video) int('video.maxFrames', s.video.maxFrames, 1);
  if (!(limits.timeS > 0) || !(limits.rssMb > 0)) throw new CvoptError('INVALID_ARGUMENT', `engine limits must be positive, got ${limits.timeS} s and ${limits.rssMb} MB`, { where: { field: 'limits' } });
}

/**
 * Benchmark every target, each in its own child process, and return the report (BenchmarkReportSchema). A target
 * that is unavailable or failed to prepare is reported as such; a child that crashes, is killed or aborts makes
 * that engine `failed` and the run goes on. Accuracy deltas are against the baseline engine.
 */
export async function runBenchmark(opts: RunBenchmarkOptions, hooks: BenchHooks = {}): Promise<BenchmarkReport> {
  const settings: MeasureSettings = { ...DEFAULT_SETTINGS, ...opts.settings };
  const limits: EngineLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  checkSettings(settings, limits);
  const seen = new Set<EngineId>();
  for (const t of opts.targets) {
    if (seen.has(t.engine)) throw new CvoptError('INVALID_ARGUMENT', `engine ${t.engine} is listed twice`, { where: { field: 'targets' } });
    seen.add(t.engine);
  }
  // Fixed order (the selection tie-break order reversed: CPU first), so reports of the same run always read alike.
  const targets = [...opts.targets].sort((a, b) => ENGINE_IDS.indexOf(b.engine) - ENGINE_IDS.indexOf(a.engine));
  const results: EngineResult[] = [];
  for (const [i, t] of targets.entries()) {
    hooks.onProgress?.({ engine: t.engine, stage: 'start', index: i, total: targets.length });
    let r: EngineResult;
    if (t.status === 'unavailable') r = { engine: t.engine, status: 'unavailable', reason: t.reason };
    else if (t.status === 'failed') r = { engine: t.engine, status: 'failed', error: t.error };
    else r = withModelFile(await runEngineChild(t, settings, { ...limits, ...opts.engineLimits?.[t.engine] }, hooks.signal), t, settings);
    results.push(r);
    hooks.onProgress?.({ engine: t.engine, stage: 'done', index: i + 1, total: targets.length, status: r.status });
  }

  const baseline = pickBaseline(results, opts.baseline);
  if (baseline) addDeltas(results, baseline);
  const report = {
    schemaVersion: 1,
    createdAt: new Date().toISOString(),
    model: opts.model,
    ...(opts.dataset ? { dataset: { path: opts.dataset.path, images: settings.images.length } } : {}),
    settings: {
      warmup: settings.warmup,
      iters: settings.iters,
      minTimeMs: settings.minTimeMs,
      batchSizes: settings.batchSizes,
      threads: settings.threads,
      intraOpSpinning: settings.spinning ?? SERVED_SPINNING,
      repeatsIfUnstable: settings.repeatsIfUnstable,
      // Accuracy figures of every engine follow this protocol (also in each engine's accuracy.protocol).
      evalProtocol: settings.protocol ?? DEFAULT_EVAL_PROTOCOL,
      ...(settings.video ? { video: settings.video } : {}),
      limits,
      ...opts.extraSettings,
    },
    environment: environmentFingerprint(opts.versions ?? {}),
    ...(baseline ? { baseline } : {}),
    engines: results,
  };
  return parseWith(BenchmarkReportSchema, report, { what: 'benchmark report', code: 'INTERNAL' });
}

type Ok = Extract<EngineResult, { status: 'ok' }>;

function pickBaseline(results: EngineResult[], wanted?: EngineId): EngineId | undefined {
  for (const id of [...(wanted ? [wanted] : []), 'ort-cpu', 'pytorch'] as EngineId[]) {
    const r = results.find((e): e is Ok => e.engine === id && e.status === 'ok');
    if (r?.figures.accuracy) return id;
  }
  return undefined;
}

function addDeltas(results: EngineResult[], baseline: EngineId): void {
  const base = (results.find((r) => r.engine === baseline) as Ok).figures.accuracy;
  if (!base) return;
  const d = (a?: number, b?: number) => (a !== undefined && b !== undefined ? Math.round((a - b) * 1e4) / 1e4 : undefined);
  for (const r of results) {
    const a = r.status === 'ok' ? r.figures.accuracy : undefined;
    if (!a) continue;
    const delta = Object.fromEntries(
      Object.entries({ map50: d(a.map50, base.map50), map5095: d(a.map5095, base.map5095), top1: d(a.top1, base.top1), top5: d(a.top5, base.top5) }).filter(([, v]) => v !== undefined),
    );
    a.delta = delta;
  }
}
