import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CvoptError, type ClassScore, type Detection, type ModelManifest } from '@cvopt/core';
import { datasetTaskOf, loadClassificationDataset, loadDetectionDataset, readLabels } from '@cvopt/datasets';
import { createOrtEngine, manifestPathFor, readManifest, type EngineId, type EngineInfo, type ExecutionProviderId } from '@cvopt/engines';
import { COCO80, inferManifestWithNotes, type ManifestOverrides } from '@cvopt/onnx';
import {
  classificationMetrics,
  cocoEvaluateFiles,
  evaluateDetections,
  postprocessClassification,
  postprocessDetections,
  preprocess,
  type CocoEvalSummary,
  type EvalImage,
  type PreprocessResult,
} from '@cvopt/vision';

/**
 * `cvopt eval`: the accuracy of one model on one engine over a dataset's val split, measured the way the runtime
 * will serve it (same decode, preprocess and postprocess), plus the pycocotools-compatible file-to-file mode.
 */

export const EVAL_ENGINES: Record<string, ExecutionProviderId> = {
  'ort-cpu': 'cpu',
  'ort-cuda': 'cuda',
  'ort-tensorrt': 'tensorrt',
  'ort-webgpu': 'webgpu',
};

export interface EvalOptions {
  model: string;
  data: string;
  engine?: EngineId;
  /** Detection confidence floor; mAP wants the low tail (COCO protocol: 0.001). */
  conf?: number;
  /** NMS IoU (default 0.7, as Ultralytics validates). */
  iou?: number;
  maxDetections?: number;
  /** Evaluate only the first N images of the split, in file order. */
  maxImages?: number;
  /** Write COCO-format detections here. */
  saveJson?: string;
  /** Used when no model.json is beside the model, and applied over it when there is one. */
  overrides?: Pick<ManifestOverrides, 'channelOrder' | 'scale' | 'classNames'>;
  intraOpNumThreads?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface EvalClassRow {
  classId: number;
  name: string;
  ap50: number;
  ap5095: number;
  gts: number;
}

export interface EvalResult {
  model: string;
  data: string;
  task: ModelManifest['task'];
  /** Where the manifest came from: the model.json beside the model, or inferred from the ONNX file. */
  manifestSource: string;
  /** Assumptions made: inferred manifest fields, name mismatches. */
  notes: string[];
  engine: EngineInfo;
  images: number;
  seconds: number;
  imagesPerSecond: number;
  detect?: { map50: number; map75: number; map5095: number; precision: number; recall: number; confidence: number; perClass: EvalClassRow[] };
  classify?: { top1: number; top5: number; n: number };
  savedJson?: { path: string; detections: number; categoryIds: 'coco91' | 'index' };
}

/** COCO's 91-id category numbering for its 80 detection classes, in the usual 80-class order. */
export const COCO80_TO_91: readonly number[] = [
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46,
  47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
];

const isCoco80 = (names: readonly string[]) => names.length === 80 && names.every((n, i) => n === COCO80[i]);

/** Class names from a file: one per line, or a YAML file with `names` (a list or an {index: name} map). */
export function readNamesFile(file: string): string[] {
  if (!existsSync(file)) throw new CvoptError('NOT_FOUND', `names file ${file} does not exist`, { where: { file }, hint: 'pass a text file with one class name per line, or a data.yaml' });
  const text = readFileSync(file, 'utf8');
  const ext = extname(file).toLowerCase();
  if (ext === '.yaml' || ext === '.yml') {
    const doc = parseYaml(text) as { names?: unknown } | null;
    const names = doc?.names;
    if (Array.isArray(names)) return names.map(String);
    if (names && typeof names === 'object') {
      const entries = Object.entries(names as Record<string, unknown>).sort((a, b) => Number(a[0]) - Number(b[0]));
      return entries.map(([, v]) => String(v));
    }
    throw new CvoptError('INVALID_ARGUMENT', `${file} has no names list`, { where: { file, field: 'names' }, hint: 'add names: [a, b, ...] or names: {0: a, 1: b}' });
  }
  const names = text
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (!names.length) throw new CvoptError('INVALID_ARGUMENT', `${file} lists no class names`, { where: { file }, hint: 'one class name per line' });
  return names;
}

/** The model's manifest: model.json beside it (with overrides applied), else inferred from the ONNX file. */
export function resolveManifest(model: string, overrides: EvalOptions['overrides'] = {}, fallbackNames?: string[]): { manifest: ModelManifest; source: string; notes: string[] } {
  const existing = manifestPathFor(model).find((p) => existsSync(p));
  if (existing) {
    const m = readManifest(model);
    const manifest: ModelManifest = {
      ...m,
      preprocess: { ...m.preprocess, ...(overrides.channelOrder ? { channelOrder: overrides.channelOrder } : {}), ...(overrides.scale ? { scale: overrides.scale } : {}) },
      ...(overrides.classNames ? { classNames: overrides.classNames } : {}),
    };
    return { manifest, source: existing, notes: [] };
  }
  try {
    const r = inferManifestWithNotes(model, overrides);
    return { manifest: r.manifest, source: 'inferred from the ONNX file', notes: r.notes };
  } catch (e) {
    // A model that does not carry its names can still be evaluated when the dataset supplies as many.
    if (fallbackNames && !overrides.classNames && e instanceof CvoptError && /class/i.test(e.message)) {
      const r = inferManifestWithNotes(model, { ...overrides, classNames: fallbackNames });
      return { manifest: r.manifest, source: 'inferred from the ONNX file', notes: [...r.notes, 'class names taken from the dataset'] };
    }
    throw e;
  }
}

function imageIdOf(path: string): number | string {
  const stem = basename(path, extname(path));
  return /^\d+$/.test(stem) ? Number(stem) : stem;
}

function checkOptions(o: EvalOptions): void {
  const num = (field: string, v: number | undefined, min: number, max: number, int = false) => {
    if (v === undefined) return;
    if (!Number.isFinite(v) || v < min || v > max || (int && !Number.isInteger(v))) {
      throw new CvoptError('INVALID_ARGUMENT', `${field} must be ${int ? 'an integer' : 'a number'} in [${min}, ${max}], got ${v}`, { where: { field } });
    }
  };
  num('conf', o.conf, 0, 1);
  num('iou', o.iou, 0, 1);
  num('maxImages', o.maxImages, 1, Number.MAX_SAFE_INTEGER, true);
  num('maxDetections', o.maxDetections, 1, 100_000, true);
  if (o.engine && !(o.engine in EVAL_ENGINES)) {
    throw new CvoptError('INVALID_ARGUMENT', `unknown engine "${o.engine}"; choose one of ${Object.keys(EVAL_ENGINES).join(', ')}`, { where: { field: 'engine' } });
  }
  if (!existsSync(o.model)) throw new CvoptError('NOT_FOUND', `model ${o.model} does not exist`, { where: { file: o.model }, hint: 'pass an ONNX file' });
}

function cancelled(): CvoptError {
  return new CvoptError('CANCELLED', 'evaluation was cancelled');
}

export async function evaluateModel(o: EvalOptions): Promise<EvalResult> {
  checkOptions(o);
  // The dataset's layout says the task: a data.yaml is a detection set, a folder of class folders a classification set.
  const task = datasetTaskOf(o.data);
  let images: { image: string; label: string | number }[];
  let datasetNames: string[];
  if (task === 'detect') {
    const ds = loadDetectionDataset(o.data);
    const split = ds.splits.val ?? ds.splits.test ?? ds.splits.train;
    if (!split?.length) throw new CvoptError('DATASET_INVALID', `${ds.yamlPath} has no val, test or train images`, { where: { file: ds.yamlPath, field: 'val' } });
    images = split.map((e) => ({ image: e.image, label: e.label }));
    datasetNames = ds.names;
  } else {
    const ds = loadClassificationDataset(o.data);
    const split = ds.splits.val ?? ds.splits.test ?? ds.splits.train;
    if (!split?.length) throw new CvoptError('DATASET_INVALID', `${o.data} has no images in its val, test or train split`, { where: { file: o.data } });
    images = split.map((e) => ({ image: e.image, label: e.classId }));
    datasetNames = ds.names;
  }
  if (o.maxImages !== undefined) images = images.slice(0, o.maxImages);

  const { manifest, source, notes } = resolveManifest(o.model, o.overrides, datasetNames);
  if (manifest.task !== task) {
    throw new CvoptError('DATASET_INVALID', `the model is a ${manifest.task === 'detect' ? 'detector' : 'classifier'} but ${o.data} is a ${task === 'detect' ? 'detection' : 'classification'} dataset`, {
      where: { file: o.data },
      hint: task === 'detect' ? 'pass a folder-per-class dataset for a classifier' : 'pass a data.yaml for a detector',
    });
  }
  const names = manifest.classNames;
  if (task === 'detect' && names.length !== datasetNames.length) {
    throw new CvoptError('DATASET_INVALID', `the model predicts ${names.length} classes but the dataset has ${datasetNames.length}`, {
      where: { file: o.data, field: 'names' },
      hint: 'evaluate on a dataset labelled with the model’s classes (same ids in the same order)',
    });
  }
  // A classifier's label ids follow the dataset's sorted folder names; map them to the model's ids by name when
  // every folder is one of the model's classes (an ImageNet model on an ImageNet subset), else demand equal lists.
  let labelMap: number[] | undefined;
  if (task === 'classify') {
    const byName = datasetNames.map((n) => names.indexOf(n));
    if (byName.every((i) => i >= 0)) labelMap = byName;
    else if (names.length !== datasetNames.length) {
      throw new CvoptError('DATASET_INVALID', `the model has ${names.length} classes but the dataset has ${datasetNames.length} class folders (${datasetNames.slice(0, 5).join(', ')}${datasetNames.length > 5 ? ', …' : ''}) and not every folder name is a model class`, {
        where: { file: o.data },
        hint: 'name the class folders after the model’s classNames (see model.json), or pass --names with the model’s class names',
      });
    }
  }
  const renamed = names.filter((n, i) => datasetNames[i] !== undefined && datasetNames[i] !== n).length;
  if (renamed && !labelMap) notes.push(`${renamed} class names differ between the model and the dataset; ids are compared by index`);

  const provider = EVAL_ENGINES[o.engine ?? 'ort-cpu'] ?? 'cpu';
  const engine = await createOrtEngine(o.model, manifest, { provider, ...(o.intraOpNumThreads ? { intraOpNumThreads: o.intraOpNumThreads } : {}) });
  const conf = o.conf ?? 0.001;
  const iou = o.iou ?? 0.7;
  const saved: { image_id: number | string; category_id: number; bbox: number[]; score: number }[] = [];
  const coco = isCoco80(names);
  const t0 = performance.now();
  try {
    const evalImages: EvalImage[] = [];
    const preds: ClassScore[][] = [];
    const labels: number[] = [];
    // Decode image i+1 in libvips' threads while ONNX Runtime runs image i.
    let next: Promise<PreprocessResult> | undefined = images[0] ? preprocess(images[0].image, manifest.preprocess) : undefined;
    for (let i = 0; i < images.length; i++) {
      if (o.signal?.aborted) throw cancelled();
      const img = images[i]!;
      const p = await next!;
      next = images[i + 1] ? preprocess(images[i + 1]!.image, manifest.preprocess) : undefined;
      next?.catch(() => undefined); // surfaced when awaited
      const out = await engine.run(p.tensor, p.dims, o.signal ? { signal: o.signal } : {});
      if (task === 'detect') {
        const dets: Detection[] = postprocessDetections(out.data, out.dims, manifest, p.meta, { confThreshold: conf, iouThreshold: iou, maxDetections: o.maxDetections ?? 300 });
        const W = p.meta.origWidth;
        const H = p.meta.origHeight;
        const lf = readLabels(String(img.label), { numClasses: names.length });
        const bad = lf.problems.find((x) => x.severity === 'error');
        if (bad) {
          throw new CvoptError('LABEL_INVALID', `${bad.message}`, { where: { file: bad.file, ...(bad.line ? { line: bad.line } : {}) }, hint: 'run `cvopt dataset check DATA` to see every problem' });
        }
        const gts = lf.boxes.map((b) => ({ classId: b.classId, box: [(b.cx - b.w / 2) * W, (b.cy - b.h / 2) * H, (b.cx + b.w / 2) * W, (b.cy + b.h / 2) * H] as [number, number, number, number] }));
        const imageId = imageIdOf(img.image);
        evalImages.push({ imageId, gts, dets });
        if (o.saveJson) {
          for (const d of dets) {
            const [x1, y1, x2, y2] = d.box;
            saved.push({
              image_id: imageId,
              category_id: coco ? (COCO80_TO_91[d.classId] ?? d.classId) : d.classId,
              bbox: [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
              score: round(d.score, 5),
            });
          }
        }
      } else {
        preds.push(postprocessClassification(out.data, out.dims, manifest, 5));
        const label = Number(img.label);
        labels.push(labelMap ? (labelMap[label] ?? -1) : label);
      }
      o.onProgress?.(i + 1, images.length);
    }
    const seconds = (performance.now() - t0) / 1000;
    const base = {
      model: o.model,
      data: o.data,
      task,
      manifestSource: source,
      notes,
      engine: engine.describe(),
      images: images.length,
      seconds,
      imagesPerSecond: seconds > 0 ? images.length / seconds : 0,
    };
    if (task === 'classify') {
      const m = classificationMetrics(preds, labels);
      return { ...base, classify: { top1: m.top1, top5: m.top5, n: m.n } };
    }
    const m = evaluateDetections(evalImages, { numClasses: names.length });
    const result: EvalResult = {
      ...base,
      detect: {
        map50: m.map50,
        map75: m.map75,
        map5095: m.map5095,
        precision: m.precision,
        recall: m.recall,
        confidence: m.confidence,
        perClass: m.perClass.map((c) => ({ classId: c.classId, name: names[c.classId] ?? String(c.classId), ap50: c.ap50, ap5095: c.ap5095, gts: c.gts })),
      },
    };
    if (o.saveJson) {
      writeFileSync(o.saveJson, JSON.stringify(saved));
      result.savedJson = { path: o.saveJson, detections: saved.length, categoryIds: coco ? 'coco91' : 'index' };
    }
    return result;
  } finally {
    await engine.close();
  }
}


function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** The 12 COCO bbox statistics of a results file against a ground-truth file, pycocotools-compatible. */
export async function evaluateCocoFiles(gt: string, dt: string): Promise<CocoEvalSummary> {
  return cocoEvaluateFiles(gt, dt);
}
