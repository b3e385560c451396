import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { CvoptError, ENGINES, ORT_ENGINE_IDS, intraOpThreadsFor, type ModelManifest } from '@cvopt/core';
import type { Engine, EngineId, EngineInfo, EngineOutput, ExecutionProviderId, RunOptions, TensorOutput } from './engine.js';
import { floatArrayToHalf, halfArrayToFloat } from './half.js';
import { ortBinaryDir } from './probe.js';
import { engineVersions } from './versions.js';

export interface OrtEngineOptions {
  /**
   * The engine id (core ENGINES) this session is: its provider is used and it is what describe() reports. The
   * caller hands over the model file the id's transform produced (an INT8 QDQ file for ort-cpu-int8, …).
   */
  engine?: EngineId;
  /** Execution provider when no engine id is given; nothing falls back silently: an unavailable provider is an ENGINE_UNAVAILABLE error. */
  provider?: ExecutionProviderId;
  /**
   * Threads inside one operator; 0 or unset lets ONNX Runtime pick (one per physical core), except under a cgroup
   * CPU quota below the cores (a container's --cpus), where it is the quota's whole CPUs: ONNX Runtime counts the
   * host's cores and would start more threads than the quota lets run.
   */
  intraOpNumThreads?: number;
  /** Threads across operators, used only with executionMode 'parallel'. */
  interOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  executionMode?: 'sequential' | 'parallel';
  /** GPU ordinal for cuda / tensorrt. */
  deviceId?: number;
  /** Largest batch accepted by a dynamic-batch model (default 32). Ignored for a fixed batch. */
  maxBatch?: number;
  /**
   * Whether idle intra-op threads busy-wait for the next parallel section (ONNX Runtime's default, true). Off,
   * they sleep and leave the cores to other work in the process (decoding, HTTP), at a small latency cost.
   */
  spinning?: boolean;
}

export const DEFAULT_MAX_BATCH = 32;

/**
 * Whether ONNX Runtime's intra-op threads spin when a model is served: no (the runtime's intraOpSpinning default).
 * Spinning threads hold every core between runs, which a service needs for HTTP and decoding; they win only back to
 * back. `cvopt bench` and tune's latency time engines the same way, so the figures that pick an engine are the ones
 * the service delivers (bench --spinning measures ONNX Runtime's own default instead).
 */
export const SERVED_SPINNING = false;

type FeedType = 'float32' | 'float16' | 'uint8';

/**
 * Session options exactly as the caller asked (the benchmark must be able to build the same bare session), with
 * the intra-op threads left to ONNX Runtime capped by a CPU quota (quotaThreads).
 */
export function ortSessionOptions(opts: OrtEngineOptions = {}): ort.InferenceSession.SessionOptions {
  const provider = providerOf(opts);
  const ep: ort.InferenceSession.ExecutionProviderConfig =
    provider === 'cuda' || provider === 'tensorrt' ? { name: provider, deviceId: opts.deviceId ?? 0 } : provider;
  const so: ort.InferenceSession.SessionOptions = {
    executionProviders: [ep],
    graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
    executionMode: opts.executionMode ?? 'sequential',
  };
  const intra = intraOpThreadsFor(opts.intraOpNumThreads);
  if (intra) so.intraOpNumThreads = intra;
  if (opts.interOpNumThreads) so.interOpNumThreads = opts.interOpNumThreads;
  if (opts.spinning === false) so.extra = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
  return so;
}

function checkOptions(opts: OrtEngineOptions): void {
  const ints: [keyof OrtEngineOptions, number][] = [
    ['intraOpNumThreads', 0],
    ['interOpNumThreads', 0],
    ['deviceId', 0],
    ['maxBatch', 1],
  ];
  for (const [field, min] of ints) {
    const v = opts[field];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min)) {
      throw new CvoptError('INVALID_ARGUMENT', `${field} must be an integer ≥ ${min}, got ${String(v)}`, { where: { field } });
    }
  }
}

function providerOf(opts: OrtEngineOptions): ExecutionProviderId {
  return (opts.engine ? ENGINES[opts.engine].provider : undefined) ?? opts.provider ?? 'cpu';
}

/**
 * The engine id of a session: the one asked for, else the ONNX Runtime id with this provider and the model's
 * precision (an int8 model on the CPU provider is ort-cpu-int8), else the provider's first id.
 */
export function ortEngineIdFor(provider: ExecutionProviderId, precision: ModelManifest['precision']): EngineId {
  const same = ORT_ENGINE_IDS.filter((id) => ENGINES[id].provider === provider);
  const id = same.find((x) => ENGINES[x].precision === precision) ?? same[same.length - 1];
  if (!id) {
    throw new CvoptError('ENGINE_UNAVAILABLE', `no cvopt engine id runs on the ${provider} execution provider`, {
      hint: `use one of ${ORT_ENGINE_IDS.join(', ')}`,
    });
  }
  return id;
}

