import { CvoptError, DEFAULT_EVAL_PROTOCOL, EvalProtocolSchema, parseWith, type ClassScore, type Detection, type EvalProtocol, type ModelManifest } from '@cvopt/core';
import { loadClassificationDataset, loadDetectionDataset, readLabels } from '@cvopt/datasets';
import { createOrtEngine, type Engine, type OrtEngineOptions } from '@cvopt/engines';
import { classificationMetrics, evaluateDetections, postprocessClassification, postprocessDetections, preprocess, type EvalImage, type LetterboxMeta, type PreprocessResult } from '@cvopt/vision';
import type { Sample } from './calibrate.js';

/**
 * The one accuracy evaluator. eval, the quantize guard, bench (per engine, from the outputs its child collected), tune
 * and the trainer's validation contract score models through it, under one protocol (core's EvalProtocol: Ultralytics
 * validation by default), one split rule and one bad-label rule:
 * - split: evaluation reads `val`, else `test`, else `train`; calibration reads `train`, else `val` (evaluationSplit).
 * - labels: a label file with an error (bad class id, wrong column count, non-numeric value, box outside the image)
 *   fails with LABEL_INVALID naming file:line; nothing is skipped silently (`cvopt dataset check` lists them all).
 */

export interface LabelledImage {
  image: string;
  /** Detection: YOLO label file path; classification: the class id. */
  label: string | number;
}

export type SplitPurpose = 'evaluate' | 'calibrate';

/** The images of a dataset for a task under the one split rule (see the module comment). */
export function datasetImages(data: string, task: ModelManifest['task'], purpose: SplitPurpose = 'evaluate'): { images: LabelledImage[]; names: string[]; split: string } {
  const order = purpose === 'evaluate' ? (['val', 'test', 'train'] as const) : (['train', 'val'] as const);
  if (task === 'detect') {
    const ds = loadDetectionDataset(data);
    const split = order.find((s) => ds.splits[s]?.length) ?? order[0];
    return { images: (ds.splits[split] ?? []).map((e) => ({ image: e.image, label: e.label })), names: ds.names, split };
  }
  const ds = loadClassificationDataset(data);
  const split = order.find((s) => ds.splits[s]?.length) ?? order[0];
  return { images: (ds.splits[split] ?? []).map((e) => ({ image: e.image, label: e.classId })), names: ds.names, split };
}

/** Every k-th image so a small calibration set still spans the dataset (file order is often by source or class). */
export function spread<T>(items: readonly T[], n: number): T[] {
  if (n >= items.length) return [...items];
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(items[Math.floor((i * items.length) / n)] as T);
  return out;
}

export async function calibrationSamples(images: readonly LabelledImage[], manifest: ModelManifest): Promise<Sample[]> {
  const out: Sample[] = [];
  for (const img of images) {
    const p = await preprocess(img.image, manifest.preprocess);
    out.push({ feeds: { [manifest.input.name]: { data: p.tensor, dims: p.dims } } });
  }
  return out;
}

/** Ground-truth boxes of one YOLO label file in original pixels; any error row is LABEL_INVALID with file:line. */
export function groundTruth(labelFile: string, numClasses: number, width: number, height: number): EvalImage['gts'] {
  const lf = readLabels(labelFile, { numClasses });
  const bad = lf.problems.find((x) => x.severity === 'error');
  if (bad) {
    throw new CvoptError('LABEL_INVALID', bad.message, { where: { file: bad.file, ...(bad.line ? { line: bad.line } : {}) }, hint: 'fix the label row, or run `cvopt dataset check DATA` to see every problem' });
  }
  return lf.boxes.map((b) => ({ classId: b.classId, box: [(b.cx - b.w / 2) * width, (b.cy - b.h / 2) * height, (b.cx + b.w / 2) * width, (b.cy + b.h / 2) * height] as [number, number, number, number] }));
}

export interface ClassAccuracy {
  classId: number;
  name: string;
  ap50: number;
  ap5095: number;
  gts: number;
}

export interface AccuracyResult {
  task: ModelManifest['task'];
  images: number;
  /** Detection only: how the detections were produced. */
  protocol?: EvalProtocol;
  /** detect: mAP50, mAP75, mAP50-95, and P/R at the best mean-F1 confidence; classify: top-1 and top-5. */
  map50?: number;
  map75?: number;
  map5095?: number;
  precision?: number;
  recall?: number;
  confidence?: number;
  top1?: number;
  top5?: number;
  perClass?: ClassAccuracy[];
}

/**
 * Accumulates one model's raw outputs over labelled images and scores them: the postprocessing (decode + NMS under the
 * protocol) and the metric are here and nowhere else. `add` returns what it decoded, for callers that save detections.
 */
/**
 * A detector's raw output → detections under an evaluation protocol: the one decode that `cvopt eval` (AccuracyMeter)
 * and `cvopt predict` share, so the same image under the same protocol gives the same boxes.
 */
export function protocolDetections(out: { data: Float32Array; dims: readonly number[] }, manifest: ModelManifest, meta: LetterboxMeta, p: EvalProtocol, batchIndex = 0): Detection[] {
  return postprocessDetections(out.data, out.dims, manifest, meta, { confThreshold: p.conf, iouThreshold: p.iou, maxDetections: p.maxDetections, multiLabel: p.multiLabel, classAware: true }, batchIndex);
}

