export type { Engine, EngineId, EngineInfo, EngineOutput, ExecutionProviderId, RunOptions, TensorOutput } from './engine.js';
export { createOrtEngine, ortEngineIdFor, ortSessionOptions, DEFAULT_MAX_BATCH, SERVED_SPINNING, type OrtEngineOptions } from './ort.js';
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
export {
  trtEngineKey,
  trtCachePaths,
  lookupTrtEngine,
  storeTrtEngine,
  trtexecArgs,
  tensorrtVersionOf,
  buildTrtEngine,
  type TrtEngineKey,
  type TrtCacheEntry,
  type TrtPrecision,
  type BuildTrtOptions,
} from './tensorrt.js';
export { engineAvailability, type MachineProbes, type Availability } from './registry.js';
