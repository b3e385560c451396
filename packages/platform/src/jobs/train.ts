import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import { CvoptError, TrainPayloadSchema, parseWith, type MetricMessage, type ProgressMessage, type TrainPayload } from '@cvopt/core';
import { datasetTaskOf, loadClassificationDataset, loadDetectionDataset } from '@cvopt/datasets';
import { runWorker } from '@cvopt/trainer-client';
import { PRESET_NAME } from './export.js';

/** Hyperparameter values the worker accepts; names are checked by the worker, which owns the list. */
type HypValue = number | string | boolean;

/** The train payload (core's TrainPayloadSchema); `hypFile` is read here, the rest goes to the worker. */
export const TrainModelSchema = TrainPayloadSchema;
export type TrainModelInput = TrainPayload;

export interface TrainHooks {
  onProgress?: (m: ProgressMessage) => void;
  onMetric?: (m: MetricMessage) => void;
  onLog?: (line: string) => void;
  signal?: AbortSignal;
}

export interface TrainResult {
  best: string;
  last: string;
  epochs: number;
  bestEpoch: number;
  bestFitness: number;
  metrics: Record<string, number>;
  task: 'detect' | 'classify';
  names: string[];
  imgsz: number;
  preset: string;
  wallS: number;
  imagesPerSec: number;
  /**
   * Each epoch's figures as the worker reported them (training losses and lr, then validation metrics), finite
   * values only. Part of the result, not only of the progress stream: a job system may coalesce progress events.
   */
  history: EpochFigures[];
  [k: string]: unknown;
}

export interface EpochFigures {
  /** 0-based. */
  epoch: number;
  values: Record<string, number>;
}

/** Where each key of a hyperparameter file sits, so the worker's verdict on a key can point at its line. */
export interface HypFile {
  file: string;
  values: Record<string, HypValue>;
  lines: Record<string, number>;
}

/** Read `--hyp FILE` (YAML or JSON): a flat mapping of names to numbers, strings or booleans. */
export function readHypFile(path: string): HypFile {
  const file = resolve(path);
  if (!existsSync(file)) throw new CvoptError('NOT_FOUND', `hyperparameter file ${file} does not exist`, { where: { file }, hint: 'pass a YAML or JSON file of name: value pairs' });
  const text = readFileSync(file, 'utf8');
  const lc = new LineCounter();
  // JSON is YAML, so one parser gives line numbers for both.
  const doc = parseDocument(text, { lineCounter: lc });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new CvoptError('INVALID_CONFIG', `${file} is not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${e.message.split('\n')[0]}`, {
      where: { file, line: e.linePos?.[0]?.line ?? 1 },
      hint: 'write one `name: value` per line, e.g. `lr0: 0.01`',
    });
  }
  const values: Record<string, HypValue> = {};
  const lines: Record<string, number> = {};
  if (doc.contents === null) return { file, values, lines };
  if (!isMap(doc.contents)) {
    throw new CvoptError('INVALID_CONFIG', `${file} must hold a mapping of hyperparameter names to values`, { where: { file, line: 1 }, hint: 'e.g. `lr0: 0.01`' });
  }
  for (const item of doc.contents.items) {
    const key = isScalar(item.key) ? String(item.key.value) : String(item.key);
    const line = lc.linePos(isScalar(item.key) && item.key.range ? item.key.range[0] : 0).line;
    const v = isScalar(item.value) ? item.value.value : undefined;
    if (typeof v !== 'number' && typeof v !== 'string' && typeof v !== 'boolean') {
      throw new CvoptError('INVALID_CONFIG', `${key} in ${file} must be a number, string or boolean`, { where: { file, line, field: key } });
    }
    values[key] = v;
    lines[key] = line;
  }
  return { file, values, lines };
}

/** The worker's explicit data description: every image listed, so Python never re-reads the dataset layout. */
export function workerData(data: string): Record<string, unknown> {
  const task = datasetTaskOf(data);
  if (task === 'detect') {
    const ds = loadDetectionDataset(data);
    const train = ds.splits.train ?? [];
    const val = ds.splits.val ?? ds.splits.test ?? [];
    for (const [name, split] of [['train', train], ['val', val]] as const) {
      if (split.length === 0) throw new CvoptError('DATASET_INVALID', `${ds.yamlPath} has no ${name} images`, { where: { file: ds.yamlPath, field: name }, hint: 'training needs images in both train and val' });
    }
    return { task, names: ds.names, train: train.map((e) => ({ image: e.image, label: e.label })), val: val.map((e) => ({ image: e.image, label: e.label })) };
  }
  const ds = loadClassificationDataset(data);
  const train = ds.splits.train ?? [];
  const val = ds.splits.val ?? ds.splits.test ?? [];
  for (const [name, split] of [['train', train], ['val', val]] as const) {
    if (split.length === 0) throw new CvoptError('DATASET_INVALID', `${ds.root} has no ${name} images`, { where: { file: ds.root, field: name }, hint: `put class folders under ${ds.root}/train and ${ds.root}/val` });
  }
  return { task, names: ds.names, train: train.map((e) => ({ image: e.image, classId: e.classId })), val: val.map((e) => ({ image: e.image, classId: e.classId })) };
}

