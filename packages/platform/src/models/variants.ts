import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CvoptError, ENGINES, ModelManifestSchema, parseWith, type EngineId, type ModelManifest } from '@cvopt/core';
import { epContextModel } from '@cvopt/bench';
import { buildTrtEngine, engineAvailability, probeExecutionProviders, probeNvidia, probeTensorRt, tensorrtVersionOf, type MachineProbes } from '@cvopt/engines';
import { convertFp16, quantizeOnnx, readOnnx, writeOnnx } from '@cvopt/onnx';
import { findPython } from '@cvopt/trainer-client';
import { sha256File } from './resolve.js';

/**
 * The model file each engine id runs, derived from an FP32 ONNX by the transform its ENGINES entry names (fp32: the
 * file itself; int8-qdq: static QDQ calibrated on the dataset; fp16: the FP16 conversion; trt-*: a TensorRT plan in
 * an EP-context model). Every variant is cached under `<cacheDir>/<variant>/`, where cacheDir is keyed by the FP32
 * model's content hash, so eval, bench, tune and the packager all reuse one conversion.
 */

export interface EngineModel {
  engine: EngineId;
  onnx: string;
  manifest: ModelManifest;
  /** What this engine runs, in words (for reports). */
  describe: string;
  /**
   * What the packager needs beyond `onnx` (carried into the bench report): the file to package when it differs
   * from the one run (a TensorRT context model is rebuilt on the target), and the settings that made this variant.
   */
  packageSource?: { onnx?: string; settings?: Record<string, unknown>; tensorrt?: { precision: 'fp16' | 'int8'; builtWith?: string } };
}

export interface VariantOptions {
  /** This FP32 model's cache folder (ResolvedModel.cacheDir, or bench's work folder). */
  cacheDir: string;
  /** Dataset to calibrate INT8 on. */
  data?: string;
  /** Calibration images (default 32). */
  calib?: number;
  threads?: number;
  /** Probes already taken (bench probes once for all engines); taken here for GPU ids when absent. */
  probes?: MachineProbes;
  onStage?: (message: string) => void;
}

export const DEFAULT_CALIB_IMAGES = 32;

/**
 * What this machine can run: execution providers, GPUs, TensorRT and, unless told not to, PyTorch (which starts
 * Python). `quick` checks the provider libraries on disk without a test session: enough to refuse an engine early;
 * a provider whose files are there but fails still fails, with its reason, when the session starts.
 */
export async function probeEngines(o: { quick?: boolean; python?: boolean } = {}): Promise<MachineProbes> {
  const python = o.python === false ? undefined : findPython();
  return {
    providers: await probeExecutionProviders(o.quick ? { fileChecksOnly: true } : { sessionTimeoutMs: 20_000 }),
    nvidia: probeNvidia(),
    tensorrt: probeTensorRt(),
    python: !python ? { error: 'not probed' } : python.torch ? { torch: python.torch } : { error: python.error ?? 'torch is not installed' },
  };
}

function readJsonManifest(path: string): ModelManifest {
  return parseWith(ModelManifestSchema, JSON.parse(readFileSync(path, 'utf8')), { what: 'model.json', file: path, code: 'MANIFEST_INVALID' });
}

/** ENGINE_UNAVAILABLE with the machine's reason when this engine cannot run here. */
export async function assertEngineAvailable(id: EngineId, probes?: MachineProbes): Promise<MachineProbes | undefined> {
  // The CPU provider is always built in: probing it would only cost a session.
  if (ENGINES[id].runtime === 'onnxruntime' && ENGINES[id].provider === 'cpu') return probes;
  const p = probes ?? (await probeEngines({ quick: true, python: ENGINES[id].runtime === 'pytorch' }));
  const a = engineAvailability(id, p);
  if (!a.available) throw new CvoptError('ENGINE_UNAVAILABLE', `engine ${id} cannot run on this machine: ${a.reason}`, { hint: 'run `cvopt doctor` to see what this machine can run; ort-cpu and ort-cpu-int8 run everywhere' });
  return p;
}

/**
 * The model an ONNX Runtime engine runs, built (or read from the cache) from the FP32 model. A model that already
 * has the engine's precision (an INT8 file for ort-cpu-int8) runs as it is; a reduced-precision model is never
 * converted again.
 */
