export type { Engine, EngineId, EngineInfo, EngineOutput, ExecutionProviderId, RunOptions, TensorOutput } from './engine.js';
export { createOrtEngine, ortSessionOptions, DEFAULT_MAX_BATCH, type OrtEngineOptions } from './ort.js';
export { readManifest, manifestPathFor } from './manifest.js';
export { engineVersions } from './versions.js';
export { halfToFloat, floatToHalf } from './half.js';
export {
  probeExecutionProviders,
  probeNvidia,
  probeTensorRt,
  ortBinaryDir,
  findSharedLibrary,
  which,
  type ProviderProbe,
  type NvidiaProbe,
  type NvidiaGpu,
  type TensorRtProbe,
  type ProbeOptions,
} from './probe.js';