/** Open an ONNX file on ONNX Runtime and check it against its manifest. */
export async function createOrtEngine(modelPath: string, manifest: ModelManifest, opts: OrtEngineOptions = {}): Promise<Engine> {
  checkOptions(opts);
  if (opts.engine && ENGINES[opts.engine].runtime !== 'onnxruntime') {
    throw new CvoptError('INVALID_ARGUMENT', `engine ${opts.engine} does not run on ONNX Runtime`, { where: { field: 'engine' }, hint: `use one of ${ORT_ENGINE_IDS.join(', ')}` });
  }
  const provider = providerOf(opts);
  const id = opts.engine ?? ortEngineIdFor(provider, manifest.precision);
  if (!existsSync(modelPath) || !statSync(modelPath).isFile()) {
    throw new CvoptError('MODEL_INVALID', `model file ${modelPath} does not exist`, {
      where: { file: modelPath },
      hint: 'check the path; export a model with `cvopt export MODEL.pt --out model.onnx`',
    });
  }
  const supported = ort.listSupportedBackends().map((b) => b.name);
  if (!supported.includes(provider)) {
    throw new CvoptError('ENGINE_UNAVAILABLE', `the installed onnxruntime-node has no ${provider} execution provider`, {
      hint: 'run `cvopt doctor` to see which providers this machine can use and how to add the missing ones',
    });
  }
  // Asking ORT for a GPU provider whose library is absent makes it log a native error before failing; say why first.
  const providerLib = join(ortBinaryDir(), `libonnxruntime_providers_${provider}.so`);
  if ((provider === 'cuda' || provider === 'tensorrt') && process.platform === 'linux' && !existsSync(providerLib)) {
    throw new CvoptError('ENGINE_UNAVAILABLE', `the installed onnxruntime-node has no ${provider} provider library (${providerLib} is missing)`, {
      hint: 'on a Linux x64 machine with CUDA 12 and cuDNN 9 run `npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12`; `cvopt doctor` lists what else is missing',
    });
  }
  let session: ort.InferenceSession;
  const so = ortSessionOptions(opts);
  try {
    session = await ort.InferenceSession.create(modelPath, so);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (provider !== 'cpu' && /provider|cuda|tensorrt|webgpu|adapter|device|libcu|nvinfer/i.test(message) && !/protobuf|parse/i.test(message)) {
      throw new CvoptError('ENGINE_UNAVAILABLE', `ONNX Runtime could not start the ${provider} provider for ${modelPath}: ${message}`, {
        where: { file: modelPath },
        hint: 'run `cvopt doctor` to see what this provider needs on this machine',
        cause: e,
      });
    }
    throw new CvoptError('MODEL_INVALID', `ONNX Runtime cannot load ${modelPath}: ${message}`, {
      where: { file: modelPath },
      hint: 'the file is truncated, corrupt or not an ONNX model; re-export it or check it with `cvopt check`',
      cause: e,
    });
  }
  try {
    return new OrtEngine(session, modelPath, manifest, id, provider, { ...opts, intraOpNumThreads: so.intraOpNumThreads ?? 0 });
  } catch (e) {
    await session.release();
    throw e;
  }
}

class OrtEngine implements Engine {
  readonly id: EngineId;
  private readonly inputName: string;
  private readonly inputDims: (number | string)[];
  private readonly feedType: FeedType;
  private readonly outputName: string;
  private readonly info: EngineInfo;
  private closed = false;

  constructor(
    private readonly session: ort.InferenceSession,
    modelPath: string,
    readonly manifest: ModelManifest,
    id: EngineId,
    provider: ExecutionProviderId,
    opts: OrtEngineOptions,
  ) {
    this.id = id;
    const input = session.inputMetadata.find((m) => m.name === manifest.input.name);
    if (!input) {
      throw new CvoptError('MANIFEST_INVALID', `model.json names input "${manifest.input.name}" but ${modelPath} has inputs ${session.inputNames.join(', ')}`, {
        where: { file: modelPath, field: 'input.name' },
        hint: 'set input.name in model.json to the graph input name',
      });
    }
    if (!input.isTensor) throw new CvoptError('MODEL_INVALID', `input "${input.name}" of ${modelPath} is not a tensor`, { where: { file: modelPath } });
    if (!['float32', 'float16', 'uint8'].includes(input.type)) {
      throw new CvoptError('MODEL_INVALID', `input "${input.name}" of ${modelPath} has type ${input.type}; cvopt feeds float32, float16 or uint8 images`, {
        where: { file: modelPath },
      });
    }
    if (!session.outputNames.includes(manifest.output.name)) {
      throw new CvoptError('MANIFEST_INVALID', `model.json names output "${manifest.output.name}" but ${modelPath} has outputs ${session.outputNames.join(', ')}`, {
        where: { file: modelPath, field: 'output.name' },
        hint: 'set output.name in model.json to the graph output name',
      });
    }
    this.inputName = input.name;
    this.inputDims = [...input.shape];
    this.feedType = input.type as FeedType;
    this.outputName = manifest.output.name;
    const batch = this.inputDims[0];
    const dynamicBatch = this.inputDims.length > 0 && typeof batch !== 'number';
    const maxBatch = dynamicBatch ? (opts.maxBatch ?? DEFAULT_MAX_BATCH) : typeof batch === 'number' ? batch : undefined;
    this.info = {
      id: this.id,
      provider,
      precision: manifest.precision,
      inputName: this.inputName,
      inputDims: this.inputDims,
      dynamicBatch,
      ...(maxBatch === undefined ? {} : { maxBatch }),
      threads: opts.intraOpNumThreads ?? 0,
      versions: engineVersions(),
    };
  }

