import { z } from 'zod';
import { ConstraintsSchema } from './selection.js';
import { EngineIdSchema } from './engines.js';
import { DEFAULT_EVAL_PROTOCOL, EvalProtocolSchema } from './eval-protocol.js';
import type { QueueName } from './job-contract.js';

/**
 * Payloads and results of every job a platform handler runs (JobHandler in job-contract.ts). The CLI builds these
 * from flags and runs the handler in-process; the API server validates a submission against the payload schema of
 * its kind (JOB_PAYLOAD_SCHEMAS) without importing any handler. Results are loose objects: the key fields are checked,
 * the rest is the handler's report and passes through.
 */

export const DeviceSchema = z.enum(['cpu', 'cuda']);
const path = z.string().min(1);
const posInt = z.number().int().positive();

// ---------------------------------------------------------------- train
export const TrainJobSchema = z.object({
  kind: z.literal('train'),
  model: path,
  data: path,
  out: path,
  epochs: posInt.default(50),
  imgsz: posInt.multipleOf(32).default(640),
  batch: posInt.default(16),
  device: DeviceSchema.default('cpu'),
  seed: z.number().int().nonnegative().default(0),
  hyp: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])).default({}),
  resume: z.boolean().default(false),
  /** Load a TorchScript --model (a program that may write files); off: such a file is refused. */
  trustTorchscript: z.boolean().default(false),
});
export type TrainJob = z.infer<typeof TrainJobSchema>;

/** The train payload's fields without the cross-field rule, so the API server can pick the options it accepts. */
export const TrainPayloadFields = TrainJobSchema.omit({ kind: true })
  .partial({ model: true, data: true })
  .extend({
    /** Data-loading processes in the worker; default: the worker's own choice. */
    workers: z.number().int().nonnegative().optional(),
    /** GPU memory the run may take, MiB (CUDA only); past it the run fails with GPU_MEMORY_EXHAUSTED. */
    vramMb: posInt.optional(),
    /** A YAML/JSON file of hyperparameters (name: value); the worker's verdict on a key points at its line. */
    hypFile: path.optional(),
    /** Stop after this many epochs without a better validation fitness (0 = never); the worker's default is 100. */
    patience: z.number().int().nonnegative().optional(),
    /** Start from these weights (.pt, .pkl or YOLOv8 .onnx) instead of the model's random initialisation. */
    weights: path.optional(),
    /** Train into an --out folder that already holds files (overwriting its checkpoints) instead of refusing. */
    existOk: z.boolean().default(false),
  });
export const TrainPayloadSchema = TrainPayloadFields.refine((p) => p.resume || (p.model && p.data), { message: 'model and data are required unless resuming', path: ['model'] });
export type TrainPayload = z.input<typeof TrainPayloadSchema>;
export const TrainResultSchema = z.looseObject({ best: z.string(), last: z.string(), epochs: z.number(), metrics: z.record(z.string(), z.number()) });

// ---------------------------------------------------------------- export
export const ExportJobSchema = z.object({
  kind: z.literal('export'),
  checkpoint: path,
  out: path,
  imgsz: posInt.multipleOf(32).optional(),
  dynamic: z.boolean().default(false),
  opset: posInt.optional(),
  /** Load a TorchScript checkpoint (a program that may write files); off: such a file is refused. */
  trustTorchscript: z.boolean().default(false),
});
export type ExportJob = z.infer<typeof ExportJobSchema>;

export const ExportPayloadSchema = ExportJobSchema.omit({ kind: true }).extend({
  /** Image files or a directory of images for the parity check. */
  samples: z.union([path, z.array(path)]).optional(),
  /** Relative tolerance of the parity check (default 1e-3). */
  tolerance: z.number().positive().default(1e-3),
  /** Detection confidence threshold used when comparing detections after NMS. */
  confThreshold: z.number().min(0).max(1).default(0.25),
});
export type ExportPayload = z.input<typeof ExportPayloadSchema>;
export const ExportResultSchema = z.looseObject({ onnx: z.string(), manifest: z.string(), task: z.enum(['detect', 'classify']) });

