import { z } from 'zod';
import { EngineIdSchema } from './engines.js';
import { PrecisionSchema } from './manifest.js';

export const ConstraintsSchema = z.object({
  minMap50: z.number().min(0).max(1).optional(),
  minMap5095: z.number().min(0).max(1).optional(),
  minTop1: z.number().min(0).max(1).optional(),
  /** Largest allowed accuracy drop from the FP32 baseline, in absolute units (0.01 = 1 point). */
  maxMapDrop: z.number().min(0).optional(),
  maxP95Ms: z.number().positive().optional(),
  maxRssMb: z.number().positive().optional(),
  maxGpuMemMb: z.number().positive().optional(),
  allowedEngines: z.array(EngineIdSchema).optional(),
});
export type Constraints = z.infer<typeof ConstraintsSchema>;

export const MarginSchema = z.object({
  constraint: z.string(),
  limit: z.number(),
  value: z.number().nullable(),
  /** Positive = room to spare; negative = violated by that much; null = value not measured. */
  margin: z.number().nullable(),
  ok: z.boolean(),
});
export type Margin = z.infer<typeof MarginSchema>;

export const CandidateSchema = z.object({
  engine: EngineIdSchema,
  status: z.enum(['ok', 'failed', 'unavailable']),
  valid: z.boolean(),
  p95Ms: z.number().nullable(),
  margins: z.array(MarginSchema),
  rejectedBy: z.array(z.string()),
  note: z.string().optional(),
});
export type Candidate = z.infer<typeof CandidateSchema>;

/**
 * The winner's model, copied next to the decision by `cvopt select` (never left in a cache folder): paths are
 * relative to the decision file, so the folder can move. `cvopt package --decision` reads exactly this file.
 */
export const DecisionModelSchema = z.object({
  file: z.string(),
  sha256: z.string(),
  /** model.json of `file`, relative to the decision file. */
  manifest: z.string(),
  engine: EngineIdSchema,
  precision: PrecisionSchema,
  settings: z.record(z.string(), z.unknown()).default({}),
  /** TensorRT engines: `file` is the ONNX the plan is built from, on the GPU it runs on (plans are not portable). */
  tensorrt: z.object({ precision: z.enum(['fp16', 'int8']), builtWith: z.string().optional(), recipe: z.string() }).optional(),
  /** The benchmark report the decision came from, relative to the decision file. */
  report: z.object({ file: z.string(), sha256: z.string(), sourceModel: z.object({ name: z.string(), sha256: z.string() }) }),
});
export type DecisionModel = z.infer<typeof DecisionModelSchema>;

export const DecisionSchema = z.object({
  schemaVersion: z.literal(1).default(1),
  winner: EngineIdSchema.nullable(),
  rule: z.string(),
  reason: z.string(),
  constraints: ConstraintsSchema,
  candidates: z.array(CandidateSchema),
  model: DecisionModelSchema.optional(),
});
export type Decision = z.infer<typeof DecisionSchema>;
