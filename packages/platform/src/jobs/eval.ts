import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CvoptError, DEFAULT_EVAL_PROTOCOL, ENGINES, EvalProtocolSchema, ORT_ENGINE_IDS, parseWith, type Detection, type EngineId, type EvalProtocol, type ModelManifest } from '@cvopt/core';
import { datasetTaskOf } from '@cvopt/datasets';
import { createOrtEngine, type EngineInfo } from '@cvopt/engines';
import { COCO80, datasetImages, evaluateEngine, groundTruth, type ClassAccuracy } from '@cvopt/onnx';
import { cocoEvaluateFiles, type CocoEvalSummary } from '@cvopt/vision';
import { resolveModel, type ManifestFix } from '../models/resolve.js';
import { assertEngineAvailable, engineModel } from '../models/variants.js';

/**
 * `cvopt eval`: the accuracy of one model on one engine over a dataset's evaluation split, measured the way the
 * runtime will serve it (same decode, preprocess and postprocess) by the one evaluator (@cvopt/onnx evaluateEngine)
 * under the recorded protocol, plus the pycocotools-compatible file-to-file mode. Any ONNX Runtime engine id runs:
 * its transform (INT8 QDQ, FP16, TensorRT) is built through the same cached path bench uses.
 */

export interface EvalOptions {
  /** An ONNX file, a .pt/.pkl checkpoint or a preset (resolved by resolveModel). */
  model: string;
  data: string;
  /** Any ONNX Runtime engine id of core's ENGINES (default ort-cpu). */
  engine?: EngineId;
  /** Detection protocol; unset fields take DEFAULT_EVAL_PROTOCOL (Ultralytics validation). */
  protocol?: Partial<EvalProtocol>;
  /** Evaluate only the first N images of the split, in file order. */
  maxImages?: number;
  /** Write COCO-format detections here. */
  saveJson?: string;
  /** Write the evaluated images' labels as a COCO ground-truth file here (same image and category ids as saveJson). */
  saveGt?: string;
  /** Used when no model.json is beside the model, and applied over it when there is one. */
  overrides?: ManifestFix;
  intraOpNumThreads?: number;
  /** INT8 engines: calibration images for the (cached) quantization. */
  calib?: number;
  /** Root of the model cache (default ~/.cache/cvopt/models). */
  cacheDir?: string;
  onProgress?: (done: number, total: number) => void;
  onStage?: (message: string) => void;
  signal?: AbortSignal;
}

export type EvalClassRow = ClassAccuracy;

