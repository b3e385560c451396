import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CvoptError, type Logger, type ModelManifest } from '@cvopt/core';
import { readManifest, type EngineInfo, type TensorOutput } from '@cvopt/engines';
import { warmJpegWasm } from '@cvopt/vision';
import { ENGINES } from '@cvopt/core';
import { effectiveIntraOpThreads, providerOf, type RuntimeConfig } from './config.js';
import { prepareImage, renderPrediction } from './pipeline.js';
import { Readiness } from './readiness.js';
import { Scheduler, type SubmitOptions } from './scheduler.js';
import { Semaphore } from './semaphore.js';
import type { RuntimeMetrics } from './metrics.js';
import { createEnginePool, followLoad, type WorkerEngine } from './worker-engine.js';

/** Where the model comes from: an artifact directory (model.onnx + model.json) or an ONNX file with its manifest. */
export interface ModelSource {
  modelPath: string;
  artifactDir: string;
}

export function resolveModelSource(path: string): ModelSource {
  const p = resolve(path);
  if (!existsSync(p)) {
    throw new CvoptError('NOT_FOUND', `${path} does not exist`, {
      where: { file: path },
      hint: 'pass an artifact directory holding model.onnx and model.json, or an .onnx file with model.json beside it',
    });
  }
  if (statSync(p).isDirectory()) {
    const modelPath = join(p, 'model.onnx');
    if (!existsSync(modelPath)) {
      throw new CvoptError('MODEL_INVALID', `artifact directory ${path} has no model.onnx`, {
        where: { file: modelPath },
        hint: 'build an artifact with `cvopt package`, or pass the .onnx file itself',
      });
    }
    return { modelPath, artifactDir: p };
  }
  if (!p.endsWith('.onnx')) {
    throw new CvoptError('INVALID_ARGUMENT', `${path} is neither a directory nor an .onnx file`, { where: { file: path }, hint: 'pass an artifact directory or an .onnx model' });
  }
  return { modelPath: p, artifactDir: dirname(p) };
}

/** One sample's output, batch dimension 1. */
export type ItemOutput = TensorOutput;

/** A model loaded, warmed and put behind its own scheduler. Reload builds a new one and swaps it in whole. */
export interface LoadedModel {
  generation: number;
  manifest: ModelManifest;
  engine: WorkerEngine;
  info: EngineInfo;
  scheduler: Scheduler<Float32Array, ItemOutput>;
  /**
   * Images decoded ahead of the engine. An admitted request decodes its image only once it holds a slot, and
   * keeps it until its run ends: enough for the batches running and the next ones, so the engine never waits,
   * while the rest of the queue waits as compressed bytes instead of megabytes of tensor each.
   */
  prep: Semaphore;
  /** [C, H, W] of one sample. */
  sampleDims: number[];
  source: ModelSource;
  loadedAt: string;
  warmupMs: number;
  /** Stops moving the engine's nice value with the load (engineNiceMode under-load). */
  stopFollowingLoad: () => void;
}

/** Split a batched output into per-sample outputs (views, no copy). */
export function splitBatch(out: TensorOutput, n: number): ItemOutput[] {
  if (n === 1) return [out];
  const [batch, ...rest] = out.dims;
  if (batch !== n) throw new CvoptError('ENGINE_FAILED', `the model returned batch ${batch} for ${n} inputs`);
  const per = out.data.length / n;
  return Array.from({ length: n }, (_, i) => ({ data: out.data.subarray(i * per, (i + 1) * per), dims: [1, ...rest] }));
}

/** Concatenate samples into one NCHW batch (into `out` when given, which must hold them all). */
export function packBatch(items: Float32Array[], out?: Float32Array): Float32Array {
  if (items.length === 1) return items[0] as Float32Array;
  const per = (items[0] as Float32Array).length;
  const batch = out ?? new Float32Array(per * items.length);
  items.forEach((t, i) => batch.set(t, i * per));
  return batch;
}

