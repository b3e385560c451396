import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CvoptError, ERROR_CATALOGUE, type ErrorCode } from '@cvopt/core';

/**
 * The PyTorch engine: eager PyTorch in the trainer's Python worker (`python3 -m cvopt_trainer bench`). The
 * worker measures its own latencies (so process start and model load never count) and returns raw outputs for
 * given inputs, which the caller decodes with the same postprocessing as every other engine.
 */

export interface PythonWorkerSpec {
  /** The Python executable with torch (trainer-client's findPython()). */
  python: string;
  /** The folder that holds the cvopt_trainer package (trainer-client's trainerDir()). */
  trainerDir: string;
}

export interface PytorchBenchOptions extends PythonWorkerSpec {
  /** A cvopt checkpoint, state dict, Ultralytics .pt or preset. */
  checkpoint: string;
  device?: 'cpu' | 'cuda';
  imgsz?: number;
  batchSizes?: number[];
  warmup?: number;
  iters?: number;
  minTimeS?: number;
  threads?: number;
  /** N×3×H×W float32 little-endian file whose outputs the worker writes to `outputs`. */
  inputs?: string;
  outputs?: string;
  signal?: AbortSignal;
  timeoutS?: number;
  onProgress?: (message: string) => void;
}

export interface PytorchBenchResult {
  device: string;
  threads: number;
  torch: string;
  imgsz: number;
  task: 'detect' | 'classify';
  nc: number;
  runs: { batch: number; latenciesMs: number[] }[];
  outputs?: { file: string; shape: number[] };
}

export interface OnnxImportResult {
  preset: string;
  task: 'detect';
  nc: number;
  names: string[];
  imgsz: number;
  /** Weights read, and how many of them were int8 and dequantised. */
  weights: number;
  dequantised: number;
  sourceSha256: string;
  out: string;
}

/** Message that starts the worker's error when an ONNX file has no YOLOv8 parameters to rebuild from. */
export const NO_PYTORCH_SOURCE = 'no PyTorch source for this ONNX model';

/** Run one Python module speaking the worker protocol and resolve with its `result` data. */
export async function runPythonModule(
  spec: PythonWorkerSpec,
  argv: string[],
  args: Record<string, unknown>,
  opts: { signal?: AbortSignal; timeoutS?: number; onProgress?: (message: string) => void } = {},
): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-py-'));
  const argsFile = join(dir, 'args.json');
  writeFileSync(argsFile, JSON.stringify(args));
  const child = spawn(spec.python, [...argv, '--json-args', argsFile], {
    cwd: spec.trainerDir,
    env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const onAbort = () => child.kill('SIGTERM');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = opts.timeoutS ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutS * 1000) : undefined;
  let result: Record<string, unknown> | undefined;
  let error: CvoptError | undefined;
  let stdoutRest = '';
  let stderrTail = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdoutRest += d;
    let nl: number;
    while ((nl = stdoutRest.indexOf('\n')) >= 0) {
      const line = stdoutRest.slice(0, nl).trim();
      stdoutRest = stdoutRest.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      try {
        const m = JSON.parse(line) as { type?: string; data?: Record<string, unknown>; code?: string; message?: string; hint?: string; stage?: string };
        if (m.type === 'result') result = m.data ?? {};
        else if (m.type === 'error') {
          const code = (m.code && m.code in ERROR_CATALOGUE ? m.code : 'WORKER_FAILED') as ErrorCode;
          error = new CvoptError(code, m.message ?? 'the Python worker failed', m.hint ? { hint: m.hint } : {});
        } else if (m.type === 'progress' && m.message) opts.onProgress?.(m.message);
      } catch {
        // a stray line from a library; the protocol lines are the JSON ones
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderrTail = (stderrTail + d).slice(-4000);
  });
  try {
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    if (error) throw error;
    if (result && exit.code === 0) return result;
    const how = exit.signal ? `was killed by ${exit.signal}${timer && opts.timeoutS ? ` (time limit ${opts.timeoutS} s)` : ''}` : `exited with code ${exit.code}`;
    throw new CvoptError('WORKER_FAILED', `the Python worker (${argv.join(' ')}) ${how} without a result: ${stderrTail.trim().split('\n').slice(-5).join(' | ')}`);
  } finally {
    if (timer) clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Latency per batch size, and raw outputs for `inputs`, from eager PyTorch (BN folded, inference mode). */
export async function runPytorchBench(o: PytorchBenchOptions): Promise<PytorchBenchResult> {
  const args: Record<string, unknown> = {
    checkpoint: o.checkpoint,
    device: o.device ?? 'cpu',
    batch_sizes: o.batchSizes ?? [1],
    warmup: o.warmup ?? 3,
    iters: o.iters ?? 20,
  };
  if (o.imgsz) args.imgsz = o.imgsz;
  if (o.minTimeS) args.min_time_s = o.minTimeS;
  if (o.threads) args.threads = o.threads;
  if (o.inputs) args.inputs = o.inputs;
  if (o.outputs) args.outputs = o.outputs;
  const opts: Parameters<typeof runPythonModule>[3] = {};
  if (o.signal) opts.signal = o.signal;
  if (o.timeoutS) opts.timeoutS = o.timeoutS;
  if (o.onProgress) opts.onProgress = o.onProgress;
  return (await runPythonModule(o, ['-m', 'cvopt_trainer', 'bench'], args, opts)) as unknown as PytorchBenchResult;
}

/**
 * Rebuild our PyTorch YOLOv8 from a YOLOv8-architecture ONNX file (int8 weights dequantised) and save it as a
 * cvopt checkpoint at `out`. A model that is not YOLOv8-shaped fails with MODEL_INVALID and NO_PYTORCH_SOURCE.
 */
export async function importOnnxToPytorch(spec: PythonWorkerSpec, onnx: string, out: string, opts: { signal?: AbortSignal; timeoutS?: number } = {}): Promise<OnnxImportResult> {
  return (await runPythonModule(spec, ['-m', 'cvopt_trainer.io.onnx_import'], { onnx, out }, opts)) as unknown as OnnxImportResult;
}