  describe(): EngineInfo {
    return { ...this.info, inputDims: [...this.info.inputDims], versions: { ...this.info.versions } };
  }

  async run(input: Float32Array, dims: readonly number[], opts?: RunOptions): Promise<EngineOutput> {
    if (this.closed) throw new CvoptError('NOT_READY', `engine ${this.id} is closed`, { hint: 'create a new engine' });
    if (opts?.signal?.aborted) throw cancelled(opts.signal);
    this.checkShape(input, dims);
    const shape = dims as number[];
    const tensor =
      this.feedType === 'float32'
        ? new ort.Tensor('float32', input, shape)
        : this.feedType === 'float16'
          ? new ort.Tensor('float16', floatArrayToHalf(input), shape)
          : new ort.Tensor('uint8', Uint8Array.from(input, (v) => Math.max(0, Math.min(255, Math.round(v)))), shape);
    // A fresh one-key feeds object per call: ORT reads it on a later tick, so a shared one would race under concurrency.
    const feeds: Record<string, ort.Tensor> = { [this.inputName]: tensor };
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await this.session.run(feeds);
    } catch (e) {
      throw new CvoptError('ENGINE_FAILED', `ONNX Runtime failed running ${this.id}: ${e instanceof Error ? e.message : String(e)}`, {
        hint: 'the model may not support this input size or batch; check it with `cvopt check`',
        cause: e,
      });
    }
    if (opts?.signal?.aborted) throw cancelled(opts.signal);
    const outputs: Record<string, TensorOutput> = {};
    for (const name in results) {
      const t = results[name];
      if (t) outputs[name] = toFloat(t);
    }
    const main = outputs[this.outputName];
    if (!main) throw new CvoptError('ENGINE_FAILED', `ONNX Runtime returned no "${this.outputName}" output`);
    return { data: main.data, dims: main.dims, outputs };
  }

  private checkShape(input: Float32Array, dims: readonly number[]): void {
    const expected = this.inputDims;
    const bad = (why: string): never => {
      throw new CvoptError('TENSOR_SHAPE', `input "${this.inputName}": expected dims [${expected.join(', ')}], got [${dims.join(', ')}] (${why})`, {
        where: { field: this.inputName },
        hint: `preprocess to [${expected.map((d) => (typeof d === 'number' ? d : 'N')).join(', ')}] NCHW float32`,
      });
    };
    if (dims.length !== expected.length) bad(`rank ${dims.length}, model wants ${expected.length}`);
    let size = 1;
    for (let i = 0; i < dims.length; i++) {
      const d = dims[i] as number;
      const want = expected[i];
      if (!Number.isInteger(d) || d < 1) bad(`dim ${i} is not a positive integer`);
      if (typeof want === 'number' && d !== want) bad(`dim ${i} is ${d}, model wants ${want}`);
      size *= d;
    }
    const batch = dims[0] ?? 1;
    if (this.info.maxBatch !== undefined && batch > this.info.maxBatch) bad(`batch ${batch} exceeds maxBatch ${this.info.maxBatch}`);
    if (input.length !== size) bad(`the data holds ${input.length} values, the dims need ${size}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}

function toFloat(t: ort.Tensor): TensorOutput {
  const dims = [...t.dims];
  if (t.type === 'float32') return { data: t.data as Float32Array, dims };
  if (t.type === 'float16') {
    const d = t.data;
    // Where the platform has Float16Array ORT returns one; older ones get raw bits.
    return { data: d instanceof Uint16Array ? halfArrayToFloat(d) : Float32Array.from(d as ArrayLike<number>), dims };
  }
  if (t.type === 'int64' || t.type === 'uint64') return { data: Float32Array.from(t.data as BigInt64Array, Number), dims };
  if (ArrayBuffer.isView(t.data)) return { data: Float32Array.from(t.data as unknown as ArrayLike<number>), dims };
  throw new CvoptError('ENGINE_FAILED', `output of type ${t.type} cannot be read as numbers`);
}

function cancelled(signal: AbortSignal): CvoptError {
  return new CvoptError('CANCELLED', 'inference was cancelled', { cause: signal.reason });
}
