import { parentPort, workerData } from 'node:worker_threads';
import { CvoptError, toCvoptError, type ModelManifest } from '@cvopt/core';
import { createOrtEngine, type Engine, type OrtEngineOptions } from '@cvopt/engines';

/**
 * The model's own thread. onnxruntime-node's session.run holds the calling thread for the whole inference,
 * so on the main thread it would freeze HTTP parsing, admission and refusals for every batch. Here it blocks
 * only this worker; the main thread keeps answering.
 */
interface Init {
  modelPath: string;
  manifest: ModelManifest;
  options: OrtEngineOptions;
}

type Request = { type: 'run'; id: number; data: Float32Array; dims: number[] } | { type: 'close' };

const port = parentPort;
if (!port) throw new Error('engine-worker must run inside a worker thread');

const wireError = (e: unknown) => {
  const err = toCvoptError(e);
  return { code: err.code, message: err.message, hint: err.hint, where: err.where };
};

const init = workerData as Init;
let engine: Engine;
try {
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
  engine.run(m.data, m.dims).then(
    (out) => {
      // Copy only when the output is a view into a larger buffer; otherwise hand the buffer over.
      const data = out.data.byteOffset === 0 && out.data.byteLength === out.data.buffer.byteLength ? out.data : out.data.slice();
      port.postMessage({ type: 'result', id: m.id, data, dims: out.dims }, [data.buffer as ArrayBuffer]);
    },
    (e: unknown) => port.postMessage({ type: 'result', id: m.id, error: wireError(e instanceof CvoptError ? e : toCvoptError(e)) }),
  );
});
