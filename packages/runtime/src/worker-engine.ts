import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CvoptError, type ErrorCode, type ModelManifest } from '@cvopt/core';
import type { Engine, EngineInfo, EngineOutput, OrtEngineOptions } from '@cvopt/engines';
import { BufferPool } from './buffer-pool.js';

interface WireError {
  code: ErrorCode;
  message: string;
  hint?: string;
  where?: { file?: string; line?: number; field?: string };
}

const fromWire = (e: WireError) => new CvoptError(e.code, e.message, { ...(e.hint ? { hint: e.hint } : {}), ...(e.where ? { where: e.where } : {}) });

/** dist/engine-worker.js; from source (tests run TS directly) the built copy beside it in dist/. */
function workerFile(): URL {
  const here = new URL('./engine-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL('../dist/engine-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new CvoptError('DEPENDENCY_MISSING', 'the engine worker script is not built', { hint: 'run `npx tsc -b packages/runtime`' });
}

/**
 * An Engine whose ONNX Runtime session lives in a worker thread (see engine-worker.ts for why). Inputs are
 * transferred, not copied, when they own their buffer; runs execute one after another in the worker, so a run
 * sent while another is running waits in the worker's inbox and starts the moment the first ends.
 */
export interface WorkerEngine extends Engine {
  /** Like run, but hands the input's buffer to the worker (no copy); the caller must not touch it again. */
  runOwned(input: Float32Array, dims: readonly number[]): Promise<EngineOutput>;
  /** An input buffer of exactly `length` floats that came back from an earlier run, or a new one. Contents undefined. */
  takeInput(length: number): Float32Array;
  /** Offer a buffer the caller is done with to takeInput. */
  recycle(buffer: Float32Array): void;
  /** Hand a run's output back once read, to carry a later result (the caller must not touch it again). */
  recycleOutput(output: Float32Array): void;
  /** Stop the worker thread(s) at once, as a crash would (runs in flight fail with ENGINE_FAILED). */
  terminate(): Promise<void>;
  /** Whether the inference threads' nice value follows setLoaded (engineNiceMode under-load, where the OS allows). */
  readonly niceFollowsLoad: boolean;
  /** Tell the instances whether the service is loaded now: their nice value goes to engineNice, or back. */
  setLoaded(loaded: boolean): void;
}

export interface WorkerEngineOptions {
  /** Nice value for the inference thread and its intra-op threads (0 = unchanged). */
  nice?: number;
  /** 'always' (default): nice from the start; 'under-load': only between setLoaded(true) and setLoaded(false). */
  niceMode?: 'always' | 'under-load';
  /** Where returned input buffers go (shared by the instances of one model). */
  pool?: BufferPool;
  /** Called when the worker thread ends without close() (a crash, an abort in native code, terminate()). */
  onDeath?: (why: string) => void;
}

export async function createWorkerEngine(modelPath: string, manifest: ModelManifest, options: OrtEngineOptions, wo: WorkerEngineOptions = {}): Promise<WorkerEngine> {
  const worker = new Worker(workerFile(), { workerData: { modelPath, manifest, options, nice: wo.nice ?? 0, niceMode: wo.niceMode ?? 'always' } });
  let niceFollowsLoad = false;
  const info = await new Promise<EngineInfo>((resolve, reject) => {
    worker.once('message', (m: { type: string; info?: EngineInfo; error?: WireError; niceFollowsLoad?: boolean }) => {
      niceFollowsLoad = m.niceFollowsLoad === true;
      if (m.type === 'ready' && m.info) resolve(m.info);
      else reject(fromWire(m.error ?? { code: 'INTERNAL', message: 'engine worker failed to start' }));
    });
    worker.once('error', (e) => reject(new CvoptError('ENGINE_FAILED', `engine worker crashed while loading: ${e.message}`, { cause: e })));
  });
  const pending = new Map<number, { resolve: (o: EngineOutput) => void; reject: (e: unknown) => void }>();
  let nextId = 1;
  let closed = false;
  const pool = wo.pool ?? new BufferPool();
  const failAll = (e: unknown) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  worker.on('message', (m: { type: string; id: number; data?: Float32Array; dims?: number[]; error?: WireError; input?: Float32Array; ms?: number }) => {
    if (m.type !== 'result') return;
    pool.give(m.input);
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(fromWire(m.error));
    else p.resolve({ data: m.data as Float32Array, dims: m.dims as number[], outputs: {}, ...(m.ms !== undefined ? { runMs: m.ms } : {}) });
  });
  worker.on('error', (e) => failAll(new CvoptError('ENGINE_FAILED', `engine worker crashed: ${e.message}`, { cause: e })));
  worker.on('exit', (code) => {
    const unexpected = !closed;
    closed = true;
    failAll(new CvoptError('ENGINE_FAILED', 'engine worker exited'));
    if (unexpected) wo.onDeath?.(`the engine worker thread exited (code ${code})`);
  });

  const send = (data: Float32Array, dims: readonly number[]): Promise<EngineOutput> => {
    if (closed) return Promise.reject(new CvoptError('NOT_READY', 'the engine is closed'));
    const id = nextId++;
    return new Promise<EngineOutput>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ type: 'run', id, data, dims: [...dims] }, [data.buffer as ArrayBuffer]);
    });
  };

  return {
    id: info.id,
    manifest,
    describe: () => ({ ...info, inputDims: [...info.inputDims], versions: { ...info.versions } }),
    // The Engine contract leaves the caller's input intact, so plain run() sends a copy.
    run: (input, dims) => send(input.slice(), dims),
    runOwned(input, dims) {
      // A view into a larger buffer is copied: transferring would detach the rest of that buffer too.
      const owns = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength;
      return send(owns ? input : input.slice(), dims);
    },
    takeInput: (length) => pool.take(length),
    recycle: (buffer) => pool.give(buffer),
    recycleOutput: (output) => {
      if (closed || output.byteOffset !== 0 || output.byteLength !== output.buffer.byteLength || output.length === 0) return;
      worker.postMessage({ type: 'give', data: output }, [output.buffer as ArrayBuffer]);
    },
    async terminate(): Promise<void> {
      await worker.terminate();
    },
    niceFollowsLoad,
    setLoaded: (loaded) => {
      if (niceFollowsLoad && !closed) worker.postMessage({ type: 'loaded', loaded });
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      const done = new Promise<void>((r) => worker.once('exit', () => r()));
      worker.postMessage({ type: 'close' });
      await done;
    },
  };
}

