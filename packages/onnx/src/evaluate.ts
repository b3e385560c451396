import { CvoptError, type ModelManifest } from '@cvopt/core';
import { loadClassificationDataset, loadDetectionDataset, readLabels } from '@cvopt/datasets';
import { createOrtEngine } from '@cvopt/engines';
import { classificationMetrics, evaluateDetections, postprocessClassification, postprocessDetections, preprocess, type EvalImage } from '@cvopt/vision';
import type { Sample } from './calibrate.js';

/** Real images for calibration and the accuracy guard, read and preprocessed the way the runtime will. */

export interface LabelledImage {
  image: string;
  /** Detection: YOLO label file path; classification: the class id. */
  label: string | number;
}

/** The images of a dataset for a task: detection data.yaml (val split, else train) or a folder-per-class set. */
export function datasetImages(data: string, task: ModelManifest['task'], split: 'val' | 'train' = 'val'): { images: LabelledImage[]; names: string[] } {
  if (task === 'detect') {
    const ds = loadDetectionDataset(data);
    const entries = ds.splits[split] ?? ds.splits.val ?? ds.splits.train ?? [];
    return { images: entries.map((e) => ({ image: e.image, label: e.label })), names: ds.names };
  }
  const ds = loadClassificationDataset(data);
  const entries = ds.splits[split] ?? ds.splits.val ?? ds.splits.train ?? [];
  return { images: entries.map((e) => ({ image: e.image, label: e.classId })), names: ds.names };
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

export interface AccuracyResult {
  task: ModelManifest['task'];
  images: number;
  /** detect: mAP50 and mAP50-95; classify: top-1 and top-5. */
  map50?: number;
  map5095?: number;
  top1?: number;
  top5?: number;
  perClass?: { classId: number; name: string; ap50: number; gts: number }[];
}

export interface EvaluateOptions {
  intraOpNumThreads?: number;
  confThreshold?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Accuracy of an ONNX model on labelled images, on ONNX Runtime CPU through the engine adapter. */
export async function evaluateOnnx(modelPath: string, manifest: ModelManifest, images: readonly LabelledImage[], opts: EvaluateOptions = {}): Promise<AccuracyResult> {
  const engine = await createOrtEngine(modelPath, manifest, opts.intraOpNumThreads ? { intraOpNumThreads: opts.intraOpNumThreads } : {});
  try {
    if (manifest.task === 'detect') {
      const evalImages: EvalImage[] = [];
      let i = 0;
      for (const img of images) {
        const p = await preprocess(img.image, manifest.preprocess);
        const out = await engine.run(p.tensor, p.dims);
        // mAP wants the low-confidence tail: 0.001 as in the COCO protocol.
        const dets = postprocessDetections(out.data, out.dims, manifest, p.meta, { confThreshold: opts.confThreshold ?? 0.001, iouThreshold: 0.65 });
        const W = p.meta.origWidth;
        const H = p.meta.origHeight;
        const labels = readLabels(String(img.label), { numClasses: manifest.classNames.length }).boxes;
        const gts = labels.map((b) => ({ classId: b.classId, box: [(b.cx - b.w / 2) * W, (b.cy - b.h / 2) * H, (b.cx + b.w / 2) * W, (b.cy + b.h / 2) * H] as [number, number, number, number] }));
        evalImages.push({ imageId: i, gts, dets });
        opts.onProgress?.(++i, images.length);
      }
      const m = evaluateDetections(evalImages, { numClasses: manifest.classNames.length });
      return {
        task: 'detect',
        images: images.length,
        map50: m.map50,
        map5095: m.map5095,
        perClass: m.perClass.map((c) => ({ classId: c.classId, name: manifest.classNames[c.classId] ?? String(c.classId), ap50: c.ap50, gts: c.gts })),
      };
    }
    const preds = [];
    const labels: number[] = [];
    let i = 0;
    for (const img of images) {
      const p = await preprocess(img.image, manifest.preprocess);
      const out = await engine.run(p.tensor, p.dims);
      preds.push(postprocessClassification(out.data, out.dims, manifest, 5));
      labels.push(Number(img.label));
      opts.onProgress?.(++i, images.length);
    }
    const m = classificationMetrics(preds, labels);
    return { task: 'classify', images: images.length, top1: m.top1, top5: m.top5 };
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
