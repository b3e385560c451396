import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import {
  BenchmarkReportSchema,
  CvoptError,
  ENGINE_IDS,
  ModelManifestSchema,
  parseWith,
  type BenchmarkReport,
  type Decision,
  type EngineId,
  type ModelManifest,
} from '@cvopt/core';
import { renderChart, renderMarkdown, runBenchmark, selectEngine, epContextModel, type BenchTarget, type EngineLimits, type BenchHooks } from '@cvopt/bench';
import {
  BENCH_ENGINES,
  benchEngineAvailability,
  buildTrtEngine,
  engineVersions,
  importOnnxToPytorch,
  NO_PYTORCH_SOURCE,
  probeExecutionProviders,
  probeNvidia,
  probeTensorRt,
  tensorrtVersionOf,
  type MachineProbes,
  type PythonWorkerSpec,
} from '@cvopt/engines';
import { convertFp16, datasetImages, quantizeOnnx, readOnnx, writeOnnx } from '@cvopt/onnx';
import { findPython, trainerDir } from '@cvopt/trainer-client';
import { exportModel } from './export.js';
import { resolveManifest } from './eval.js';

/**
 * `cvopt bench`: prepare the model for every engine (export a checkpoint; rebuild PyTorch from a YOLOv8 ONNX;
 * quantize to QDQ INT8; FP16; TensorRT engines), measure each engine in its own process, and write report.json,
 * report.md and chart.svg. Prepared models are kept in `<out dir>/.cvopt-bench/<model sha256[:16]>/` and reused.
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
  /** Calibration images for the INT8 model (default 32). */
  calib?: number;
  limits?: Partial<EngineLimits>;
  pytorchDevice?: 'cpu' | 'cuda';
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

const CHECKPOINT_EXTS = new Set(['.pt', '.pth', '.pkl']);
const DEFAULT_FRAMES = 60;

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

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

