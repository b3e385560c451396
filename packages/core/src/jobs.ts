import { z } from 'zod';
import { ConstraintsSchema } from './selection.js';
import { EngineIdSchema } from './engines.js';

/** Payloads of the jobs the CLI runs in-process and the platform queues. */

export const DeviceSchema = z.enum(['cpu', 'cuda']);

export const TrainJobSchema = z.object({
  kind: z.literal('train'),
  model: z.string().min(1),
  data: z.string().min(1),
  out: z.string().min(1),
  epochs: z.number().int().positive().default(50),
  imgsz: z.number().int().positive().multipleOf(32).default(640),
  batch: z.number().int().positive().default(16),
  device: DeviceSchema.default('cpu'),
  seed: z.number().int().nonnegative().default(0),
  hyp: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])).default({}),
  resume: z.boolean().default(false),
  /** Load a TorchScript --model (a program that may write files); off: such a file is refused. */
  trustTorchscript: z.boolean().default(false),
});
export type TrainJob = z.infer<typeof TrainJobSchema>;

export const ExportJobSchema = z.object({
  kind: z.literal('export'),
  checkpoint: z.string().min(1),
  out: z.string().min(1),
  imgsz: z.number().int().positive().multipleOf(32).optional(),
  dynamic: z.boolean().default(false),
  opset: z.number().int().positive().optional(),
  /** Load a TorchScript checkpoint (a program that may write files); off: such a file is refused. */
  trustTorchscript: z.boolean().default(false),
});
export type ExportJob = z.infer<typeof ExportJobSchema>;

export const BenchJobSchema = z.object({
  kind: z.literal('bench'),
  model: z.string().min(1),
  data: z.string().min(1).optional(),
  video: z.string().optional(),
  engines: z.array(EngineIdSchema).optional(),
  out: z.string().min(1),
});
export type BenchJob = z.infer<typeof BenchJobSchema>;

export const TuneJobSchema = z.object({
  kind: z.literal('tune'),
  model: z.string().min(1),
  data: z.string().min(1),
  out: z.string().min(1),
  strategy: z.enum(['tournament', 'elitist', 'adaptive', 'constrained', 'nsga2']),
  generations: z.number().int().positive().default(5),
  population: z.number().int().positive().default(8),
  seed: z.number().int().nonnegative().default(0),
  targetLatencyMs: z.number().positive().optional(),
  engine: EngineIdSchema.default('ort-cpu'),
  resume: z.boolean().default(false),
});
export type TuneJob = z.infer<typeof TuneJobSchema>;

export const PackageJobSchema = z.object({
  kind: z.literal('package'),
  model: z.string().min(1),
  engine: EngineIdSchema,
  out: z.string().min(1),
  gpu: z.boolean().default(false),
  constraints: ConstraintsSchema.optional(),
});
export type PackageJob = z.infer<typeof PackageJobSchema>;

export const JobPayloadSchema = z.discriminatedUnion('kind', [
  TrainJobSchema,
  ExportJobSchema,
  BenchJobSchema,
  TuneJobSchema,
  PackageJobSchema,
]);
export type JobPayload = z.infer<typeof JobPayloadSchema>;

/** Which queue a job goes to; the platform keeps them separate so training never starves inference. */
export const QUEUE_OF: Record<JobPayload['kind'], 'training' | 'inference' | 'packaging'> = {
  train: 'training',
  tune: 'training',
  export: 'packaging',
  bench: 'inference',
  package: 'packaging',
};
