import { z } from 'zod';

/**
 * The worker protocol between TypeScript and the Python trainer: one JSON object per line on stdout.
 * The Python side mirrors these shapes; contracts/worker-messages.json holds examples both sides validate.
 */

export const WORKER_COMMANDS = ['train', 'export', 'bench', 'inspect'] as const;
export const WorkerCommandSchema = z.enum(WORKER_COMMANDS);
export type WorkerCommand = z.infer<typeof WorkerCommandSchema>;

export const ProgressMessageSchema = z.object({
  type: z.literal('progress'),
  stage: z.string(),
  step: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  message: z.string().optional(),
});

export const MetricMessageSchema = z.object({
  type: z.literal('metric'),
  stage: z.string().optional(),
  epoch: z.number().int().nonnegative().optional(),
  // null stands for a non-finite value (NaN or infinity), which JSON cannot carry.
  values: z.record(z.string(), z.number().nullable()),
});

export const ResultMessageSchema = z.object({
  type: z.literal('result'),
  data: z.record(z.string(), z.unknown()),
});

export const ErrorMessageSchema = z.object({
  type: z.literal('error'),
  code: z.string(),
  message: z.string(),
  hint: z.string().optional(),
  where: z.object({ file: z.string().optional(), line: z.number().optional(), field: z.string().optional() }).optional(),
});

export const WorkerMessageSchema = z.discriminatedUnion('type', [
  ProgressMessageSchema,
  MetricMessageSchema,
  ResultMessageSchema,
  ErrorMessageSchema,
]);
export type WorkerMessage = z.infer<typeof WorkerMessageSchema>;
export type ProgressMessage = z.infer<typeof ProgressMessageSchema>;
export type MetricMessage = z.infer<typeof MetricMessageSchema>;
export type ResultMessage = z.infer<typeof ResultMessageSchema>;
export type ErrorMessage = z.infer<typeof ErrorMessageSchema>;
