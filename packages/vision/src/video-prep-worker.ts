import { parentPort, workerData } from 'node:worker_threads';
import { serializeError, toCvoptError } from '@cvopt/core';
import type { RgbImage } from './image.js';
import { preprocess } from './preprocess.js';
import { readVideoFrames } from './video.js';
import type { PrepWorkerInit, PrepWorkerReply, PrepWorkerRequest } from './video-prep.js';

/**
 * The decode side of readPreparedFrames: reads ffmpeg's pipe and letterboxes each kept frame on this thread, so it
 * keeps going while the thread that consumes the frames is held by an inference run. It runs ahead by at most the
 * credits the consumer has granted (one per frame taken), so memory stays bounded however slow the consumer is.
 */
const port = parentPort;
if (!port) throw new Error('video-prep-worker must run inside a worker thread');
const init = workerData as PrepWorkerInit;
const stop = new AbortController();
let credits = init.depth;
let wake: (() => void) | undefined;

port.on('message', (m: PrepWorkerRequest) => {
  if (m.type === 'credit') credits += m.n;
  else stop.abort();
  const w = wake;
  wake = undefined;
  w?.();
});

const send = (m: PrepWorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

/** The frame's own buffer when it owns it whole (transferable), else a copy: a pipe chunk's pool must not move. */
function owned(data: Uint8Array): Uint8Array {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
}

async function main(): Promise<void> {
  const { file, read, spec, keepImage, stride } = init;
  let t = performance.now();
  for await (const f of readVideoFrames(file, { ...read, signal: stop.signal })) {
    if (f.index % stride !== 0) continue;
    let ms = performance.now() - t;
    while (credits <= 0 && !stop.signal.aborted) await new Promise<void>((r) => (wake = r));
    if (stop.signal.aborted) break;
    credits--;
    t = performance.now();
    const pre = await preprocess(f.image, spec);
    const tensor = pre.tensor;
    const transfer = [tensor.buffer as ArrayBuffer];
    let image: RgbImage | undefined;
    if (keepImage) {
      const data = owned(f.image.data);
      image = { data, width: f.image.width, height: f.image.height };
      transfer.push(data.buffer as ArrayBuffer);
    }
    ms += performance.now() - t;
    send({ type: 'frame', index: f.index, tensor, dims: pre.dims, meta: pre.meta, ...(image ? { image } : {}), ms }, transfer);
    t = performance.now();
  }
}

main().then(
  () => {
    send({ type: 'end' });
    port.close();
  },
  (e: unknown) => {
    send({ type: 'error', error: serializeError(toCvoptError(e)) });
    port.close();
  },
);
