import { ENGINES, type EngineId } from '@cvopt/core';
import type { NvidiaProbe, ProviderProbe, TensorRtProbe } from './probe.js';

/**
 * Whether this machine can run an engine of core's ENGINES, with the reason in words when it cannot. The ids, their
 * provider, precision and model transform are core's data; this file only knows how to probe for them.
 */

export interface MachineProbes {
  providers: ProviderProbe[];
  nvidia: NvidiaProbe;
  tensorrt: TensorRtProbe;
  /** PyTorch in the worker's Python: its version, or why it cannot be imported. */
  python: { torch?: string; error?: string };
}

export type Availability = { available: true } | { available: false; reason: string };

/** Whether this machine can run an engine; GPU engines list every missing piece at once. */
export function engineAvailability(id: EngineId, probes: MachineProbes): Availability {
  const spec = ENGINES[id];
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