// ---------------------------------------------------------------- eval
export const ManifestFixSchema = z.object({
  channelOrder: z.enum(['RGB', 'BGR']).optional(),
  scale: z.number().positive().optional(),
  classNames: z.array(z.string()).min(1).optional(),
});

export const EvalPayloadSchema = z.object({
  /** ONNX file, .pt/.pkl checkpoint or preset. */
  model: path,
  data: path,
  /** Any ONNX Runtime engine id; INT8 / FP16 / TensorRT ids run that conversion of the model. */
  engine: EngineIdSchema.default('ort-cpu'),
  protocol: EvalProtocolSchema.partial().optional(),
  maxImages: posInt.optional(),
  saveJson: path.optional(),
  /** The evaluated images' labels as COCO ground truth (to score saveJson with pycocotools or `--coco-gt`). */
  saveGt: path.optional(),
  overrides: ManifestFixSchema.optional(),
  intraOpNumThreads: posInt.optional(),
  calib: posInt.optional(),
  cacheDir: path.optional(),
});
export type EvalPayload = z.input<typeof EvalPayloadSchema>;
export const EvalResultSchema = z.looseObject({
  model: z.string(),
  task: z.enum(['detect', 'classify']),
  images: z.number(),
  protocol: EvalProtocolSchema.optional(),
  detect: z.looseObject({ map50: z.number(), map5095: z.number() }).optional(),
  classify: z.looseObject({ top1: z.number(), top5: z.number() }).optional(),
});

// ---------------------------------------------------------------- bench
export const BenchPayloadSchema = z.object({
  model: path,
  data: path,
  video: path.optional(),
  /** Engines to consider (default all). */
  engines: z.array(EngineIdSchema).min(1).optional(),
  /** report.json to write (report.md and chart.svg beside it). */
  out: path.regex(/\.json$/i, 'must end in .json'),
  iters: posInt.optional(),
  warmup: z.number().int().nonnegative().optional(),
  minTimeMs: z.number().nonnegative().optional(),
  maxImages: posInt.optional(),
  batchSizes: z.array(posInt).min(1).optional(),
  maxFrames: posInt.optional(),
  threads: z.number().int().nonnegative().optional(),
  /** ONNX Runtime's threads spin, its own default (default: not, as the runtime serves; see bench's MeasureSettings). */
  spinning: z.boolean().optional(),
  calib: posInt.optional(),
  protocol: EvalProtocolSchema.partial().optional(),
  limits: z.object({ timeS: z.number().positive(), rssMb: z.number().positive() }).partial().optional(),
  pytorchDevice: DeviceSchema.optional(),
  /** Root of the model cache (default ~/.cache/cvopt/models). */
  cacheDir: path.optional(),
});
export type BenchPayload = z.input<typeof BenchPayloadSchema>;
export const BenchJobSchema = BenchPayloadSchema.extend({ kind: z.literal('bench') });
export type BenchJob = z.infer<typeof BenchJobSchema>;
export const BenchResultSchema = z.looseObject({ report: z.looseObject({ engines: z.array(z.unknown()) }), decision: z.looseObject({ winner: EngineIdSchema.nullable() }), files: z.record(z.string(), z.string()) });

// ---------------------------------------------------------------- tune
export const STRATEGY_IDS = ['tournament', 'elitist', 'adaptive', 'constrained', 'nsga2'] as const;