export interface LoadOptions {
  config: RuntimeConfig;
  metrics?: RuntimeMetrics;
  /** The GPU slot limiter, shared by every model this process holds. */
  gpu?: Semaphore;
  log?: Logger;
  generation?: number;
  /** Called when the engine is open and warm-up starts. */
  onWarming?: () => void;
  /** Called when an engine worker thread dies unexpectedly. */
  onEngineDeath?: (why: string) => void;
}

/** Open the engine, check the manifest against it, warm it up and measure one run to seed admission estimates. */
export async function loadModel(source: ModelSource, o: LoadOptions): Promise<LoadedModel> {
  const manifest = readManifest(source.modelPath);
  const { config } = o;
  // One engine instance per concurrent execution (worker thread + session each); see createEnginePool.
  const engine = await createEnginePool(source.modelPath, manifest, {
    provider: providerOf(config.engine),
    intraOpNumThreads: effectiveIntraOpThreads(config),
    executionMode: 'sequential',
    maxBatch: Math.max(1, config.batchMax),
    spinning: config.intraOpSpinning,
  }, config.concurrency, { nice: config.engineNice, niceMode: config.engineNiceMode, ...(o.onEngineDeath ? { onDeath: o.onEngineDeath } : {}) });
  try {
    const info = engine.describe();
    const [, c, h, w] = info.inputDims;
    const sampleDims = [
      typeof c === 'number' ? c : 3,
      typeof h === 'number' ? h : manifest.preprocess.size[0],
      typeof w === 'number' ? w : manifest.preprocess.size[1],
    ];
    const fixedBatch = typeof info.inputDims[0] === 'number' ? (info.inputDims[0] as number) : undefined;
    if (fixedBatch !== undefined && fixedBatch !== 1) {
      throw new CvoptError('MANIFEST_INVALID', `${basename(source.modelPath)} has a fixed batch of ${fixedBatch}; the service needs batch 1 or a dynamic batch`, {
        where: { file: source.modelPath, field: 'input.shape' },
        hint: 're-export with `cvopt export --dynamic` or with batch 1',
      });
    }
    // model.json must describe this model: a wrong size would be letterboxed to the wrong shape and every request
    // blamed on the client. Class count and output format are checked by the pipeline warm-up below.
    const [, , fh, fw] = info.inputDims;
    const [mh, mw] = manifest.preprocess.size;
    if ((typeof fh === 'number' && fh !== mh) || (typeof fw === 'number' && fw !== mw)) {
      throw new CvoptError('MANIFEST_INVALID', `model.json says preprocess.size [${mh}, ${mw}] but ${basename(source.modelPath)} takes [${fh}, ${fw}]`, {
        where: { file: join(source.artifactDir, 'model.json'), field: 'preprocess.size' },
        hint: 'write the model’s input height and width into preprocess.size (or re-export to get a matching model.json)',
      });
    }
    const maxBatch = info.dynamicBatch ? Math.min(config.batchMax, info.maxBatch ?? config.batchMax) : 1;
    const perSample = sampleDims.reduce((a, b) => a * b, 1);
    const warm = new Float32Array(perSample).fill(0.5);
    const runBatch = async (inputs: Float32Array[]): Promise<ItemOutput[]> => {
      const t0 = performance.now();
      // A batch is copied into one buffer (pooled like single inputs); the samples' own buffers are free again.
      const packed = inputs.length === 1 ? (inputs[0] as Float32Array) : packBatch(inputs, engine.takeInput(inputs.length * perSample));
      if (inputs.length > 1) for (const x of inputs) engine.recycle(x);
      const out = await engine.runOwned(packed, [inputs.length, ...sampleDims]);
      // The worker's own timing: a batch sent ahead also waited for the one before it.
      o.metrics?.engineLatency.observe((out.runMs ?? performance.now() - t0) / 1000);
      o.metrics?.batchSize.observe(inputs.length);
      return splitBatch(out, inputs.length);
    };
    o.onWarming?.();
    // The first runs allocate and pick kernels; the last one is the service time estimate admission starts from.
    let warmupMs = 0;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await engine.run(warm, [1, ...sampleDims]);
      warmupMs = performance.now() - t0;
    }
    if (maxBatch > 1) await engine.run(packBatch(Array.from({ length: maxBatch }, () => warm)), [maxBatch, ...sampleDims]);
    await warmPipeline(source, manifest, engine, sampleDims, config);
    const scheduler = new Scheduler<Float32Array, ItemOutput>({
      queueMax: config.queueMax,
      concurrency: config.concurrency,
      batch: { maxBatch, maxDelayMs: config.batchDelayMs },
      run: runBatch,
      admissionTarget: config.admissionTarget,
      prefetch: config.enginePrefetch,
      ...(ENGINES[config.engine].gpu && o.gpu ? { limiter: o.gpu } : {}),
      initialBatchMs: warmupMs,
    });
    // Loaded: more requests admitted (decoding, queued, running) than two per instance — one running and the next
    // being decoded is a single user's steady state, not pressure.
    const stopFollowing = followLoad(engine, () => scheduler.admitted > 2 * config.concurrency);
    o.log?.info({ model: manifest.name, engine: info.id, maxBatch, warmupMs: Math.round(warmupMs * 10) / 10, niceFollowsLoad: engine.niceFollowsLoad }, 'model loaded and warmed');
    return {
      generation: o.generation ?? 1,
      manifest,
      engine,
      info,
      scheduler,
      // Decoding, queued, sent-ahead (with prefetch) and running requests: each stage holds at most one batch per instance.
      prep: new Semaphore((config.enginePrefetch ? 3 : 2) * config.concurrency * maxBatch),
      sampleDims,
      source,
      loadedAt: new Date().toISOString(),
      warmupMs,
      stopFollowingLoad: stopFollowing,
    };
  } catch (e) {
    await engine.close();
    throw e;
  }
}