/** A run folder that already holds files is another run's: training over it would replace its checkpoints. */
function refuseUsedRunFolder(out: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) {
    throw new CvoptError('INVALID_ARGUMENT', `--out ${out} is a file, not a folder`, { where: { file: out, field: 'out' }, hint: 'pass a folder for the run (it is created when missing)' });
  }
  const entries = readdirSync(out);
  if (entries.length === 0) return;
  const interrupted = entries.includes('last.pt');
  throw new CvoptError('CONFLICT', `${out} already holds ${interrupted ? 'a training run (last.pt)' : `${entries.length} file(s)`}`, {
    where: { file: out, field: 'out' },
    hint: interrupted
      ? `continue it with \`cvopt train --resume --out ${out}\`, start over in it with --exist-ok, or choose another --out`
      : 'choose another --out, or pass --exist-ok to train into it anyway',
  });
}

/**
 * `cvopt train`: validate, resolve the dataset into the worker's explicit lists, run the worker. `hyp` is either
 * inline values or a file read with readHypFile; when the worker refuses a key from a file, the error points at
 * the key's line. With `resume`, the run continues from `<out>/last.pt` with its own saved arguments.
 */
export async function trainModel(input: TrainModelInput, hooks: TrainHooks = {}): Promise<TrainResult> {
  const p = parseWith(TrainModelSchema, input, { what: 'train options', code: 'INVALID_ARGUMENT' });
  const hf = p.hypFile ? readHypFile(p.hypFile) : undefined;
  const out = resolve(p.out);
  if (!p.resume && !p.existOk) refuseUsedRunFolder(out);
  let args: Record<string, unknown>;
  if (p.resume) {
    // The worker restores every other argument from the checkpoint; only where it runs may change.
    args = { out, resume: true, device: p.device };
  } else {
    // The worker runs in trainer/: a file path must be absolute; a preset name stays a name.
    const source = p.weights ?? p.model!;
    if (p.weights && !existsSync(p.weights)) {
      throw new CvoptError('NOT_FOUND', `weights file ${p.weights} does not exist`, { where: { file: p.weights, field: 'weights' }, hint: 'pass a .pt/.pkl checkpoint or a YOLOv8 .onnx' });
    }
    const model = PRESET_NAME.test(source) && !existsSync(source) ? source : resolve(source);
    args = {
      model,
      data: workerData(p.data!),
      out,
      epochs: p.epochs,
      imgsz: p.imgsz,
      batch: p.batch,
      device: p.device,
      seed: p.seed,
      hyp: { ...p.hyp, ...(hf?.values ?? {}) },
      resume: false,
      trust_torchscript: p.trustTorchscript,
    };
  }
  if (p.workers !== undefined) args.workers = p.workers;
  if (p.vramMb !== undefined) args.vram_limit_mb = p.vramMb;
  if (p.patience !== undefined) args.patience = p.patience;
  const workerOpts: Parameters<typeof runWorker>[2] = {};
  if (hooks.onProgress) workerOpts.onProgress = hooks.onProgress;
  const history = new Map<number, Record<string, number>>();
  workerOpts.onMetric = (m) => {
    const row = history.get(m.epoch ?? 0) ?? {};
    for (const [k, v] of Object.entries(m.values)) if (typeof v === 'number' && Number.isFinite(v)) row[k] = v;
    history.set(m.epoch ?? 0, row);
    hooks.onMetric?.(m);
  };
  if (hooks.onLog) workerOpts.onLog = hooks.onLog;
  if (hooks.signal) workerOpts.signal = hooks.signal;
  try {
    const r = (await runWorker('train', args, workerOpts)) as TrainResult;
    return { ...r, history: [...history].sort((a, b) => a[0] - b[0]).map(([epoch, values]) => ({ epoch, values })) };
  } catch (e) {
    const field = e instanceof CvoptError ? e.where?.field : undefined;
    const key = field?.startsWith('hyp.') ? field.slice(4) : undefined;
    if (e instanceof CvoptError && hf && key !== undefined && key in hf.lines) {
      throw new CvoptError(e.code, e.message, { where: { file: hf.file, line: hf.lines[key]!, field: key }, ...(e.hint ? { hint: e.hint } : {}) });
    }
    throw e;
  }
}
