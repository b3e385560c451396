import { parentPort } from 'node:worker_threads';
import { toCvoptError } from '@cvopt/core';
import { preprocess, type PreprocessSpec } from '@cvopt/vision';
import { decodeJsonImage } from './json-image.js';
import { decodeV2Request, encodeV2Response, type V2OutputTensor, type V2ResponseHead } from './v2-codec.js';

/**
 * Work that would hold the HTTP thread for hundreds of milliseconds on hostile input: BMP decoding (plain JS),
 * parsing Open Inference Protocol JSON bodies of megabytes, decoding large base64 JSON images, and writing large
 * KServe outputs as JSON (YOLOv8n's 705,600 numbers). Results come back as transferred buffers.
 */
type Task =
  | { type: 'image'; id: number; bytes: Uint8Array; spec: PreprocessSpec; maxPixels: number; out?: Float32Array }
  | { type: 'v2'; id: number; bytes: Uint8Array; headerLength?: number; limits: { maxDepth: number } }
  | { type: 'jsonImage'; id: number; bytes: Uint8Array }
  | { type: 'v2out'; id: number; head: V2ResponseHead; outputs: V2OutputTensor[]; binary: string[] }
  | { type: 'ping'; id: number };

/** A buffer that owns its whole ArrayBuffer, so transferring it hands over nothing else (Node pools small ones). */
const owned = (b: Uint8Array): Uint8Array => (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b));

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
      } else if (t.type === 'jsonImage') {
        const image = owned(decodeJsonImage(t.bytes));
        port.postMessage({ id: t.id, image }, [image.buffer as ArrayBuffer]);
      } else if (t.type === 'v2out') {
        const r = encodeV2Response(t.head, t.outputs, (name) => t.binary.includes(name));
        const body = owned(r.body);
        port.postMessage({ id: t.id, body, headerLength: r.headerLength }, [body.buffer as ArrayBuffer]);
      } else {
        const r = decodeV2Request(t.bytes, t.headerLength, t.limits);
        port.postMessage({ id: t.id, request: r.request }, r.transfer);
      }
    } catch (e) {
      port.postMessage({ id: t.id, error: wire(e) });
    }
  })();
});
