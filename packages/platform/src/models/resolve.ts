import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, extname, join, resolve } from 'node:path';
import { CvoptError, FILE_KIND_NAMES, ModelManifestSchema, parseWith, sniffFileKind, type ModelManifest } from '@cvopt/core';
import { manifestPathFor, readManifest } from '@cvopt/engines';
import { inferManifestWithNotes, type ManifestOverrides } from '@cvopt/onnx';
import { exportModel, PRESET_NAME } from '../jobs/export.js';

/**
 * The one way a model becomes something cvopt can run: a preset name, a PyTorch checkpoint (.pt, .pth, .pkl) or an
 * ONNX file (ours with model.json beside it, or a foreign one whose manifest is inferred) resolves to an FP32-or-as-given
 * ONNX file plus its manifest. Exports are cached under the model cache by the source's content hash, so a second
 * resolve of the same file costs one hash. eval, bench, tune, `cvopt manifest` and the server's model registry use it.
 */

export const CHECKPOINT_EXTS: ReadonlySet<string> = new Set(['.pt', '.pth', '.pkl']);

export type ModelSourceKind = 'preset' | 'checkpoint' | 'onnx';

/** Only the fields a user may override on a manifest taken from beside the model or inferred from it. */
export type ManifestFix = Pick<ManifestOverrides, 'channelOrder' | 'scale' | 'classNames'>;

export interface ResolveModelOptions {
  /** Applied over model.json when there is one, used for inference when there is not. */
  overrides?: ManifestFix;
  /** Class names to fall back on when a foreign ONNX carries none (a dataset's names). */
  fallbackNames?: string[];
  /** Root of the export cache; default modelCacheDir(). */
  cacheDir?: string;
  /** Export size for presets and checkpoints (default: the checkpoint's own). */
  imgsz?: number;
  signal?: AbortSignal;
  onStage?: (message: string) => void;
}

export interface ResolvedModel {
  /** What the user passed. */
  source: string;
  kind: ModelSourceKind;
  /** Content hash of the source file (of the preset name for presets): the cache key of every derived model. */
  sha256: string;
  /** The ONNX file to run (the source itself for an ONNX source). */
  onnx: string;
  manifest: ModelManifest;
  /** Where the manifest came from: a model.json path, `inferred from the ONNX file`, or the export. */
  manifestSource: string;
  /** Assumptions made: inferred fields, names taken from the dataset. */
  notes: string[];
  /** The PyTorch checkpoint behind the ONNX, when there is one (checkpoint sources). */
  checkpoint?: string;
  /** This model's folder in the cache: engine variants (INT8, FP16, TensorRT) are written under it. */
  cacheDir: string;
}

