import { z } from 'zod';

/**
 * The worker protocol between TypeScript and the Python trainer: one JSON object per line on stdout.
 * The Python side mirrors these shapes; contracts/worker-messages.json holds examples both sides validate.
 */

export const WORKER_COMMANDS = ['train', 'export', 'bench', 'inspect', 'import-onnx'] as const;
export const WorkerCommandSchema = z.enum(WORKER_COMMANDS);
export type WorkerCommand = z.infer<typeof WorkerCommandSchema>;

/** `bench`: latency per batch size of eager PyTorch and, for `inputs`, its raw outputs (written to `outputs`). */
export const BenchArgsSchema = z.object({
  checkpoint: z.string().min(1),
  device: z.enum(['cpu', 'cuda']).default('cpu'),
  batch_sizes: z.array(z.number().int().positive()).min(1).default([1]),
  warmup: z.number().int().nonnegative().default(3),
  iters: z.number().int().positive().default(20),
  imgsz: z.number().int().positive().optional(),
  min_time_s: z.number().nonnegative().optional(),
  threads: z.number().int().positive().optional(),
  inputs: z.string().optional(),
  outputs: z.string().optional(),
});
export type BenchArgs = z.input<typeof BenchArgsSchema>;
export const BenchWorkerResultSchema = z.object({
  device: z.string(),
  threads: z.number(),
  torch: z.string(),
  imgsz: z.number(),
  task: z.enum(['detect', 'classify']),
  nc: z.number(),
  runs: z.array(z.object({ batch: z.number(), latenciesMs: z.array(z.number()) })),
  outputs: z.object({ file: z.string(), shape: z.array(z.number()) }).optional(),
});
export type BenchWorkerResult = z.infer<typeof BenchWorkerResultSchema>;

/** `import-onnx`: rebuild our PyTorch YOLOv8 from a YOLOv8-architecture ONNX (int8 weights dequantised). */
export const ImportOnnxArgsSchema = z.object({ onnx: z.string().min(1), out: z.string().min(1) });
export type ImportOnnxArgs = z.infer<typeof ImportOnnxArgsSchema>;
export const ImportOnnxResultSchema = z.looseObject({
  preset: z.string(),
  task: z.literal('detect'),
  nc: z.number().int().positive(),
  names: z.array(z.string()),
  imgsz: z.number().int().positive(),
  /** Weights read, and how many of them were int8 and dequantised. */
  weights: z.number().int().nonnegative(),
  dequantised: z.number().int().nonnegative(),
  sourceSha256: z.string(),
  out: z.string(),
});
export type ImportOnnxResult = z.infer<typeof ImportOnnxResultSchema>;

/** Message that starts the worker's error when an ONNX file has no YOLOv8 parameters to rebuild from. */
export const NO_PYTORCH_SOURCE = 'no PyTorch source for this ONNX model';

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