export const TunePayloadSchema = z.object({
  /** Preset (yolov8p, yolov8n, …) or a .pt/.pkl file. */
  model: path,
  data: path,
  out: path,
  strategy: z.enum(STRATEGY_IDS),
  generations: posInt.default(5),
  population: z.number().int().min(2).default(8),
  epochs: posInt.default(10),
  imgsz: posInt.multipleOf(32).default(640),
  batch: posInt.default(16),
  device: DeviceSchema.default('cpu'),
  seed: z.number().int().nonnegative().default(0),
  /** Latency target engine: any ONNX Runtime id (ort-cpu-int8 measures each trial's INT8 QDQ conversion). */
  engine: EngineIdSchema.default('ort-cpu'),
  targetLatencyMs: z.number().positive().optional(),
  latencyWeight: z.number().nonnegative().optional(),
  wMap50: z.number().positive().optional(),
  wMap5095: z.number().positive().optional(),
  latencyRuns: posInt.default(30),
  spaceFile: path.optional(),
  constraints: z.object({ maxLatencyMs: z.number().positive(), maxSizeMb: z.number().positive(), minMap50: z.number().gt(0).max(1) }).partial().optional(),
  sizeObjective: z.boolean().default(false),
  resume: z.boolean().default(false),
  cacheDir: path.optional(),
  maxParallel: posInt.default(1),
});
export type TunePayload = z.input<typeof TunePayloadSchema>;
export const TuneJobSchema = TunePayloadSchema.extend({ kind: z.literal('tune') });
export type TuneJob = z.infer<typeof TuneJobSchema>;
export const TuneResultSchema = z.looseObject({ runDir: z.string(), best: z.looseObject({ id: z.number() }), trials: z.array(z.unknown()) });

// ---------------------------------------------------------------- quantize
export const QuantizePayloadSchema = z.object({
  model: path,
  out: path.regex(/\.onnx$/i, 'must end in .onnx'),
  data: path,
  method: z.enum(['minmax', 'percentile', 'entropy']).default('percentile'),
  calib: posInt.default(64),
  /** Evaluation images for the accuracy guard (default the whole evaluation split). */
  evalImages: posInt.optional(),
  percentile: z.number().min(50).max(100).default(99.99),
  activations: z.enum(['uint8', 'int8']).default('uint8'),
  excludeNodes: z.array(z.string()).default([]),
  excludeOps: z.array(z.string()).default([]),
  /** Largest accepted accuracy drop in points; sensitive layers return to float until met. */
  maxDrop: z.number().nonnegative().optional(),
  fp16: z.boolean().default(false),
  intraOpNumThreads: z.number().int().nonnegative().optional(),
  protocol: EvalProtocolSchema.partial().optional(),
});
export type QuantizePayload = z.input<typeof QuantizePayloadSchema>;
export const QuantizeResultSchema = z.looseObject({ out: z.string(), precision: z.enum(['int8', 'fp16']), drop: z.number() });

// ---------------------------------------------------------------- check
export const CheckPayloadSchema = z.object({
  model: path,
  targets: z.array(z.string().min(1)).min(1).optional(),
  /** Create a real ONNX Runtime CPU session to confirm the ort-cpu verdict (default true). */
  session: z.boolean().default(true),
  /** Also write the report here as JSON (the server keeps it with the job). */
  out: path.optional(),
});
export type CheckPayload = z.input<typeof CheckPayloadSchema>;
export const CheckResultSchema = z.looseObject({ model: z.string(), blocked: z.boolean(), targets: z.array(z.unknown()) });

// ---------------------------------------------------------------- select
export const SelectPayloadSchema = z.object({
  /** report.json written by bench. */
  report: path,
  constraints: ConstraintsSchema.default({}),
  /** Where to write decision.json (default beside the report). */
  out: path.optional(),
});
export type SelectPayload = z.input<typeof SelectPayloadSchema>;
export const SelectResultSchema = z.looseObject({ winner: EngineIdSchema.nullable(), reason: z.string(), file: z.string() });

