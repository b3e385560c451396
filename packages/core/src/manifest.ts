import { z } from 'zod';

/** model.json: everything a runtime needs to feed model.onnx and read its outputs. */

export const TaskSchema = z.enum(['detect', 'classify']);
export type Task = z.infer<typeof TaskSchema>;

export const PrecisionSchema = z.enum(['fp32', 'fp16', 'int8']);
export type Precision = z.infer<typeof PrecisionSchema>;

/** A dimension: a fixed size, or a symbolic name for a dynamic one. */
export const DimSchema = z.union([z.number().int().positive(), z.string().min(1)]);

export const PreprocessSchema = z.object({
  /** letterbox: keep aspect, pad to size; stretch: resize to size ignoring aspect; center-crop: resize short side then crop. */
  resize: z.enum(['letterbox', 'stretch', 'center-crop']),
  /** Network input [height, width]; at most 8192 each (a larger size is a hostile or broken manifest, not a model). */
  size: z.tuple([z.number().int().positive().max(8192), z.number().int().positive().max(8192)]),
  padValue: z.number().int().min(0).max(255).default(114),
  /** Multiplier applied to 0..255 pixel values before mean/std (1/255 for 0..1 inputs, 1 for 0..255). */
  scale: z.number().positive(),
  mean: z.tuple([z.number(), z.number(), z.number()]).default([0, 0, 0]),
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]).default([1, 1, 1]),
  channelOrder: z.enum(['RGB', 'BGR']),
  /** Letterbox padding is centred (Ultralytics) or at the bottom-right (YOLOX). */
  padPosition: z.enum(['center', 'top-left']).default('center'),
  stride: z.number().int().positive().default(32),
});
export type Preprocess = z.infer<typeof PreprocessSchema>;

export const OutputFormatSchema = z.enum(['yolov8', 'yolox', 'logits', 'probabilities']);
export type OutputFormat = z.infer<typeof OutputFormatSchema>;

export const ManifestInputSchema = z.object({
  name: z.string().min(1),
  shape: z.array(DimSchema).length(4),
  layout: z.literal('NCHW'),
  dtype: z.enum(['float32', 'float16', 'uint8']),
});

export const ManifestOutputSchema = z.object({
  name: z.string().min(1),
  format: OutputFormatSchema,
  shape: z.array(DimSchema),
  /** yolov8: class scores already passed through a sigmoid in the graph. */
  scoresActivated: z.boolean().default(true),
  /** yolox grid decode strides. */
  strides: z.array(z.number().int().positive()).optional(),
});

/** ONNX Runtime vs PyTorch on the same inputs, measured at export time. */
export const ParitySchema = z.object({
  samples: z.number().int().nonnegative(),
  maxAbsDiff: z.number().nonnegative(),
  /** max |onnx − torch| / (max |torch| + eps) */
  maxRelDiff: z.number().nonnegative(),
  cosine: z.number(),
  tolerance: z.number().positive(),
  detections: z
    .object({
      reference: z.number().int().nonnegative(),
      onnx: z.number().int().nonnegative(),
      matched: z.number().int().nonnegative(),
      meanIou: z.number().min(0).max(1),
      classAgreement: z.number().min(0).max(1),
    })
    .optional(),
  top1Agreement: z.number().min(0).max(1).optional(),
});
export type Parity = z.infer<typeof ParitySchema>;

export const ProvenanceSchema = z.object({
  source: z.string().optional(),
  sourceSha256: z.string().optional(),
  onnxSha256: z.string().optional(),
  trainingRun: z.string().optional(),
  hyperparameters: z.record(z.string(), z.unknown()).optional(),
  exportedBy: z.string().optional(),
  createdAt: z.string().optional(),
  parity: ParitySchema.optional(),
});

export const AccuracySchema = z.object({
  dataset: z.string().optional(),
  map50: z.number().min(0).max(1).optional(),
  map5095: z.number().min(0).max(1).optional(),
  top1: z.number().min(0).max(1).optional(),
  top5: z.number().min(0).max(1).optional(),
});
export type Accuracy = z.infer<typeof AccuracySchema>;

export const ModelManifestSchema = z.object({
  schemaVersion: z.literal(1).default(1),
  name: z.string().min(1),
  task: TaskSchema,
  input: ManifestInputSchema,
  preprocess: PreprocessSchema,
  output: ManifestOutputSchema,
  classNames: z.array(z.string().max(1000)).min(1).max(100_000),
  opset: z.number().int().positive(),
  precision: PrecisionSchema.default('fp32'),
  provenance: ProvenanceSchema.default({}),
  accuracy: AccuracySchema.optional(),
});
export type ModelManifest = z.infer<typeof ModelManifestSchema>;
export type ModelManifestInput = z.input<typeof ModelManifestSchema>;
