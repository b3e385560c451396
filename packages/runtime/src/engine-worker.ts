import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { CvoptError, toCvoptError, type ModelManifest } from '@cvopt/core';
import { createOrtEngine, type Engine, type OrtEngineOptions } from '@cvopt/engines';
import { BufferPool } from './buffer-pool.js';

/**
 * The model's own thread. onnxruntime-node's session.run holds the calling thread for the whole inference,
 * so on the main thread it would freeze HTTP parsing, admission and refusals for every batch. Here it blocks
 * only this worker; the main thread keeps answering.
 */
interface Init {
  modelPath: string;
  manifest: ModelManifest;
  options: OrtEngineOptions;
  /** Nice value for this thread and the intra-op threads ONNX Runtime starts from it (Linux: per thread). */
  nice: number;
}

type Request = { type: 'run'; id: number; data: Float32Array; dims: number[] } | { type: 'give'; data: Float32Array } | { type: 'close' };

/**
 * Output buffers the main thread is done with. A result is copied into one of these instead of handing over the
 * buffer ONNX Runtime allocated, so the main thread's heap sees no new multi-megabyte allocation per request
 * (each one costs it a full garbage collection sooner); the fresh buffer dies here, in this small heap.
 */
const outputs = new BufferPool();

const port = parentPort;
if (!port) throw new Error('engine-worker must run inside a worker thread');

const wireError = (e: unknown) => {
  const err = toCvoptError(e);
  return { code: err.code, message: err.message, hint: err.hint, where: err.where };
};

const init = workerData as Init;
let engine: Engine;
try {
  // Before the session exists: its thread pool is created now and inherits this thread's nice value, so the
  // main thread (HTTP, admission, refusals) and image decoding win the CPU whenever they need it.
  if (init.nice !== 0) setPriority(init.nice);
  engine = await createOrtEngine(init.modelPath, init.manifest, init.options);
  port.postMessage({ type: 'ready', info: engine.describe() });
} catch (e) {
  port.postMessage({ type: 'failed', error: wireError(e) });
  process.exit(0);
}

port.on('message', (m: Request) => {
  if (m.type === 'close') {
    void engine.close().then(() => process.exit(0));
    return;
  }
  if (m.type === 'give') {
    outputs.give(m.data);
    return;
  }
  const t0 = performance.now();
  engine.run(m.data, m.dims).then(
    (out) => {
      const ms = performance.now() - t0;
      // Copy only when the output is a view into a larger buffer; otherwise hand the buffer over. The input goes
      // back too, so the main thread can decode the next image into it instead of allocating a fresh tensor.
      const reuse = outputs.reuse(out.data.length);
      if (reuse) reuse.set(out.data);
      const data = reuse ?? (out.data.byteOffset === 0 && out.data.byteLength === out.data.buffer.byteLength ? out.data : out.data.slice());
      port.postMessage({ type: 'result', id: m.id, data, dims: out.dims, input: m.data, ms }, [data.buffer as ArrayBuffer, m.data.buffer as ArrayBuffer]);
    },
    (e: unknown) => port.postMessage({ type: 'result', id: m.id, error: wireError(e instanceof CvoptError ? e : toCvoptError(e)) }),
  );
});
