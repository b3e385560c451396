import { z } from 'zod';
import { EngineIdSchema } from './engines.js';

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

export const DecisionSchema = z.object({
  schemaVersion: z.literal(1).default(1),
  winner: EngineIdSchema.nullable(),
  rule: z.string(),
  reason: z.string(),
  constraints: ConstraintsSchema,
  candidates: z.array(CandidateSchema),
});
export type Decision = z.infer<typeof DecisionSchema>;
