import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CvoptError, type ErrorCode, type ModelManifest } from '@cvopt/core';
import type { Engine, EngineInfo, EngineOutput, OrtEngineOptions } from '@cvopt/engines';

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
 * transferred, not copied, when they own their buffer; runs execute one after another in the worker.
 */
export interface WorkerEngine extends Engine {
  /** Like run, but hands the input's buffer to the worker (no copy); the caller must not touch it again. */
  runOwned(input: Float32Array, dims: readonly number[]): Promise<EngineOutput>;
}

export async function createWorkerEngine(modelPath: string, manifest: ModelManifest, options: OrtEngineOptions): Promise<WorkerEngine> {
  const worker = new Worker(workerFile(), { workerData: { modelPath, manifest, options } });
  const info = await new Promise<EngineInfo>((resolve, reject) => {
    worker.once('message', (m: { type: string; info?: EngineInfo; error?: WireError }) => {
      if (m.type === 'ready' && m.info) resolve(m.info);
      else reject(fromWire(m.error ?? { code: 'INTERNAL', message: 'engine worker failed to start' }));
    });
    worker.once('error', (e) => reject(new CvoptError('ENGINE_FAILED', `engine worker crashed while loading: ${e.message}`, { cause: e })));
  });
  const pending = new Map<number, { resolve: (o: EngineOutput) => void; reject: (e: unknown) => void }>();
  let nextId = 1;
  let closed = false;
  const failAll = (e: unknown) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  worker.on('message', (m: { type: string; id: number; data?: Float32Array; dims?: number[]; error?: WireError }) => {
    if (m.type !== 'result') return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(fromWire(m.error));
    else p.resolve({ data: m.data as Float32Array, dims: m.dims as number[], outputs: {} });
  });
  worker.on('error', (e) => failAll(new CvoptError('ENGINE_FAILED', `engine worker crashed: ${e.message}`, { cause: e })));
  worker.on('exit', () => {
    closed = true;
    failAll(new CvoptError('ENGINE_FAILED', 'engine worker exited'));
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
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      const done = new Promise<void>((r) => worker.once('exit', () => r()));
      worker.postMessage({ type: 'close' });
      await done;
    },
  };
}
