import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { currentThreadId, serializeError, toCvoptError } from '@cvopt/core';
import type { RgbImage } from './image.js';
import { preprocess } from './preprocess.js';
import { readVideoFramesBlocking } from './video.js';
import type { PrepWorkerInit, PrepWorkerReply, PrepWorkerRequest } from './video-prep.js';

/**
 * The decode side of readPreparedFrames: reads ffmpeg's output and letterboxes each kept frame on this thread, so it
 * keeps going while the thread that consumes the frames is held by an inference run. It runs ahead by at most the
 * credits the consumer has granted (one per frame taken), so memory stays bounded however slow the consumer is.
 * Frames come from ffmpeg already at the model's size (forModel), the full frame stacked above when kept, and are
 * read with blocking reads (readVideoFramesBlocking), into one reused buffer unless the full frame
 * crosses back; ffmpeg's pid is published in `init.ffmpegPid` while it runs, for the consumer to kill should this
 * thread sit in a read of a stalled stream when told to stop.
 */
const port = parentPort;
if (!port) throw new Error('video-prep-worker must run inside a worker thread');
const init = workerData as PrepWorkerInit;
const ffmpegPid = new Int32Array(init.ffmpegPid);
const stop = new AbortController();
let credits = init.depth;
let wake: (() => void) | undefined;
/** Tensor buffers the consumer gave back (PreparedFrame.release), to pack later frames into. */
const spare: ArrayBuffer[] = [];
const tensorBytes = 3 * init.spec.size[0] * init.spec.size[1] * Float32Array.BYTES_PER_ELEMENT;

port.on('message', (m: PrepWorkerRequest) => {
  if (m.type === 'credit') {
    credits += m.n;
    // No more than could be in flight at once: a consumer that releases more has nothing to gain from a bigger pool.
    for (const b of m.spare) if (b.byteLength === tensorBytes && spare.length < 2 * init.depth + 2) spare.push(b);
  } else stop.abort();
  const w = wake;
  wake = undefined;
  w?.();
});

const send = (m: PrepWorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

/**
 * The nice value asked of ffmpeg (read.nice) applied to this thread as well (Linux: per thread), for the same
 * reason: the consumer's inference is the bottleneck. Elsewhere, or if it fails, the thread keeps its priority.
 */
function niceThisThread(nice: number | undefined): void {
  const tid = currentThreadId();
  if (!nice || tid === undefined) return;
  try {
    setPriority(tid, Math.min(19, getPriority(tid) + nice));
  } catch {
    // not allowed: the thread keeps its priority
  }
}

async function main(): Promise<void> {
  const { file, read, spec, keepImage, stride } = init;
  niceThisThread(read.nice);
  let t = performance.now();
  // Without keepImage the frame is letterboxed before the next one is read: one buffer serves them all.
  // ffmpeg scales each frame to the model's size; with keepImage the full frame comes along from the same decode.
  const frames = readVideoFramesBlocking(file, { ...read, forModel: { spec, keepFull: keepImage }, signal: stop.signal, reuse: !keepImage, onSpawn: (pid) => Atomics.store(ffmpegPid, 0, pid) });
  for await (const f of frames) {
    if (f.index % stride !== 0) continue;
    let ms = performance.now() - t;
    while (credits <= 0 && !stop.signal.aborted) await new Promise<void>((r) => (wake = r));
    if (stop.signal.aborted) break;
    credits--;
    t = performance.now();
    // The buffer released longest ago: the likeliest to have left the consumer's core's cache, so packing it pulls
    // the fewest lines back across. It packed a frame of this video before, so its padding is in place.
    const reused = spare.shift();
    const pre = await preprocess(f.image, spec, { source: f.source, ...(reused ? { out: new Float32Array(reused), padded: true } : {}) });
    const tensor = pre.tensor;
    const transfer = [tensor.buffer as ArrayBuffer];
    let image: RgbImage | undefined;
    if (keepImage) {
      // A buffer of its own per frame (no reuse): it moves to the consumer without a copy.
      image = f.full ?? f.image;
      transfer.push(image.data.buffer as ArrayBuffer);
    }
    ms += performance.now() - t;
    send({ type: 'frame', index: f.index, tensor, dims: pre.dims, meta: pre.meta, ...(image ? { image } : {}), ms }, transfer);
    t = performance.now();
  }
}

// Cleared once the reader has ended (ffmpeg reaped, or killed and not yet reaped: either way its pid is not reused).
const done = () => Atomics.store(ffmpegPid, 0, 0);
main().then(
  () => {
    done();
    send({ type: 'end' });
    port.close();
  },
  (e: unknown) => {
    done();
    send({ type: 'error', error: serializeError(toCvoptError(e)) });
    port.close();
  },
);