/** `CVOPT_CACHE_DIR`, else `~/.cache/cvopt`, + `/models`. */
export function modelCacheDir(): string {
  return join(process.env.CVOPT_CACHE_DIR ?? join(homedir(), '.cache', 'cvopt'), 'models');
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export function modelSourceKind(model: string): ModelSourceKind {
  if (PRESET_NAME.test(model) && !existsSync(model)) return 'preset';
  if (!existsSync(model) || !statSync(model).isFile()) {
    throw new CvoptError('NOT_FOUND', `model ${model} does not exist`, { where: { field: 'model', file: model }, hint: 'pass an ONNX file, a .pt/.pkl checkpoint or a preset name such as yolov8n' });
  }
  const ext = extname(model).toLowerCase();
  if (ext === '.onnx') return 'onnx';
  if (CHECKPOINT_EXTS.has(ext)) return 'checkpoint';
  // A file of a known other kind (an image, a video, an archive) is named for what it is.
  const kind = sniffFileKind(model);
  if (!['onnx', 'pickle', 'zip', 'text', 'binary'].includes(kind)) {
    throw new CvoptError('MODEL_INVALID', `${model} is ${FILE_KIND_NAMES[kind]}, not an ONNX model or a checkpoint`, { where: { file: model, field: 'model' }, hint: 'pass model.onnx, model.pt or a preset such as yolov8n' });
  }
  throw new CvoptError('INVALID_ARGUMENT', `model ${model} is neither .onnx nor a checkpoint (${[...CHECKPOINT_EXTS].join(', ')}) nor a preset`, {
    where: { field: 'model', file: model },
    hint: 'pass model.onnx, model.pt or a preset such as yolov8n',
  });
}

/** The manifest of an ONNX file: model.json beside it (with overrides applied), else inferred from the file. */
export function onnxManifest(onnx: string, overrides: ManifestFix = {}, fallbackNames?: string[]): { manifest: ModelManifest; source: string; notes: string[] } {
  const existing = manifestPathFor(onnx).find((p) => existsSync(p));
  if (existing) {
    const m = readManifest(onnx);
    const manifest: ModelManifest = {
      ...m,
      preprocess: { ...m.preprocess, ...(overrides.channelOrder ? { channelOrder: overrides.channelOrder } : {}), ...(overrides.scale ? { scale: overrides.scale } : {}) },
      ...(overrides.classNames ? { classNames: overrides.classNames } : {}),
    };
    return { manifest, source: existing, notes: [] };
  }
  try {
    const r = inferManifestWithNotes(onnx, overrides);
    return { manifest: r.manifest, source: 'inferred from the ONNX file', notes: r.notes };
  } catch (e) {
    // A model that does not carry its names can still run when the dataset supplies as many.
    if (fallbackNames && !overrides.classNames && e instanceof CvoptError && /class/i.test(e.message)) {
      const r = inferManifestWithNotes(onnx, { ...overrides, classNames: fallbackNames });
      return { manifest: r.manifest, source: 'inferred from the ONNX file', notes: [...r.notes, 'class names taken from the dataset'] };
    }
    throw e;
  }
}

/** Where `cvopt manifest --write` puts an ONNX file's manifest, and the one already there, if any. */
export function manifestFileOf(onnx: string): { target: string; existing?: string } {
  const paths = manifestPathFor(onnx);
  const existing = paths.find((p) => existsSync(p));
  return { target: paths[0]!, ...(existing ? { existing } : {}) };
}

function readJsonManifest(path: string): ModelManifest {
  return parseWith(ModelManifestSchema, JSON.parse(readFileSync(path, 'utf8')), { what: 'model.json', file: path, code: 'MANIFEST_INVALID' });
}

/** Resolve a preset, checkpoint or ONNX file to an ONNX file and its manifest (see the module comment). */
export async function resolveModel(model: string, o: ResolveModelOptions = {}): Promise<ResolvedModel> {
  const kind = modelSourceKind(model);
  const sha256 = kind === 'preset' ? createHash('sha256').update(`preset:${model}`).digest('hex') : sha256File(model);
  const cacheDir = join(resolve(o.cacheDir ?? modelCacheDir()), sha256.slice(0, 16));
  if (kind === 'onnx') {
    const m = onnxManifest(model, o.overrides, o.fallbackNames);
    return { source: model, kind, sha256, onnx: model, manifest: m.manifest, manifestSource: m.source, notes: m.notes, cacheDir };
  }
  const dir = join(cacheDir, `fp32${o.imgsz ? `-${o.imgsz}` : ''}`);
  const onnx = join(dir, 'model.onnx');
  const manifestPath = join(dir, 'model.json');
  if (!existsSync(onnx) || !existsSync(manifestPath)) {
    mkdirSync(dir, { recursive: true });
    o.onStage?.(`exporting ${basename(model)} to FP32 ONNX (dynamic batch)`);
    await exportModel({ checkpoint: model, out: onnx, dynamic: true, ...(o.imgsz ? { imgsz: o.imgsz } : {}) }, o.signal ? { signal: o.signal } : {});
  }
  const base = readJsonManifest(manifestPath);
  const f = o.overrides ?? {};
  const manifest: ModelManifest = {
    ...base,
    preprocess: { ...base.preprocess, ...(f.channelOrder ? { channelOrder: f.channelOrder } : {}), ...(f.scale ? { scale: f.scale } : {}) },
    ...(f.classNames ? { classNames: f.classNames } : {}),
  };
  return {
    source: model,
    kind,
    sha256,
    onnx,
    manifest,
    manifestSource: `exported from ${basename(model)} (${manifestPath})`,
    notes: [],
    ...(kind === 'checkpoint' ? { checkpoint: resolve(model) } : {}),
    cacheDir,
  };
}