export class AccuracyMeter {
  readonly protocol: EvalProtocol;
  private readonly evalImages: EvalImage[] = [];
  private readonly preds: ClassScore[][] = [];
  private readonly labels: number[] = [];

  constructor(
    private readonly manifest: ModelManifest,
    protocol: Partial<EvalProtocol> = {},
    /** Classification: dataset label id → model class id (a model evaluated on a subset of its classes). */
    private readonly labelMap?: readonly number[],
  ) {
    this.protocol = parseWith(EvalProtocolSchema, { ...DEFAULT_EVAL_PROTOCOL, ...protocol }, { what: 'evaluation protocol', code: 'INVALID_ARGUMENT' });
  }

  get count(): number {
    return this.manifest.task === 'detect' ? this.evalImages.length : this.preds.length;
  }

  add(out: { data: Float32Array; dims: readonly number[] }, meta: LetterboxMeta, image: LabelledImage, imageId: number | string = this.count, batchIndex = 0): Detection[] | ClassScore[] {
    if (this.manifest.task === 'detect') {
      const dets = protocolDetections(out, this.manifest, meta, this.protocol, batchIndex);
      const gts = groundTruth(String(image.label), this.manifest.classNames.length, meta.origWidth, meta.origHeight);
      this.evalImages.push({ imageId, gts, dets });
      return dets;
    }
    const scores = postprocessClassification(out.data, out.dims, this.manifest, 5, batchIndex);
    const label = Number(image.label);
    this.preds.push(scores);
    this.labels.push(this.labelMap ? (this.labelMap[label] ?? -1) : label);
    return scores;
  }

  result(): AccuracyResult {
    const names = this.manifest.classNames;
    if (this.manifest.task === 'classify') {
      const m = classificationMetrics(this.preds, this.labels);
      return { task: 'classify', images: this.preds.length, top1: m.top1, top5: m.top5 };
    }
    const m = evaluateDetections(this.evalImages, { numClasses: names.length });
    return {
      task: 'detect',
      images: this.evalImages.length,
      protocol: this.protocol,
      map50: m.map50,
      map75: m.map75,
      map5095: m.map5095,
      precision: m.precision,
      recall: m.recall,
      confidence: m.confidence,
      perClass: m.perClass.map((c) => ({ classId: c.classId, name: names[c.classId] ?? String(c.classId), ap50: c.ap50, ap5095: c.ap5095, gts: c.gts })),
    };
  }
}

export interface EvaluateOptions {
  protocol?: Partial<EvalProtocol>;
  labelMap?: readonly number[];
  /** Image id per image for saved detections (default its index). */
  imageId?: (image: LabelledImage, index: number) => number | string;
  /** Called with each image's decoded output and its letterbox (original size). */
  onImage?: (image: LabelledImage, imageId: number | string, decoded: Detection[] | ClassScore[], meta: LetterboxMeta) => void;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** Accuracy of a loaded engine over labelled images: preprocess (the next image while this one runs), run, meter. */
export async function evaluateEngine(engine: Engine, images: readonly LabelledImage[], opts: EvaluateOptions = {}): Promise<AccuracyResult> {
  const manifest = engine.manifest;
  const meter = new AccuracyMeter(manifest, opts.protocol, opts.labelMap);
  let next: Promise<PreprocessResult> | undefined = images[0] ? preprocess(images[0].image, manifest.preprocess) : undefined;
  for (let i = 0; i < images.length; i++) {
    if (opts.signal?.aborted) throw new CvoptError('CANCELLED', 'evaluation was cancelled');
    const img = images[i]!;
    const p = await next!;
    next = images[i + 1] ? preprocess(images[i + 1]!.image, manifest.preprocess) : undefined;
    next?.catch(() => undefined); // surfaced when awaited
    const out = await engine.run(p.tensor, p.dims, opts.signal ? { signal: opts.signal } : {});
    const id = opts.imageId ? opts.imageId(img, i) : i;
    const decoded = meter.add(out, p.meta, img, id);
    opts.onImage?.(img, id, decoded, p.meta);
    opts.onProgress?.(i + 1, images.length);
  }
  return meter.result();
}

/** Accuracy of an ONNX model file on ONNX Runtime (CPU unless engine options say otherwise). */
export async function evaluateOnnx(modelPath: string, manifest: ModelManifest, images: readonly LabelledImage[], opts: EvaluateOptions & { engine?: OrtEngineOptions; intraOpNumThreads?: number } = {}): Promise<AccuracyResult> {
  const engine = await createOrtEngine(modelPath, manifest, { ...(opts.intraOpNumThreads ? { intraOpNumThreads: opts.intraOpNumThreads } : {}), ...opts.engine });
  try {
    return await evaluateEngine(engine, images, opts);
  } finally {
    await engine.close();
  }
}

/** The headline figure of an accuracy result, in [0,1]: mAP50 for detectors, top-1 for classifiers. */
export function headline(a: AccuracyResult): number {
  const v = a.task === 'detect' ? a.map50 : a.top1;
  if (v === undefined) throw new CvoptError('INTERNAL', 'accuracy result without its headline metric');
  return v;
}
