import { z } from 'zod';
import { ModelManifestSchema, TaskSchema } from './manifest.js';
import { EngineIdSchema } from './engines.js';
import { EvalProtocolSchema } from './eval-protocol.js';


export const LatencyStatsSchema = z.object({
  n: z.number().int().nonnegative(),
  min: z.number(),
  p50: z.number(),
  p90: z.number(),
  p95: z.number(),
  p99: z.number(),
  mean: z.number(),
  std: z.number(),
  max: z.number(),
});
export type LatencyStats = z.infer<typeof LatencyStatsSchema>;

export const AccuracyFiguresSchema = z.object({
  map50: z.number().optional(),
  map5095: z.number().optional(),
  top1: z.number().optional(),
  top5: z.number().optional(),
  images: z.number().int().nonnegative().optional(),
  /** How the detections were produced (conf, NMS IoU, max detections, multi-label): see EvalProtocolSchema. */
  protocol: EvalProtocolSchema.optional(),
  /** This engine minus the FP32 baseline (negative = worse). */
  delta: z
    .object({ map50: z.number().optional(), map5095: z.number().optional(), top1: z.number().optional(), top5: z.number().optional() })
    .optional(),
});
export type AccuracyFigures = z.infer<typeof AccuracyFiguresSchema>;

export const EngineFiguresSchema = z.object({
  /** Single-image end-to-end inference latency in ms (the model run; pre/post measured separately). */
  latencyMs: LatencyStatsSchema,
  preprocessMs: z.number().optional(),
  postprocessMs: z.number().optional(),
  throughput: z.array(z.object({ batch: z.number().int().positive(), imagesPerSec: z.number() })).default([]),
  video: z
    .object({
      file: z.string(),
      frames: z.number().int().nonnegative(),
      sequentialFps: z.number(),
      pipelinedFps: z.number(),
    })
    .optional(),
  resources: z.object({
    cpuPercent: z.number(),
    peakRssMb: z.number(),
    gpuUtilPercent: z.number().optional(),
    gpuMemMb: z.number().optional(),
  }),
  accuracy: AccuracyFiguresSchema.optional(),
  /** Warnings such as "unstable: p99/p50 above threshold after repeats". */
  flags: z.array(z.string()).default([]),
});
export type EngineFigures = z.infer<typeof EngineFiguresSchema>;

/**
 * The exact model file an engine ran, so selection can hand the winner to the packager: its path when measured,
 * sha256, manifest, and for TensorRT the recipe (the plan itself is built where it runs, it does not move).
 */
export const ModelFileSchema = z.object({
  path: z.string(),
  sha256: z.string(),
  manifest: ModelManifestSchema,
  /** How the file was made and run (calibration images, provider settings). */
  settings: z.record(z.string(), z.unknown()).default({}),
  tensorrt: z.object({ precision: z.enum(['fp16', 'int8']), builtWith: z.string().optional() }).optional(),
});
export type ModelFile = z.infer<typeof ModelFileSchema>;

export const EngineResultSchema = z.discriminatedUnion('status', [
  z.object({ engine: EngineIdSchema, status: z.literal('unavailable'), reason: z.string() }),
  z.object({
    engine: EngineIdSchema,
    status: z.literal('failed'),
    error: z.object({ code: z.string(), message: z.string() }),
  }),
  z.object({ engine: EngineIdSchema, status: z.literal('ok'), model: z.string().optional(), modelFile: ModelFileSchema.optional(), figures: EngineFiguresSchema }),
]);
export type EngineResult = z.infer<typeof EngineResultSchema>;

export const EnvironmentSchema = z.object({
  hostname: z.string().optional(),
  os: z.string(),
  cpu: z.object({ model: z.string(), cores: z.number().int(), flags: z.array(z.string()).default([]) }),
  memoryMb: z.number(),
  gpus: z.array(z.object({ name: z.string(), memoryMb: z.number().optional(), driver: z.string().optional() })).default([]),
  cuda: z.string().optional(),
  versions: z.record(z.string(), z.string()).default({}),
});
export type Environment = z.infer<typeof EnvironmentSchema>;

export const BenchmarkReportSchema = z.object({
  schemaVersion: z.literal(1).default(1),
  createdAt: z.string(),
  model: z.object({ path: z.string(), sha256: z.string(), task: TaskSchema, name: z.string().optional() }),
  dataset: z.object({ path: z.string(), images: z.number().int().nonnegative() }).optional(),
  settings: z.record(z.string(), z.unknown()).default({}),
  environment: EnvironmentSchema,
  baseline: EngineIdSchema.optional(),
  engines: z.array(EngineResultSchema),
});
export type BenchmarkReport = z.infer<typeof BenchmarkReportSchema>;
