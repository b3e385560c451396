import type { EngineFigures, EngineId, EvalProtocol, ModelManifest } from '@cvopt/core';

/** One engine to measure, as the job that prepared its model hands it over. */
export type BenchTarget =
  | { engine: EngineId; status: 'unavailable'; reason: string }
  | { engine: EngineId; status: 'failed'; error: { code: string; message: string } }
  | {
      engine: EngineId;
      status: 'ready';
      runtime: 'onnxruntime';
      provider: 'cpu' | 'cuda' | 'tensorrt';
      /** The ONNX file this engine runs (FP32, QDQ INT8, FP16, or a TensorRT EP-context model). */
      model: string;
      manifest: ModelManifest;
      /** What model this engine ran, in words, for the report. */
      describe: string;
      notes?: string[];
      /**
       * What a deployment should ship when `model` is not portable (a TensorRT EP-context model wraps a plan built
       * for this GPU): the ONNX to build from and the recipe. Settings say how the file was made (calibration).
       */
      packageSource?: { onnx?: string; settings?: Record<string, unknown>; tensorrt?: { precision: 'fp16' | 'int8'; builtWith?: string } };
    }
  | {
      engine: EngineId;
      status: 'ready';
      runtime: 'pytorch';
      /** A checkpoint the worker loads (a cvopt checkpoint, .pt, or a model rebuilt from ONNX). */
      checkpoint: string;
      device: 'cpu' | 'cuda';
      /** The manifest of the matching ONNX export: pre/postprocessing is the same for every engine. */
      manifest: ModelManifest;
      python: { python: string; trainerDir: string };
      describe: string;
      notes?: string[];
    };

export type ReadyTarget = Extract<BenchTarget, { status: 'ready' }>;

/** Per-engine limits: a child above either is killed and the engine reported failed. */
export interface EngineLimits {
  timeS: number;
  rssMb: number;
}

export interface MeasureSettings {
  warmup: number;
  iters: number;
  /** Keep measuring single-image latency until this much time has passed, even after `iters`. */
  minTimeMs: number;
  batchSizes: number[];
  threads: number;
  /**
   * Whether ONNX Runtime's idle intra-op threads spin. Default engines' SERVED_SPINNING (no), as the runtime serves
   * the model: single-image latency is then what one user of the service gets from the engine. Spinning threads run
   * a small model back to back faster (a 160-px detector: 2.3–2.5 ms against 2.9–3.1 ms on 2 cores) but hold every
   * core, which a service cannot give them.
   */
  spinning?: boolean;
  /** Labelled images for accuracy (detection: label file path; classification: class id). */
  images: { image: string; label: string | number }[];
  video?: { file: string; maxFrames: number };
  /** How accuracy is measured (default core's DEFAULT_EVAL_PROTOCOL); recorded in the report settings. */
  protocol?: EvalProtocol;
  /** Extra tries of the latency loop when the measurement is unstable (isUnstable). */
  repeatsIfUnstable: number;
}

/** What the child process is given (a JSON file) and writes back (another JSON file). */
export interface ChildJob {
  target: ReadyTarget;
  settings: MeasureSettings;
  resultFile: string;
}

export type ChildResult =
  | { ok: true; figures: Omit<EngineFigures, 'resources'> & { resources: { cpuPercent: number; peakRssMb: number } }; model: string }
  | { ok: false; code: string; message: string };
