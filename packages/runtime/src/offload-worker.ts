import { parentPort } from 'node:worker_threads';
import { toCvoptError } from '@cvopt/core';
import { preprocess, type PreprocessSpec } from '@cvopt/vision';
import { decodeV2Request } from './v2-codec.js';

/**
 * Work that would hold the HTTP thread for hundreds of milliseconds on hostile input: BMP decoding (plain JS),
 * and parsing Open Inference Protocol JSON bodies of megabytes. Results come back as transferred buffers.
 */
type Task =
  | { type: 'image'; id: number; bytes: Uint8Array; spec: PreprocessSpec; maxPixels: number; out?: Float32Array }
  | { type: 'v2'; id: number; bytes: Uint8Array; headerLength?: number; limits: { maxDepth: number } }
  | { type: 'ping'; id: number };

const port = parentPort;
if (!port) throw new Error('offload-worker must run inside a worker thread');

const wire = (e: unknown) => {
  const err = toCvoptError(e);
  return { code: err.code, message: err.message, hint: err.hint, where: err.where };
};

port.on('message', (t: Task) => {
  void (async () => {
    try {
      if (t.type === 'ping') port.postMessage({ id: t.id });
      else if (t.type === 'image') {
        const buf = Buffer.from(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
        const r = await preprocess(buf, t.spec, { maxPixels: t.maxPixels, ...(t.out ? { out: t.out } : {}) });
        port.postMessage({ id: t.id, tensor: r.tensor, meta: r.meta }, [r.tensor.buffer as ArrayBuffer]);
      } else {
        const r = decodeV2Request(t.bytes, t.headerLength, t.limits);
        port.postMessage({ id: t.id, request: r.request }, r.transfer);
      }
    } catch (e) {
      port.postMessage({ id: t.id, error: wire(e) });
    }
  })();
});
