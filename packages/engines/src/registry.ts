import type { EngineId as BenchEngineId, Precision } from '@cvopt/core';
import type { NvidiaProbe, ProviderProbe, TensorRtProbe } from './probe.js';

/**
 * Every engine a benchmark knows (the report's engine ids), what runs it and on which model variant, and whether
 * this machine can run it, with the reason in words when it cannot.
 */

export interface BenchEngineSpec {
  id: BenchEngineId;
  runtime: 'onnxruntime' | 'pytorch';
  /** ONNX Runtime execution provider (onnxruntime engines only). */
  provider?: 'cpu' | 'cuda' | 'tensorrt';
  /** Which model file the engine runs: the FP32 ONNX, its QDQ INT8 or FP16 conversion, a TensorRT engine, or the PyTorch source. */
  model: 'fp32' | 'int8-qdq' | 'fp16' | 'trt-fp16' | 'trt-int8' | 'pytorch';
  precision: Precision;
  gpu: boolean;
}

export const BENCH_ENGINES: Record<BenchEngineId, BenchEngineSpec> = {
  'tensorrt-int8': { id: 'tensorrt-int8', runtime: 'onnxruntime', provider: 'tensorrt', model: 'trt-int8', precision: 'int8', gpu: true },
  'tensorrt-fp16': { id: 'tensorrt-fp16', runtime: 'onnxruntime', provider: 'tensorrt', model: 'trt-fp16', precision: 'fp16', gpu: true },
  'ort-cuda-fp16': { id: 'ort-cuda-fp16', runtime: 'onnxruntime', provider: 'cuda', model: 'fp16', precision: 'fp16', gpu: true },
  'ort-cuda': { id: 'ort-cuda', runtime: 'onnxruntime', provider: 'cuda', model: 'fp32', precision: 'fp32', gpu: true },
  'ort-cpu-int8': { id: 'ort-cpu-int8', runtime: 'onnxruntime', provider: 'cpu', model: 'int8-qdq', precision: 'int8', gpu: false },
  'ort-cpu': { id: 'ort-cpu', runtime: 'onnxruntime', provider: 'cpu', model: 'fp32', precision: 'fp32', gpu: false },
  pytorch: { id: 'pytorch', runtime: 'pytorch', model: 'pytorch', precision: 'fp32', gpu: false },
};

export interface MachineProbes {
  providers: ProviderProbe[];
  nvidia: NvidiaProbe;
  tensorrt: TensorRtProbe;
  /** PyTorch in the worker's Python: its version, or why it cannot be imported. */
  python: { torch?: string; error?: string };
}

export type Availability = { available: true } | { available: false; reason: string };

/** Whether this machine can run an engine; GPU engines list every missing piece at once. */
export function benchEngineAvailability(id: BenchEngineId, probes: MachineProbes): Availability {
  const spec = BENCH_ENGINES[id];
  if (spec.runtime === 'pytorch') {
    return probes.python.torch ? { available: true } : { available: false, reason: `PyTorch is not importable in the worker's Python: ${probes.python.error ?? 'unknown reason'}` };
  }
  const provider = probes.providers.find((p) => p.id === spec.provider);
  if (provider?.available) {
    if (spec.provider === 'tensorrt' && !probes.tensorrt.trtexec) {
      return { available: false, reason: 'trtexec is not on PATH (nor in /usr/src/tensorrt/bin): cvopt builds TensorRT engines with it; install the TensorRT command-line tools' };
    }
    return { available: true };
  }
  const missing: string[] = [];
  const noGpu = spec.gpu && probes.nvidia.gpus.length === 0;
  if (noGpu) missing.push(`no NVIDIA GPU (${probes.nvidia.reason ?? 'nvidia-smi lists none'})`);
  // The provider probe repeats the driver finding; say it once.
  const providerParts = (provider?.reason ?? `this onnxruntime-node build has no ${spec.provider ?? '?'} execution provider`)
    .split('; ')
    .filter((part) => !(noGpu && probes.nvidia.reason && part === probes.nvidia.reason));
  missing.push(...providerParts);
  if (spec.provider === 'tensorrt' && !probes.tensorrt.trtexec) missing.push('no trtexec on PATH');
  return { available: false, reason: [...new Set(missing)].join('; ') };
}
