import { z } from 'zod';
import type { Precision } from './manifest.js';

/**
 * The one engine vocabulary. Every command (eval, bench, select, tune --engine, predict), the benchmark report, the
 * selection decision, the runtime config and the packager name engines by these ids. To add an engine, add it here:
 * its runtime, provider, precision and the model transform it needs are data, not code in each command.
 *
 * The order of ENGINE_IDS is the documented tie-break order for selection (fastest family first).
 */
export const ENGINE_IDS = [
  'tensorrt-int8',
  'tensorrt-fp16',
  'ort-cuda-fp16',
  'ort-cuda',
  'ort-cpu-int8',
  'ort-cpu',
  'pytorch',
] as const;
export const EngineIdSchema = z.enum(ENGINE_IDS);
export type EngineId = z.infer<typeof EngineIdSchema>;

/** ONNX Runtime execution providers cvopt can ask for. */
export type ExecutionProviderId = 'cpu' | 'cuda' | 'tensorrt' | 'webgpu';

/**
 * Which model file an engine runs, derived from the FP32 ONNX: the file itself, its QDQ INT8 or FP16 conversion, a
 * TensorRT plan built for the GPU it runs on, or the PyTorch source checkpoint.
 */
export type ModelTransform = 'fp32' | 'int8-qdq' | 'fp16' | 'trt-fp16' | 'trt-int8' | 'pytorch';

export interface EngineSpec {
  readonly id: EngineId;
  readonly runtime: 'onnxruntime' | 'pytorch';
  /** ONNX Runtime execution provider (onnxruntime engines only). */
  readonly provider?: ExecutionProviderId;
  readonly transform: ModelTransform;
  readonly precision: Precision;
  readonly gpu: boolean;
  /** Whether the packaged runtime service can serve this engine (the service runs ONNX Runtime only). */
  readonly servable: boolean;
  readonly summary: string;
}

const spec = (s: EngineSpec): EngineSpec => s;

export const ENGINES: Readonly<Record<EngineId, EngineSpec>> = {
  'tensorrt-int8': spec({ id: 'tensorrt-int8', runtime: 'onnxruntime', provider: 'tensorrt', transform: 'trt-int8', precision: 'int8', gpu: true, servable: true, summary: 'TensorRT INT8 plan through ONNX Runtime’s TensorRT provider' }),
  'tensorrt-fp16': spec({ id: 'tensorrt-fp16', runtime: 'onnxruntime', provider: 'tensorrt', transform: 'trt-fp16', precision: 'fp16', gpu: true, servable: true, summary: 'TensorRT FP16 plan through ONNX Runtime’s TensorRT provider' }),
  'ort-cuda-fp16': spec({ id: 'ort-cuda-fp16', runtime: 'onnxruntime', provider: 'cuda', transform: 'fp16', precision: 'fp16', gpu: true, servable: true, summary: 'ONNX Runtime CUDA on the FP16 conversion' }),
  'ort-cuda': spec({ id: 'ort-cuda', runtime: 'onnxruntime', provider: 'cuda', transform: 'fp32', precision: 'fp32', gpu: true, servable: true, summary: 'ONNX Runtime CUDA, FP32' }),
  'ort-cpu-int8': spec({ id: 'ort-cpu-int8', runtime: 'onnxruntime', provider: 'cpu', transform: 'int8-qdq', precision: 'int8', gpu: false, servable: true, summary: 'ONNX Runtime CPU on the QDQ INT8 quantization' }),
  'ort-cpu': spec({ id: 'ort-cpu', runtime: 'onnxruntime', provider: 'cpu', transform: 'fp32', precision: 'fp32', gpu: false, servable: true, summary: 'ONNX Runtime CPU, FP32' }),
  pytorch: spec({ id: 'pytorch', runtime: 'pytorch', transform: 'pytorch', precision: 'fp32', gpu: false, servable: false, summary: 'eager PyTorch in the Python worker (CPU or CUDA)' }),
};

export function isEngineId(value: unknown): value is EngineId {
  return typeof value === 'string' && (ENGINE_IDS as readonly string[]).includes(value);
}

/** The ids that run on ONNX Runtime (everything eval, the quantize guard, tune latency and the runtime can use). */
export const ORT_ENGINE_IDS: readonly EngineId[] = ENGINE_IDS.filter((id) => ENGINES[id].runtime === 'onnxruntime');
