import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import {
  BenchmarkReportSchema,
  CvoptError,
  DEFAULT_EVAL_PROTOCOL,
  NO_PYTORCH_SOURCE,
  ENGINE_IDS,
  ENGINES,
  ModelManifestSchema,
  parseWith,
  type BenchmarkReport,
  type Decision,
  type EngineId,
  type EvalProtocol,
  type ModelManifest,
} from '@cvopt/core';
import { renderChart, renderMarkdown, runBenchmark, selectEngine, type BenchTarget, type EngineLimits, type BenchHooks } from '@cvopt/bench';
import { engineAvailability, engineVersions, tensorrtVersionOf, type MachineProbes } from '@cvopt/engines';
import { datasetImages } from '@cvopt/onnx';
import { findPython, importOnnxToPytorch, trainerDir } from '@cvopt/trainer-client';
import { exportModel } from './export.js';
import { CHECKPOINT_EXTS, modelCacheDir, onnxManifest, sha256File } from '../models/resolve.js';
import { DEFAULT_CALIB_IMAGES, engineModel, probeEngines } from '../models/variants.js';

/**
 * `cvopt bench`: prepare the model for every engine (export a checkpoint; rebuild PyTorch from a YOLOv8 ONNX;
 * quantize to QDQ INT8; FP16; TensorRT engines), measure each engine in its own process, and write report.json,
 * report.md and chart.svg. Prepared models are kept in the model cache (`~/.cache/cvopt/models/<model sha256[:16]>/`, as
 * resolveModel and eval use it) and reused.
 */

export interface BenchModelOptions {
  /** An ONNX file (model.json beside it, or inferred) or a cvopt / PyTorch checkpoint (.pt, .pth, .pkl). */
  model: string;
  data: string;
  video?: string;
  /** Engines to consider (default all). */
  engines?: EngineId[];
  out: string;
  iters?: number;
  warmup?: number;
  minTimeMs?: number;
  maxImages?: number;
  batchSizes?: number[];
  /** Frames of --video to decode (default 60). */
  maxFrames?: number;
  threads?: number;
  /** Time ONNX Runtime with spinning threads, its own default, instead of as the runtime serves (no spinning). */
  spinning?: boolean;
  /** Calibration images for the INT8 model (default 32). */
  calib?: number;
  limits?: Partial<EngineLimits>;
  pytorchDevice?: 'cpu' | 'cuda';
  /** How accuracy is measured (default core's DEFAULT_EVAL_PROTOCOL). */
  protocol?: Partial<EvalProtocol>;
  /** Root of the model cache where prepared models (FP32 export, INT8, FP16, TensorRT) live; default modelCacheDir(). */
  cacheDir?: string;
  signal?: AbortSignal;
}

export interface BenchModelResult {
  report: BenchmarkReport;
  decision: Decision;
  files: { report: string; markdown: string; chart: string };
  workDir: string;
}

export interface BenchModelHooks {
  /** Preparation steps and per-engine progress, in words. */
  onStage?: (message: string) => void;
  onEngine?: BenchHooks['onProgress'];
}

const DEFAULT_FRAMES = 60;

function checkOptions(o: BenchModelOptions): void {
  if (!existsSync(o.model) || !statSync(o.model).isFile()) {
    throw new CvoptError('NOT_FOUND', `model ${o.model} does not exist`, { where: { field: 'model' }, hint: 'pass an ONNX file or a .pt checkpoint' });
  }
  const ext = extname(o.model).toLowerCase();
  if (ext !== '.onnx' && !CHECKPOINT_EXTS.has(ext)) {
    throw new CvoptError('INVALID_ARGUMENT', `model ${o.model} is neither .onnx nor a checkpoint (${[...CHECKPOINT_EXTS].join(', ')})`, { where: { field: 'model' } });
  }
  if (!existsSync(o.data)) throw new CvoptError('NOT_FOUND', `dataset ${o.data} does not exist`, { where: { field: '--data' }, hint: 'pass a data.yaml or a folder-per-class dataset' });
  if (o.video !== undefined && !existsSync(o.video)) throw new CvoptError('NOT_FOUND', `video ${o.video} does not exist`, { where: { field: '--video' } });
  if (extname(o.out).toLowerCase() !== '.json') throw new CvoptError('INVALID_ARGUMENT', `--out must end in .json, got ${o.out}`, { where: { field: '--out' }, hint: 'e.g. --out runs/bench/report.json' });
  for (const e of o.engines ?? []) {
    if (!(ENGINE_IDS as readonly string[]).includes(e)) throw new CvoptError('INVALID_ARGUMENT', `unknown engine "${e}"; engines: ${ENGINE_IDS.join(', ')}`, { where: { field: '--engines' } });
  }
}