// ---------------------------------------------------------------- quickstart
export const QuickstartPayloadSchema = z.object({
  out: path,
  preset: z.string().min(1).optional(),
  images: z.number().int().min(20).optional(),
  imgsz: posInt.multipleOf(32).optional(),
  epochs: posInt.optional(),
  batch: posInt.optional(),
  seed: z.number().int().nonnegative().optional(),
  engines: z.array(EngineIdSchema).min(1).optional(),
  video: path.optional(),
});
export type QuickstartPayload = z.input<typeof QuickstartPayloadSchema>;
export const QuickstartResultSchema = z.looseObject({ out: z.string(), decision: z.looseObject({ winner: EngineIdSchema.nullable() }) });

// ---------------------------------------------------------------- package (the packager's)
export const PackageJobSchema = z.object({
  kind: z.literal('package'),
  model: path,
  engine: EngineIdSchema,
  out: path,
  gpu: z.boolean().default(false),
  constraints: ConstraintsSchema.optional(),
});
export type PackageJob = z.infer<typeof PackageJobSchema>;

/**
 * The package job: the artifact of a selection (`decision`, the file `cvopt select` wrote) or of a model on an
 * engine (`model` + `engine`). `gpu` and `constraints` are accepted for the older submit shape and ignored: the
 * engine decides the variant.
 */
export const PackagePayloadFields = z.object({
    decision: path.optional(),
    model: path.optional(),
    engine: EngineIdSchema.optional(),
    out: path,
    name: z.string().min(1).max(63).optional(),
    limits: z.object({ cpus: z.number().positive().optional(), memoryMb: z.number().int().min(128).optional() }).optional(),
    gpu: z.boolean().optional(),
    constraints: ConstraintsSchema.optional(),
  });
export const PackagePayloadSchema = PackagePayloadFields.refine((p) => p.decision !== undefined || (p.model !== undefined && p.engine !== undefined), { message: 'name a decision.json, or a model and an engine', path: ['decision'] });
export type PackagePayload = z.input<typeof PackagePayloadSchema>;
export const PackageResultSchema = z.looseObject({ dir: z.string(), tarball: z.string(), engine: EngineIdSchema });

export const JobPayloadSchema = z.discriminatedUnion('kind', [TrainJobSchema, ExportJobSchema, BenchJobSchema, TuneJobSchema, PackageJobSchema]);
export type JobPayload = z.infer<typeof JobPayloadSchema>;

// ---------------------------------------------------------------- predict / track
/**
 * `cvopt predict` / `cvopt track` (platform jobs/predict.ts): a model on images, folders, videos or streams. The
 * detection options share the evaluation protocol's defaults (conf aside: 0.25 for prediction).
 */