/**
 * One synthetic image through decode-side preprocessing, the engine and postprocessing, exactly as a request goes.
 * A model.json that contradicts the model (class count, output format, task) fails here, before the service
 * reports ready, instead of failing every request later.
 */
async function warmPipeline(source: ModelSource, manifest: ModelManifest, engine: WorkerEngine, sampleDims: number[], config: RuntimeConfig): Promise<void> {
  await warmJpegWasm(); // small JPEGs decode in WebAssembly: compiled now, not on the first request
  const image = { data: new Uint8Array(48 * 32 * 3).fill(128), width: 48, height: 32 };
  try {
    const prep = await prepareImage(image, manifest, config.maxImagePixels);
    const out = await engine.run(prep.tensor, [1, ...sampleDims]);
    renderPrediction(out, { manifest } as LoadedModel, prep, config);
  } catch (e) {
    const err = e instanceof CvoptError ? e : undefined;
    throw new CvoptError('MANIFEST_INVALID', `model.json does not match ${basename(source.modelPath)}: ${(e as Error).message}`, {
      where: { file: join(source.artifactDir, 'model.json'), ...(err?.where?.field ? { field: err.where.field } : {}) },
      hint: 'make classNames, task and output (format, shape) describe the model’s real output, or re-export the model with `cvopt export`',
      cause: e,
    });
  }
}

/**
 * Holds the current model and drives the readiness state machine (loading → warming → ready ⇄ reloading; failed;
 * draining → stopped). Requests take `current` once and keep it, so a reload swaps atomically: new requests go to
 * the new model while the old one drains its queue and then closes.
 */
export class ModelHost {
  private model: LoadedModel | undefined;
  private reloading: Promise<LoadedModel> | undefined;
  readonly readiness: Readiness;

  constructor(
    private readonly source: ModelSource,
    private readonly o: LoadOptions & { readiness?: Readiness },
  ) {
    this.readiness = o.readiness ?? new Readiness();
  }

  /** A model is loaded and the service takes work (readiness ready or reloading). */
  get ready(): boolean {
    return this.model !== undefined && this.readiness.takesWork;
  }