function ffmpegVersion(): string | undefined {
  try {
    const out = execFileSync(process.env.CVOPT_FFMPEG ?? 'ffmpeg', ['-version'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    return /ffmpeg version (\S+)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

function readJsonManifest(path: string): ModelManifest {
  return parseWith(ModelManifestSchema, JSON.parse(readFileSync(path, 'utf8')), { what: 'model.json', file: path, code: 'MANIFEST_INVALID' });
}

interface Prepared {
  fp32?: { onnx: string; manifest: ModelManifest; describe: string };
  pytorch?: { checkpoint: string; describe: string; notes: string[] } | { unavailable: string };
  notes: string[];
}

type PythonWorkerSpec = { python: string; trainerDir: string };

/** Turn the user's model into an FP32 ONNX + manifest and, where possible, a PyTorch checkpoint. */
async function prepareSource(o: BenchModelOptions, work: string, py: PythonWorkerSpec | undefined, names: string[], stage: (m: string) => void, wantPytorch: boolean): Promise<Prepared> {
  const model = resolve(o.model);
  const name = basename(model);
  const exportTo = async (checkpoint: string): Promise<{ onnx: string; manifest: ModelManifest }> => {
    const onnx = join(work, 'fp32', 'model.onnx');
    const manifestPath = join(work, 'fp32', 'model.json');
    if (!existsSync(onnx) || !existsSync(manifestPath)) {
      stage(`exporting ${basename(checkpoint)} to FP32 ONNX (dynamic batch)`);
      await exportModel({ checkpoint, out: onnx, dynamic: true }, o.signal ? { signal: o.signal } : {});
    }
    return { onnx, manifest: readJsonManifest(manifestPath) };
  };

  if (CHECKPOINT_EXTS.has(extname(model).toLowerCase())) {
    if (!py) throw new CvoptError('DEPENDENCY_MISSING', `${name} is a PyTorch checkpoint but PyTorch is not importable`, { hint: 'run `cvopt doctor`; install python3-torch' });
    const fp32 = await exportTo(model);
    return {
      fp32: { ...fp32, describe: `FP32 ONNX export of ${name}` },
      pytorch: { checkpoint: model, describe: `the checkpoint ${name} (eager, BN folded)`, notes: [] },
      notes: [],
    };
  }

  const { manifest, notes } = onnxManifest(model, {}, names);
  const imported = join(work, 'pytorch', 'imported.pt');
  let pytorch: Prepared['pytorch'];
  // Rebuilding PyTorch from the ONNX costs a worker run: only for the pytorch engine, or for an FP32 re-export.
  if (!wantPytorch && manifest.precision === 'fp32') pytorch = { unavailable: 'the pytorch engine was not asked for' };
  else if (!py) pytorch = { unavailable: 'PyTorch is not importable in the worker Python' };
  else if (manifest.task !== 'detect') pytorch = { unavailable: `${NO_PYTORCH_SOURCE} (rebuilding from ONNX covers YOLOv8 detectors)` };
  else {
    try {
      if (!existsSync(imported)) {
        stage(`rebuilding PyTorch YOLOv8 from ${name}`);
        mkdirSync(dirname(imported), { recursive: true });
        await importOnnxToPytorch(model, imported, { python: { executable: py.python, trainerDir: py.trainerDir }, ...(o.signal ? { signal: o.signal } : {}) });
      }
      const how = manifest.precision === 'int8' ? 'weights dequantised from the int8 ONNX' : `weights read from the ${manifest.precision} ONNX`;
      pytorch = { checkpoint: imported, describe: `YOLOv8 rebuilt in PyTorch from ${name} (${how})`, notes: [`pytorch: ${how}`] };
    } catch (e) {
      if (e instanceof CvoptError && e.message.startsWith(NO_PYTORCH_SOURCE)) pytorch = { unavailable: NO_PYTORCH_SOURCE };
      else throw e;
    }
  }
  if (manifest.precision === 'fp32') {
    return { fp32: { onnx: model, manifest, describe: `${name} as given (FP32)` }, pytorch, notes };
  }
  // A quantized or half model is no FP32 baseline: re-export the rebuilt PyTorch model when there is one.
  if (pytorch && 'checkpoint' in pytorch) {
    const fp32 = await exportTo(pytorch.checkpoint);
    return { fp32: { ...fp32, describe: `FP32 ONNX re-export of the weights dequantised from ${name}` }, pytorch, notes: [...notes, `${name} is ${manifest.precision}; the ONNX Runtime engines run an FP32 re-export of its dequantised weights`] };
  }
  return { pytorch, notes: [...notes, `${name} is ${manifest.precision} and has no PyTorch source: no FP32 model to benchmark or quantize`] };
}

/** Benchmark a model on every engine this machine has and write the report, its Markdown and its chart. */
export async function benchModel(o: BenchModelOptions, hooks: BenchModelHooks = {}): Promise<BenchModelResult> {
  checkOptions(o);
  const stage = hooks.onStage ?? (() => {});
  const wanted = new Set<EngineId>(o.engines?.length ? o.engines : ENGINE_IDS);
  const sha = sha256File(o.model);
  const out = resolve(o.out);
  const work = join(resolve(o.cacheDir ?? modelCacheDir()), sha.slice(0, 16));
  mkdirSync(work, { recursive: true });

  stage('probing engines');
  const python = findPython();
  const probes: MachineProbes = await probeEngines();
  const py: PythonWorkerSpec | undefined = python.torch ? { python: python.executable, trainerDir: trainerDir() } : undefined;

  // Manifest names for an ONNX that carries none come from the dataset, as `cvopt eval` does.
  const task = CHECKPOINT_EXTS.has(extname(o.model).toLowerCase()) ? undefined : resolveManifestTask(o.model, o.data);
  const ds = datasetImages(o.data, task ?? 'detect');
  const available = (id: EngineId) => engineAvailability(id, probes);
  // Nothing to prepare when no asked-for engine can run here: the report lists each as unavailable with its reason.
  const runnable = ENGINE_IDS.filter((id) => wanted.has(id) && available(id).available);
  const prepared: Prepared = runnable.length
    ? await prepareSource(o, work, py, ds.names, stage, runnable.includes('pytorch'))
    : { notes: ['no asked-for engine can run on this machine; nothing was prepared'] };
  const manifest = prepared.fp32?.manifest;
  const images = manifest ? datasetImages(o.data, manifest.task).images.slice(0, o.maxImages ?? Infinity) : [];

  const targets: BenchTarget[] = [];
  for (const id of ENGINE_IDS) {
    if (!wanted.has(id)) continue;
    const spec = ENGINES[id];
    const a = available(id);
    if (!a.available) {
      targets.push({ engine: id, status: 'unavailable', reason: a.reason });
      continue;
    }
    try {
      if (spec.runtime === 'pytorch') {
        const p = prepared.pytorch;
        if (!p || 'unavailable' in p) targets.push({ engine: id, status: 'unavailable', reason: p && 'unavailable' in p ? p.unavailable : NO_PYTORCH_SOURCE });
        else if (!manifest || !py) targets.push({ engine: id, status: 'unavailable', reason: 'no manifest for pre/postprocessing' });
        else {
          const device = o.pytorchDevice ?? 'cpu';
          if (device === 'cuda' && !python.cuda) {
            targets.push({ engine: id, status: 'unavailable', reason: `PyTorch ${python.torch ?? ''} in ${python.executable} has no usable CUDA device (--pytorch-device cuda)` });
            continue;
          }
          targets.push({ engine: id, status: 'ready', runtime: 'pytorch', checkpoint: p.checkpoint, device, manifest, python: py, describe: `pytorch (${device}): ${p.describe}`, notes: p.notes });
        }
        continue;
      }
      if (!prepared.fp32 || !manifest) {
        targets.push({ engine: id, status: 'unavailable', reason: 'no FP32 ONNX model to run (see the report notes)' });
        continue;
      }
      const m = await engineModel(id, prepared.fp32, { cacheDir: work, data: o.data, calib: o.calib ?? DEFAULT_CALIB_IMAGES, probes, onStage: stage, ...(o.threads ? { threads: o.threads } : {}) });
      targets.push({ engine: id, status: 'ready', runtime: 'onnxruntime', provider: spec.provider as 'cpu' | 'cuda' | 'tensorrt', model: m.onnx, manifest: m.manifest, ...(m.packageSource ? { packageSource: m.packageSource } : {}), describe: m.describe });
    } catch (e) {
      const err = e instanceof CvoptError ? { code: e.code, message: e.message } : { code: 'ENGINE_FAILED', message: e instanceof Error ? e.message : String(e) };
      targets.push({ engine: id, status: 'failed', error: { code: err.code, message: `preparing the model failed: ${err.message}` } });
    }
  }

  const versions: Record<string, string> = { ...engineVersions() };
  if (python.torch) versions.pytorch = python.torch;
  if (python.torchvision) versions.torchvision = python.torchvision;
  versions.python = python.version;
  const trtVersion = tensorrtVersionOf(probes.tensorrt.libnvinfer);
  if (trtVersion) versions.tensorrt = trtVersion;
  const ff = ffmpegVersion();
  if (ff) versions.ffmpeg = ff;
  if (probes.nvidia.driver) versions['nvidia-driver'] = probes.nvidia.driver;

  const report = await runBenchmark(
    {
      model: { path: resolve(o.model), sha256: sha, task: manifest?.task ?? task ?? 'detect', name: basename(o.model) },
      dataset: { path: resolve(o.data) },
      targets,
      settings: {
        images,
        ...(o.iters !== undefined ? { iters: o.iters } : {}),
        ...(o.warmup !== undefined ? { warmup: o.warmup } : {}),
        ...(o.minTimeMs !== undefined ? { minTimeMs: o.minTimeMs } : {}),
        ...(o.batchSizes ? { batchSizes: o.batchSizes } : {}),
        ...(o.threads !== undefined ? { threads: o.threads } : {}),
        ...(o.spinning !== undefined ? { spinning: o.spinning } : {}),
        protocol: { ...DEFAULT_EVAL_PROTOCOL, ...o.protocol },
        ...(o.video ? { video: { file: resolve(o.video), maxFrames: o.maxFrames ?? DEFAULT_FRAMES } } : {}),
      },
      ...(o.limits ? { limits: o.limits } : {}),
      versions,
      extraSettings: { notes: prepared.notes, workDir: work },
    },
    { ...(hooks.onEngine ? { onProgress: hooks.onEngine } : {}), ...(o.signal ? { signal: o.signal } : {}) },
  );
  const decision = selectEngine(report, {});
  mkdirSync(dirname(out), { recursive: true });
  const stem = out.replace(/\.json$/i, '');
  const files = { report: out, markdown: `${stem}.md`, chart: join(dirname(out), basename(stem) === 'report' ? 'chart.svg' : `${basename(stem)}.chart.svg`) };
  writeFileSync(files.report, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(files.markdown, renderMarkdown(report, decision));
  writeFileSync(files.chart, renderChart(report, decision));
  return { report, decision, files, workDir: work };
}

function resolveManifestTask(model: string, data: string): 'detect' | 'classify' {
  try {
    return onnxManifest(model).manifest.task;
  } catch {
    // no names in the model: the dataset decides (a data.yaml is a detector's)
    return existsSync(join(data, 'data.yaml')) || /\.ya?ml$/i.test(data) ? 'detect' : 'classify';
  }
}

/** Read and validate a benchmark report file; errors name the file and the field. */
export function readBenchmarkReport(path: string): BenchmarkReport {
  if (!existsSync(path)) throw new CvoptError('NOT_FOUND', `report ${path} does not exist`, { where: { file: path }, hint: 'write one with `cvopt bench MODEL --data DATA --out report.json`' });
  const text = readFileSync(path, 'utf8');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    const at = jsonErrorOffset(text, e instanceof Error ? e.message : '');
    const line = at === undefined ? undefined : text.slice(0, at).split('\n').length;
    throw new CvoptError('INVALID_ARGUMENT', `${path} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`, { where: line ? { file: path, line } : { file: path }, hint: 'pass the report.json that `cvopt bench` wrote' });
  }
  return parseWith(BenchmarkReportSchema, data, { what: 'benchmark report', file: path, code: 'INVALID_ARGUMENT' });
}

/**
 * Where JSON.parse stopped: V8 says "at position N" for most errors; for an unexpected token it quotes the text
 * around it instead, with 10 characters before the token when the quote is cut ("...").
 */
function jsonErrorOffset(text: string, message: string): number | undefined {
  const pos = /position (\d+)/.exec(message);
  if (pos) return Number(pos[1]);
  const tok = /Unexpected token '(.)', (\.\.\.)?"([\s\S]*?)"(?:\.\.\.)? is not valid JSON/.exec(message);
  if (!tok?.[3]) return undefined;
  const start = text.indexOf(tok[3]);
  if (start < 0) return undefined;
  return tok[2] ? start + 10 : start + Math.max(0, tok[3].indexOf(tok[1] as string));
}
