import {
  BenchArgsSchema,
  BenchWorkerResultSchema,
  ImportOnnxArgsSchema,
  ImportOnnxResultSchema,
  parseWith,
  type BenchArgs,
  type BenchWorkerResult,
  type ImportOnnxResult,
} from '@cvopt/core';
import { runWorker, type RunWorkerOptions } from './worker.js';

/**
 * Typed wrappers of worker commands whose arguments and results have schemas in core (worker.ts): the arguments are
 * checked before the worker starts, the result when it ends. Every call goes through runWorker, the one launcher.
 */

/** Latency per batch size, and raw outputs for `inputs`, from eager PyTorch (BN folded, inference mode). */
export async function runPytorchBench(args: BenchArgs, opts: RunWorkerOptions = {}): Promise<BenchWorkerResult> {
  const a = parseWith(BenchArgsSchema, args, { what: 'bench worker arguments', code: 'INVALID_ARGUMENT' });
  const r = await runWorker('bench', a, opts);
  return parseWith(BenchWorkerResultSchema, r, { what: 'bench worker result', code: 'WORKER_FAILED' });
}

/**
 * Rebuild our PyTorch YOLOv8 from a YOLOv8-architecture ONNX file (int8 weights dequantised) and save it as a
 * cvopt checkpoint at `out`. A model that is not YOLOv8-shaped fails with MODEL_INVALID whose message starts with
 * NO_PYTORCH_SOURCE.
 */
export async function importOnnxToPytorch(onnx: string, out: string, opts: RunWorkerOptions = {}): Promise<ImportOnnxResult> {
  const a = parseWith(ImportOnnxArgsSchema, { onnx, out }, { what: 'import-onnx arguments', code: 'INVALID_ARGUMENT' });
  const r = await runWorker('import-onnx', a, opts);
  return parseWith(ImportOnnxResultSchema, r, { what: 'import-onnx result', code: 'WORKER_FAILED' });
}