  get current(): LoadedModel {
    if (!this.model) throw new CvoptError('NOT_READY', 'the model is still loading', { hint: 'wait for /readyz to answer 200', retryAfterS: 1 });
    return this.model;
  }

  async load(): Promise<LoadedModel> {
    try {
      this.model = await this.open(this.model?.generation ?? 0, () => this.readiness.to('warming'));
    } catch (e) {
      this.readiness.to('failed', (e as Error).message);
      throw e;
    }
    this.readiness.to('ready');
    return this.model;
  }

  /** Load a model whose engine reports its own death here. */
  private async open(prevGeneration: number, onWarming?: () => void): Promise<LoadedModel> {
    const self: { model?: LoadedModel } = {};
    self.model = await loadModel(this.source, {
      ...this.o,
      generation: prevGeneration + 1,
      ...(onWarming ? { onWarming } : {}),
      onEngineDeath: (why) => {
        if (self.model && self.model === this.model) this.engineDied(self.model, why);
      },
    });
    return self.model;
  }

  /**
   * An engine worker thread died (a native crash, an abort): readiness goes to failed at once (/readyz 503, new
   * work refused with NOT_READY), queued work fails with ENGINE_FAILED, and the model is loaded again — retried
   * with a growing pause while it keeps failing — until the service is ready or draining.
   */
  private engineDied(dead: LoadedModel, why: string): void {
    if (this.readiness.draining) return;
    this.o.log?.error({ why }, 'engine worker died; restarting the model');
    this.readiness.to('failed', why);
    dead.stopFollowingLoad();
    dead.scheduler.close();
    void dead.engine.close().catch(() => undefined);
    this.restarts++;
    void (async () => {
      for (let attempt = 0; !this.readiness.draining; attempt++) {
        try {
          this.readiness.to('loading');
          const next = await this.open(dead.generation, () => this.readiness.to('warming'));
          if (this.readiness.draining) {
            await retire(next);
            return;
          }
          this.model = next;
          this.readiness.to('ready');
          this.o.log?.info({ generation: next.generation }, 'engine restarted');
          return;
        } catch (e) {
          this.readiness.to('failed', (e as Error).message);
          await new Promise((r) => setTimeout(r, Math.min(30_000, 500 * 2 ** attempt)));
        }
      }
    })();
  }

  /** Engine restarts after a worker death since start. */
  restarts = 0;

  /** Load and warm the model files again, then swap; concurrent reloads share one. */
  async reload(): Promise<LoadedModel> {
    if (this.reloading) return this.reloading;
    this.reloading = (async () => {
      this.readiness.to('reloading');
      let next: LoadedModel;
      try {
        next = await this.open(this.model?.generation ?? 0);
      } catch (e) {
        this.readiness.to('ready'); // the old model keeps serving
        throw e;
      }
      const old = this.model;
      this.model = next;
      this.readiness.to('ready');
      if (old) void retire(old);
      return next;
    })();
    try {
      return await this.reloading;
    } finally {
      this.reloading = undefined;
    }
  }

  run(input: Float32Array, o: SubmitOptions, model: LoadedModel = this.current): Promise<ItemOutput> {
    return model.scheduler.submit(input, o);
  }

  /** Stop accepting, let queued and running work finish, release the engine. */
  async close(): Promise<void> {
    const m = this.model;
    if (this.readiness.state === 'draining') this.readiness.to('stopped');
    if (!m) return;
    await retire(m);
  }

  /** Readiness goes to draining; the scheduler refuses new work while accepted work finishes. */
  stopIntake(): void {
    this.readiness.to('draining');
    this.model?.scheduler.close();
  }

  async drained(): Promise<void> {
    await this.model?.scheduler.idle();
  }
}

async function retire(m: LoadedModel): Promise<void> {
  m.stopFollowingLoad();
  m.scheduler.close();
  await m.scheduler.idle();
  await m.engine.close();
}