/**
 * `count` instances of one model, each in its own worker thread with its own session, behind one WorkerEngine:
 * a run goes to an idle instance (the scheduler never starts more runs than instances). One instance is the
 * default; more trade memory (weights and arena per instance) for throughput on a CPU, where single-threaded
 * instances side by side lose nothing to each other, whereas one multi-threaded session stalls at every
 * operator's barrier whenever decoding or HTTP takes one of its cores.
 */
export async function createEnginePool(modelPath: string, manifest: ModelManifest, options: OrtEngineOptions, count: number, wo: Omit<WorkerEngineOptions, 'pool'> = {}): Promise<WorkerEngine> {
  if (!Number.isInteger(count) || count < 1) throw new CvoptError('INVALID_ARGUMENT', `engine instances must be a whole number ≥ 1, got ${count}`);
  const pool = new BufferPool();
  const settled = await Promise.allSettled(Array.from({ length: count }, () => createWorkerEngine(modelPath, manifest, options, { ...wo, pool })));
  const engines = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(engines.map((e) => e.close()));
    throw failed.reason;
  }
  if (count === 1) return engines[0] as WorkerEngine;
  const busy = engines.map(() => 0);
  const pick = () => busy.indexOf(Math.min(...busy));
  const on = async (f: (e: WorkerEngine) => Promise<EngineOutput>): Promise<EngineOutput> => {
    const i = pick();
    busy[i]! += 1;
    try {
      return await f(engines[i] as WorkerEngine);
    } finally {
      busy[i]! -= 1;
    }
  };
  const first = engines[0] as WorkerEngine;
  return {
    id: first.id,
    manifest,
    describe: () => first.describe(),
    run: (input, dims) => on((e) => e.run(input, dims)),
    runOwned: (input, dims) => on((e) => e.runOwned(input, dims)),
    takeInput: (length) => pool.take(length),
    recycle: (buffer) => pool.give(buffer),
    recycleOutput: (output) => {
      // Whichever instance is least busy gets it; all of one model produce outputs of the same lengths.
      (engines[pick()] as WorkerEngine).recycleOutput(output);
    },
    terminate: async () => {
      await Promise.all(engines.map((e) => e.terminate()));
    },
    niceFollowsLoad: engines.some((e) => e.niceFollowsLoad),
    setLoaded: (loaded) => engines.forEach((e) => e.setLoaded(loaded)),
    close: async () => {
      await Promise.all(engines.map((e) => e.close()));
    },
  };
}

/**
 * Drive an engine's nice value from the service's load: loaded the moment `pressure()` says so (checked every
 * `everyMs`), calm again only after `calmAfterMs` without pressure, so a burst's gaps do not flip it back and
 * forth. At one user the inference threads then run at the process's own priority — as fast as `cvopt bench`
 * even when other processes want the CPU — and under a storm the HTTP thread and decoding come first. Returns stop.
 */
export function followLoad(engine: WorkerEngine, pressure: () => boolean, o: { everyMs?: number; calmAfterMs?: number; onChange?: (loaded: boolean) => void } = {}): () => void {
  if (!engine.niceFollowsLoad) return () => {};
  const calmAfterMs = o.calmAfterMs ?? 1000;
  let loaded = false;
  let lastPressure = -Infinity;
  const timer = setInterval(() => {
    const now = performance.now();
    if (pressure()) lastPressure = now;
    const want = now - lastPressure < calmAfterMs;
    if (want === loaded) return;
    loaded = want;
    engine.setLoaded(loaded);
    o.onChange?.(loaded);
  }, o.everyMs ?? 50);
  timer.unref();
  return () => clearInterval(timer);
}