/** Turn the user's model into an FP32 ONNX + manifest and, where possible, a PyTorch checkpoint. */
async function prepareSource(o: BenchModelOptions, work: string, py: PythonWorkerSpec | undefined, names: string[], stage: (m: string) => void): Promise<Prepared> {
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

  const { manifest, notes } = resolveManifest(model, {}, names);
  const imported = join(work, 'pytorch', 'imported.pt');
  let pytorch: Prepared['pytorch'];
  if (!py) pytorch = { unavailable: 'PyTorch is not importable in the worker Python' };
  else if (manifest.task !== 'detect') pytorch = { unavailable: `${NO_PYTORCH_SOURCE} (rebuilding from ONNX covers YOLOv8 detectors)` };
  else {
    try {
      if (!existsSync(imported)) {
        stage(`rebuilding PyTorch YOLOv8 from ${name}`);
        mkdirSync(dirname(imported), { recursive: true });
        await importOnnxToPytorch(py, model, imported, o.signal ? { signal: o.signal } : {});
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
  const work = join(dirname(out), '.cvopt-bench', sha.slice(0, 16));
  mkdirSync(work, { recursive: true });

  stage('probing engines');
  const python = findPython();
  const probes: MachineProbes = {
    providers: await probeExecutionProviders({ sessionTimeoutMs: 20_000 }),
    nvidia: probeNvidia(),
    tensorrt: probeTensorRt(),
    python: python.torch ? { torch: python.torch } : { error: python.error ?? 'torch is not installed' },
  };
  const py: PythonWorkerSpec | undefined = python.torch ? { python: python.executable, trainerDir: trainerDir() } : undefined;

  // Manifest names for an ONNX that carries none come from the dataset, as `cvopt eval` does.
  const task = CHECKPOINT_EXTS.has(extname(o.model).toLowerCase()) ? undefined : resolveManifestTask(o.model, o.data);
  const ds = datasetImages(o.data, task ?? 'detect');
  const prepared = await prepareSource(o, work, py, ds.names, stage);
  const manifest = prepared.fp32?.manifest;
  const images = manifest ? datasetImages(o.data, manifest.task).images.slice(0, o.maxImages ?? Infinity) : [];
  const available = (id: EngineId) => benchEngineAvailability(id, probes);

  const targets: BenchTarget[] = [];
  for (const id of ENGINE_IDS) {
    if (!wanted.has(id)) continue;
    const spec = BENCH_ENGINES[id];
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
      const fp32 = prepared.fp32;
      const provider = spec.provider as 'cpu' | 'cuda' | 'tensorrt';
      if (spec.model === 'fp32') {
        targets.push({ engine: id, status: 'ready', runtime: 'onnxruntime', provider, model: fp32.onnx, manifest, describe: `${id}: ${fp32.describe}` });
      } else if (spec.model === 'int8-qdq' || spec.model === 'trt-int8') {
        const tensorrt = spec.model === 'trt-int8';
        const q = await quantized(fp32.onnx, manifest, o, work, tensorrt ? 'int8' : 'uint8', stage);
        if (!tensorrt) targets.push({ engine: id, status: 'ready', runtime: 'onnxruntime', provider, model: q.onnx, manifest: q.manifest, packageSource: { settings: { calibrationImages: q.calib, activations: 'uint8' } }, describe: `${id}: static INT8 QDQ (uint8 activations, ${q.calib} calibration images) of the ${fp32.describe}` });
        else targets.push(await trtTarget(id, q.onnx, q.manifest, 'int8', probes, work, fp32.describe, stage));
      } else if (spec.model === 'fp16') {
        const path = join(work, 'fp16', 'model.onnx');
        if (!existsSync(path)) {
          stage('converting to FP16');
          mkdirSync(dirname(path), { recursive: true });
          writeOnnx(convertFp16(readOnnx(fp32.onnx).model).model, path);
        }
        targets.push({ engine: id, status: 'ready', runtime: 'onnxruntime', provider, model: path, manifest: { ...manifest, precision: 'fp16' }, describe: `${id}: FP16 conversion of the ${fp32.describe}` });
      } else if (spec.model === 'trt-fp16') {
        targets.push(await trtTarget(id, fp32.onnx, manifest, 'fp16', probes, work, fp32.describe, stage));
      }
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
    return resolveManifest(model).manifest.task;
  } catch {
    // no names in the model: the dataset decides (a data.yaml is a detector's)
    return existsSync(join(data, 'data.yaml')) || /\.ya?ml$/i.test(data) ? 'detect' : 'classify';
  }
}

async function quantized(
  fp32: string,
  manifest: ModelManifest,
  o: BenchModelOptions,
  work: string,
  activations: 'uint8' | 'int8',
  stage: (m: string) => void,
): Promise<{ onnx: string; manifest: ModelManifest; calib: number }> {
  const calib = o.calib ?? 32;
  // Calibration settings are part of the cached model's identity.
  const dir = join(work, `${activations === 'uint8' ? 'int8' : 'int8-trt'}-calib${calib}`);
  const onnx = join(dir, 'model.onnx');
  if (!existsSync(onnx) || !existsSync(join(dir, 'model.json'))) {
    stage(`quantizing to INT8 QDQ (${activations} activations, ${calib} calibration images)`);
    mkdirSync(dir, { recursive: true });
    // The benchmark measures accuracy itself; the quantizer's own check runs on one image only.
    await quantizeOnnx(fp32, onnx, { data: o.data, manifest, calib, evalImages: 1, activations, ...(o.threads ? { intraOpNumThreads: o.threads } : {}) });
  }
  return { onnx, manifest: readJsonManifest(join(dir, 'model.json')), calib };
}

async function trtTarget(
  id: EngineId,
  onnx: string,
  manifest: ModelManifest,
  precision: 'fp16' | 'int8',
  probes: MachineProbes,
  work: string,
  fp32Describe: string,
  stage: (m: string) => void,
): Promise<BenchTarget> {
  const trtexec = probes.tensorrt.trtexec as string;
  const gpu = probes.nvidia.gpus[0]?.name;
  const version = tensorrtVersionOf(probes.tensorrt.libnvinfer);
  if (!gpu || !version) return { engine: id, status: 'unavailable', reason: `cannot key the TensorRT engine cache: ${!gpu ? 'no GPU name' : 'no TensorRT version (libnvinfer.so.X.Y.Z)'}` };
  stage(`building the TensorRT ${precision} engine with trtexec (cached by model, TensorRT, GPU and precision)`);
  const built = await buildTrtEngine({ trtexec, onnx, cacheDir: join(work, '..', 'trt-cache'), key: { modelSha256: sha256File(onnx), tensorrtVersion: version, gpuName: gpu, precision } });
  const dir = join(work, `trt-${precision}`);
  mkdirSync(dir, { recursive: true });
  const engineCopy = join(dir, basename(built.engine));
  if (!existsSync(engineCopy)) copyFileSync(built.engine, engineCopy);
  const ctx = join(dir, 'model_ctx.onnx');
  // Relative to the context model: ONNX Runtime resolves ep_cache_context against the model's folder.
  writeOnnx(epContextModel(readOnnx(onnx).model, basename(engineCopy)), ctx);
  return {
    engine: id,
    status: 'ready',
    runtime: 'onnxruntime',
    provider: 'tensorrt',
    model: ctx,
    manifest: { ...manifest, precision },
    packageSource: { onnx, tensorrt: { precision, builtWith: version } },
    describe: `${id}: TensorRT ${version} ${precision} engine (trtexec${precision === 'int8' ? ' from the int8 QDQ model' : ' --fp16'}, ${built.cached ? 'cached' : 'built now'}) of the ${fp32Describe}`,
  };
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