export async function engineModel(id: EngineId, fp32: { onnx: string; manifest: ModelManifest; describe?: string }, o: VariantOptions): Promise<EngineModel> {
  const spec = ENGINES[id];
  const what = fp32.describe ?? basename(fp32.onnx);
  if (spec.runtime !== 'onnxruntime') throw new CvoptError('INVALID_ARGUMENT', `engine ${id} runs PyTorch, not an ONNX file`, { where: { field: 'engine' } });
  if (spec.transform === 'fp32' || fp32.manifest.precision === spec.precision) return { engine: id, onnx: fp32.onnx, manifest: fp32.manifest, describe: `${id}: ${what}` };
  if (fp32.manifest.precision !== 'fp32') {
    throw new CvoptError('MODEL_INVALID', `engine ${id} needs the ${spec.transform} conversion of an FP32 model, but ${fp32.onnx} is ${fp32.manifest.precision}`, {
      where: { file: fp32.onnx },
      hint: `pass the FP32 model it came from, or use an engine of its precision (${fp32.manifest.precision})`,
    });
  }
  const stage = o.onStage ?? (() => {});
  if (spec.transform === 'int8-qdq' || spec.transform === 'trt-int8') {
    const tensorrt = spec.transform === 'trt-int8';
    const q = await quantized(fp32.onnx, fp32.manifest, o, tensorrt ? 'int8' : 'uint8', stage);
    if (!tensorrt) return { engine: id, onnx: q.onnx, manifest: q.manifest, packageSource: { settings: { calibrationImages: q.calib, activations: 'uint8' } }, describe: `${id}: static INT8 QDQ (uint8 activations, ${q.calib} calibration images) of the ${what}` };
    return trtModel(id, q.onnx, q.manifest, 'int8', o, what, stage);
  }
  if (spec.transform === 'fp16') {
    const path = join(o.cacheDir, 'fp16', 'model.onnx');
    if (!existsSync(path)) {
      stage('converting to FP16');
      mkdirSync(dirname(path), { recursive: true });
      writeOnnx(convertFp16(readOnnx(fp32.onnx).model).model, path);
    }
    return { engine: id, onnx: path, manifest: { ...fp32.manifest, precision: 'fp16' }, describe: `${id}: FP16 conversion of the ${what}` };
  }
  if (spec.transform === 'trt-fp16') return trtModel(id, fp32.onnx, fp32.manifest, 'fp16', o, what, stage);
  throw new CvoptError('INTERNAL', `no model transform for ${spec.transform}`);
}

async function quantized(fp32: string, manifest: ModelManifest, o: VariantOptions, activations: 'uint8' | 'int8', stage: (m: string) => void): Promise<{ onnx: string; manifest: ModelManifest; calib: number }> {
  const calib = o.calib ?? DEFAULT_CALIB_IMAGES;
  // Calibration settings are part of the cached model's identity.
  const dir = join(o.cacheDir, `${activations === 'uint8' ? 'int8' : 'int8-trt'}-calib${calib}`);
  const onnx = join(dir, 'model.onnx');
  if (!existsSync(onnx) || !existsSync(join(dir, 'model.json'))) {
    if (!o.data) throw new CvoptError('INVALID_ARGUMENT', 'an INT8 engine needs a dataset to calibrate on', { where: { field: '--data' }, hint: 'pass --data DATA' });
    stage(`quantizing to INT8 QDQ (${activations} activations, ${calib} calibration images)`);
    mkdirSync(dir, { recursive: true });
    // Whoever asked measures accuracy itself; the quantizer's own check runs on one image only.
    await quantizeOnnx(fp32, onnx, { data: o.data, manifest, calib, evalImages: 1, activations, ...(o.threads ? { intraOpNumThreads: o.threads } : {}) });
  }
  return { onnx, manifest: readJsonManifest(join(dir, 'model.json')), calib };
}

async function trtModel(id: EngineId, onnx: string, manifest: ModelManifest, precision: 'fp16' | 'int8', o: VariantOptions, fp32Describe: string, stage: (m: string) => void): Promise<EngineModel> {
  const probes = o.probes ?? (await probeEngines({ python: false }));
  const trtexec = probes.tensorrt.trtexec;
  const gpu = probes.nvidia.gpus[0]?.name;
  const version = tensorrtVersionOf(probes.tensorrt.libnvinfer);
  if (!trtexec || !gpu || !version) {
    throw new CvoptError('ENGINE_UNAVAILABLE', `cannot build the TensorRT engine: ${!trtexec ? 'no trtexec' : !gpu ? 'no GPU name' : 'no TensorRT version (libnvinfer.so.X.Y.Z)'}`, { hint: 'run `cvopt doctor`' });
  }
  stage(`building the TensorRT ${precision} engine with trtexec (cached by model, TensorRT, GPU and precision)`);
  const built = await buildTrtEngine({ trtexec, onnx, cacheDir: join(o.cacheDir, '..', 'trt-cache'), key: { modelSha256: sha256File(onnx), tensorrtVersion: version, gpuName: gpu, precision } });
  const dir = join(o.cacheDir, `trt-${precision}`);
  mkdirSync(dir, { recursive: true });
  const engineCopy = join(dir, basename(built.engine));
  if (!existsSync(engineCopy)) copyFileSync(built.engine, engineCopy);
  const ctx = join(dir, 'model_ctx.onnx');
  // Relative to the context model: ONNX Runtime resolves ep_cache_context against the model's folder.
  writeOnnx(epContextModel(readOnnx(onnx).model, basename(engineCopy)), ctx);
  return {
    engine: id,
    onnx: ctx,
    manifest: { ...manifest, precision },
    packageSource: { onnx, tensorrt: { precision, builtWith: version } },
    describe: `${id}: TensorRT ${version} ${precision} engine (trtexec${precision === 'int8' ? ' from the int8 QDQ model' : ' --fp16'}, ${built.cached ? 'cached' : 'built now'}) of the ${fp32Describe}`,
  };
}