export interface EvalResult {
  model: string;
  data: string;
  task: ModelManifest['task'];
  /** Where the manifest came from: the model.json beside the model, or inferred from the ONNX file. */
  manifestSource: string;
  /** Assumptions made: inferred manifest fields, name mismatches. */
  notes: string[];
  engine: EngineInfo;
  /** The model file the engine ran (the INT8 / FP16 variant for those engines), in words. */
  engineModel: string;
  /** How detections were produced (detection only). */
  protocol?: EvalProtocol;
  images: number;
  split: string;
  seconds: number;
  imagesPerSecond: number;
  detect?: { map50: number; map75: number; map5095: number; precision: number; recall: number; confidence: number; perClass: EvalClassRow[] };
  classify?: { top1: number; top5: number; n: number };
  savedJson?: { path: string; detections: number; categoryIds: 'coco91' | 'index' };
  savedGt?: { path: string; images: number; annotations: number };
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

function imageIdOf(path: string): number | string {
  const stem = basename(path, extname(path));
  return /^\d+$/.test(stem) ? Number(stem) : stem;
}

function checkOptions(o: EvalOptions): { engine: EngineId; protocol: EvalProtocol } {
  const engine = o.engine ?? 'ort-cpu';
  if (!(engine in ENGINES)) throw new CvoptError('INVALID_ARGUMENT', `unknown engine "${String(engine)}"; engines: ${ORT_ENGINE_IDS.join(', ')}`, { where: { field: 'engine' } });
  if (ENGINES[engine].runtime !== 'onnxruntime') {
    throw new CvoptError('INVALID_ARGUMENT', `eval runs ONNX Runtime engines, not ${engine}`, { where: { field: 'engine' }, hint: `use one of ${ORT_ENGINE_IDS.join(', ')}; \`cvopt bench --engines pytorch\` measures PyTorch's accuracy` });
  }
  const protocol = parseWith(EvalProtocolSchema, { ...DEFAULT_EVAL_PROTOCOL, ...o.protocol }, { what: 'evaluation protocol', code: 'INVALID_ARGUMENT' });
  if (o.maxImages !== undefined && !(Number.isInteger(o.maxImages) && o.maxImages >= 1)) {
    throw new CvoptError('INVALID_ARGUMENT', `maxImages must be an integer ≥ 1, got ${o.maxImages}`, { where: { field: 'maxImages' } });
  }
  if (!existsSync(o.data)) throw new CvoptError('NOT_FOUND', `dataset ${o.data} does not exist`, { where: { file: o.data, field: 'data' }, hint: 'pass a data.yaml or a folder-per-class dataset' });
  return { engine, protocol };
}

export async function evaluateModel(o: EvalOptions): Promise<EvalResult> {
  const { engine: engineId, protocol } = checkOptions(o);
  // A GPU engine on a machine without one fails here, with the machine's reason, before any work.
  await assertEngineAvailable(engineId);
  // The dataset's layout says the task: a data.yaml is a detection set, a folder of class folders a classification set.
  const task = datasetTaskOf(o.data);
  const ds = datasetImages(o.data, task, 'evaluate');
  if (!ds.images.length) throw new CvoptError('DATASET_INVALID', `${o.data} has no images in its val, test or train split`, { where: { file: o.data, field: 'val' } });
  const images = o.maxImages !== undefined ? ds.images.slice(0, o.maxImages) : ds.images;
  const datasetNames = ds.names;

  const resolved = await resolveModel(o.model, { ...(o.overrides ? { overrides: o.overrides } : {}), fallbackNames: datasetNames, ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}), ...(o.signal ? { signal: o.signal } : {}), ...(o.onStage ? { onStage: o.onStage } : {}) });
  const { manifest, notes } = resolved;
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

  const variant = await engineModel(engineId, { onnx: resolved.onnx, manifest, describe: basename(resolved.onnx) }, {
    cacheDir: resolved.cacheDir,
    data: o.data,
    ...(o.calib ? { calib: o.calib } : {}),
    ...(o.intraOpNumThreads ? { threads: o.intraOpNumThreads } : {}),
    ...(o.onStage ? { onStage: o.onStage } : {}),
  });
  const engine = await createOrtEngine(variant.onnx, variant.manifest, { engine: engineId, ...(o.intraOpNumThreads ? { intraOpNumThreads: o.intraOpNumThreads } : {}) });
  const saved: { image_id: number | string; category_id: number; bbox: number[]; score: number }[] = [];
  const gt = { images: [] as { id: number | string; file_name: string; width: number; height: number }[], annotations: [] as { id: number; image_id: number | string; category_id: number; bbox: number[]; area: number; iscrowd: 0 }[] };
  const categoryOf = (classId: number) => (isCoco80(names) ? (COCO80_TO_91[classId] ?? classId) : classId);
  const coco = isCoco80(names);
  const t0 = performance.now();
  try {
    const acc = await evaluateEngine(engine, images, {
      protocol,
      ...(labelMap ? { labelMap } : {}),
      imageId: (img) => imageIdOf(img.image),
      onImage: (img, imageId, decoded, meta) => {
        if (task !== 'detect') return;
        if (o.saveGt) {
          gt.images.push({ id: imageId, file_name: basename(img.image), width: meta.origWidth, height: meta.origHeight });
          for (const g of groundTruth(String(img.label), names.length, meta.origWidth, meta.origHeight)) {
            const [x1, y1, x2, y2] = g.box;
            gt.annotations.push({ id: gt.annotations.length + 1, image_id: imageId, category_id: categoryOf(g.classId), bbox: [x1, y1, x2 - x1, y2 - y1], area: (x2 - x1) * (y2 - y1), iscrowd: 0 });
          }
        }
        if (!o.saveJson) return;
        for (const d of decoded as Detection[]) {
          const [x1, y1, x2, y2] = d.box;
          saved.push({ image_id: imageId, category_id: categoryOf(d.classId), bbox: [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)], score: d.score });
        }
      },
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const seconds = (performance.now() - t0) / 1000;
    const result: EvalResult = {
      model: o.model,
      data: o.data,
      task,
      manifestSource: resolved.manifestSource,
      notes,
      engine: engine.describe(),
      engineModel: variant.describe,
      images: images.length,
      split: ds.split,
      seconds,
      imagesPerSecond: seconds > 0 ? images.length / seconds : 0,
    };
    if (task === 'classify') return { ...result, classify: { top1: acc.top1 ?? 0, top5: acc.top5 ?? 0, n: acc.images } };
    result.protocol = protocol;
    result.detect = {
      map50: acc.map50 ?? 0,
      map75: acc.map75 ?? 0,
      map5095: acc.map5095 ?? 0,
      precision: acc.precision ?? 0,
      recall: acc.recall ?? 0,
      confidence: acc.confidence ?? 0,
      perClass: acc.perClass ?? [],
    };
    if (o.saveJson) {
      writeFileSync(o.saveJson, JSON.stringify(saved));
      result.savedJson = { path: o.saveJson, detections: saved.length, categoryIds: coco ? 'coco91' : 'index' };
    }
    if (o.saveGt) {
      const categories = names.map((n, i) => ({ id: categoryOf(i), name: n }));
      writeFileSync(o.saveGt, JSON.stringify({ images: gt.images, annotations: gt.annotations, categories }));
      result.savedGt = { path: o.saveGt, images: gt.images.length, annotations: gt.annotations.length };
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