export const PredictPayloadSchema = z.object({
  model: z.string().min(1),
  source: z.string().min(1),
  /** Engine id; default: the artifact's engine, else ort-cpu. */
  engine: EngineIdSchema.optional(),
  conf: z.number().min(0).max(1).default(0.25),
  /** NMS IoU, max detections and multi-label default to the evaluation protocol's (DEFAULT_EVAL_PROTOCOL), so
   * predict at --conf 0.001 gives exactly `cvopt eval`'s detections. */
  iou: z.number().min(0).max(1).default(DEFAULT_EVAL_PROTOCOL.iou),
  /** Keep only these class ids. */
  classes: z.array(z.number().int().nonnegative()).optional(),
  maxDet: z.number().int().min(1).max(100_000).default(DEFAULT_EVAL_PROTOCOL.maxDetections),
  /** One candidate per class above conf instead of the best class only (the evaluation protocol's default). */
  multiLabel: z.boolean().default(DEFAULT_EVAL_PROTOCOL.multiLabel),
  /** Dataset to calibrate on when an INT8 engine's model has to be built (the shared engine-variant cache). */
  data: z.string().min(1).optional(),
  /** Root of the model cache (default: CVOPT_CACHE_DIR or ~/.cache/cvopt/models). */
  cacheDir: z.string().min(1).optional(),
  /** Square network input size; only for models whose input size is dynamic. */
  imgsz: z.number().int().min(32).max(8192).optional(),
  /** Images or frames per engine run (models with a dynamic batch dimension). */
  batch: z.number().int().min(1).max(256).default(1),
  /** Classification: how many classes to report. */
  topk: z.number().int().min(1).max(100).default(5),
  save: z.boolean().default(false),
  saveTxt: z.boolean().default(false),
  saveConf: z.boolean().default(false),
  saveJson: z.boolean().default(false),
  saveCrop: z.boolean().default(false),
  saveMot: z.boolean().default(false),
  showLabels: z.boolean().default(true),
  showConf: z.boolean().default(true),
  lineWidth: z.number().int().min(1).max(64).optional(),
  /** Use every n-th video frame. */
  vidStride: z.number().int().min(1).max(1000).default(1),
  /** Stop each video after this many frames read (before the stride). */
  maxFrames: z.number().int().min(1).optional(),
  /** Run folder; `exp` becomes `exp2`, `exp3`, … when it exists, unless existOk. */
  out: z.string().default('runs/predict/exp'),
  existOk: z.boolean().default(false),
  track: z.boolean().default(false),
  tracker: z
    .object({
      highThresh: z.number(),
      lowThresh: z.number(),
      newTrackThresh: z.number(),
      matchIou: z.number(),
      lowMatchIou: z.number(),
      unconfirmedMatchIou: z.number(),
      confirmHits: z.number().int(),
      trackBuffer: z.number().int(),
      fuseScore: z.boolean(),
      classAware: z.boolean(),
    })
    .partial()
    .optional(),
  /** Items held between two pipeline stages (default 4): bounds memory, keeps every stage busy. */
  queueDepth: z.number().int().min(1).max(256).default(4),
  /** x264 quality of annotated video (default 23). */
  crf: z.number().int().min(0).max(51).default(23),
  intraOpNumThreads: z.number().int().min(0).optional(),
  /**
   * Whether ONNX Runtime's idle threads busy-wait between runs (its own default). Off by default, as in the runtime
   * service: spinning threads hold the cores the decode and preprocess of the next frame need.
   */
  spinning: z.boolean().default(false),
});
export type PredictPayload = z.input<typeof PredictPayloadSchema>;

// ---------------------------------------------------------------- eval-track
/** `cvopt eval-track`: a tracker's MOTChallenge file scored against ground truth. */
export const EvalTrackPayloadSchema = z.object({
  gt: z.string().min(1),
  pred: z.string().min(1),
  /** Least IoU for a ground-truth box and a prediction to correspond (default 0.5). */
  iou: z.number().min(0).max(1).default(0.5),
  /** Ground-truth boxes less visible than this are dropped (default 0). */
  minVisibility: z.number().min(0).max(1).default(0),
});
export type EvalTrackPayload = z.input<typeof EvalTrackPayloadSchema>;

/** Every job kind, its payload schema and its queue: what the API server validates a submission against. */
export const JOB_PAYLOAD_SCHEMAS = {
  train: TrainPayloadSchema,
  tune: TunePayloadSchema,
  export: ExportPayloadSchema,
  eval: EvalPayloadSchema,
  bench: BenchPayloadSchema,
  quantize: QuantizePayloadSchema,
  check: CheckPayloadSchema,
  select: SelectPayloadSchema,
  quickstart: QuickstartPayloadSchema,
  package: PackagePayloadSchema,
  predict: PredictPayloadSchema,
  'eval-track': EvalTrackPayloadSchema,
} as const;
export type JobKind = keyof typeof JOB_PAYLOAD_SCHEMAS;

/** Which queue a job goes to; training never starves inference. */
export const QUEUE_OF: Record<JobKind, QueueName> = {
  train: 'training',
  tune: 'training',
  quickstart: 'training',
  export: 'packaging',
  package: 'packaging',
  eval: 'inference',
  bench: 'inference',
  quantize: 'packaging',
  check: 'inference',
  select: 'inference',
  predict: 'inference',
  'eval-track': 'inference',
};
