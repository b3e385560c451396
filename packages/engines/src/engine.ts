import type { EngineId, ExecutionProviderId, ModelManifest, Precision } from '@cvopt/core';

// Engine ids and providers are core's one vocabulary (ENGINES); adapters only carry them.
export type { EngineId, ExecutionProviderId };

/** One output tensor, always handed back as float32 whatever the graph produced. */
export interface TensorOutput {
  data: Float32Array;
  dims: number[];
}

/** The manifest's output (`data`, `dims`) plus every output of the graph by name. */
export interface EngineOutput extends TensorOutput {
  outputs: Record<string, TensorOutput>;
  /** Milliseconds the run itself took, where the engine measures it apart from queueing (the service's worker). */
  runMs?: number;
}

/** What an engine is, as a report or /health records it. */
export interface EngineInfo {
  id: EngineId;
  provider: ExecutionProviderId;
  precision: Precision;
  inputName: string;
  /** The model's input dims: a number when fixed, the symbolic name when dynamic. */
  inputDims: (number | string)[];
  dynamicBatch: boolean;
  /** The largest batch run() accepts: the fixed batch for static models, the configured cap for dynamic ones. */
  maxBatch?: number;
  /** Intra-op threads; 0 means ONNX Runtime's default (one per physical core; under a CPU quota, set to its whole CPUs). */
  threads: number;
  versions: Record<string, string>;
}

export interface RunOptions {
  signal?: AbortSignal;
}

/**
 * One loaded model on one engine. `run` takes a contiguous NCHW float32 tensor and its dims; the engine validates
 * them against the model and never copies the input for float32 models. `close` releases native memory.
 */
export interface Engine {
  readonly id: EngineId;
  readonly manifest: ModelManifest;
  describe(): EngineInfo;
  run(input: Float32Array, dims: readonly number[], opts?: RunOptions): Promise<EngineOutput>;
  close(): Promise<void>;
}
