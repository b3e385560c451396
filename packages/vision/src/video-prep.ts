import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CvoptError, type SerializedError } from '@cvopt/core';
import type { RgbImage } from './image.js';
import type { PreprocessResult, PreprocessSpec } from './preprocess.js';
import type { LetterboxMeta } from './resize.js';
import type { ReadVideoOptions } from './video.js';

/** A decoded video frame with its network tensor. */
export interface PreparedFrame {
  index: number;
  pre: PreprocessResult;
  /** The full-size decoded frame, when asked for with keepImage (to draw on, to crop from). */
  image?: RgbImage;
  /** Time the decode thread spent on this frame: waiting for ffmpeg, then letterboxing and packing. */
  ms: number;
  /**
   * Hands `pre.tensor`'s buffer back to the decode thread, which packs a later frame into it instead of a fresh
   * one (a fresh 300 KB-plus buffer a frame costs page faults and zeroing that outweigh the packing itself), and
   * writes only its image area: the letterbox padding is already there. So call it once nothing reads the tensor any
   * more, and only for a tensor nothing wrote into: the buffer goes back with the next frame asked for, and the
   * tensor is empty (detached) from then on. Optional: a frame never released is collected as any array is. A second
   * call does nothing.
   */
  release(): void;
}

export interface PrepareVideoOptions extends Pick<ReadVideoOptions, 'ffmpegPath' | 'ffprobePath' | 'allowStreams' | 'maxFrames' | 'maxPixels' | 'nice' | 'signal' | 'info'> {
  /** The model's preprocessing, applied by preprocess() exactly as to any decoded image. */
  spec: PreprocessSpec;
  /** Also hand out each full-size frame (default false: only the tensor crosses back). */
  keepImage?: boolean;
  /** Keep frames whose index is a multiple of this (default 1: all). */
  stride?: number;
  /** Frames the decode thread may prepare ahead of the consumer (default 4). */
  depth?: number;
}

/** What the consumer sends the decode thread: more room (with the tensor buffers released since the last), or stop. */
export type PrepWorkerRequest = { type: 'credit'; n: number; spare: ArrayBuffer[] } | { type: 'stop' };
export type PrepWorkerReply =
  | { type: 'frame'; index: number; tensor: Float32Array; dims: PreprocessResult['dims']; meta: LetterboxMeta; image?: RgbImage; ms: number }
  | { type: 'end' }
  | { type: 'error'; error: SerializedError };
export interface PrepWorkerInit {
  file: string;
  read: Pick<ReadVideoOptions, 'ffmpegPath' | 'ffprobePath' | 'allowStreams' | 'maxFrames' | 'maxPixels' | 'nice' | 'info'>;
  spec: PreprocessSpec;
  keepImage: boolean;
  stride: number;
  depth: number;
  /** One Int32: the decode thread's ffmpeg pid while it runs, else 0. */
  ffmpegPid: SharedArrayBuffer;
}

/** dist/video-prep-worker.js; from source (tests run TS directly) the built copy in dist/. */
function workerFile(): URL {
  const here = new URL('./video-prep-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL('../dist/video-prep-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new CvoptError('DEPENDENCY_MISSING', 'the video decode worker script is not built', { hint: 'run `npx tsc -b packages/vision`' });
}

const fromWire = (e: SerializedError) =>
  new CvoptError(e.code, e.message, { ...(e.hint ? { hint: e.hint } : {}), ...(e.where ? { where: e.where } : {}), ...(e.details !== undefined ? { details: e.details } : {}) });

/**
 * readVideoFrames + preprocess, on a worker thread. onnxruntime-node's session.run holds its calling thread for the
 * whole inference; were ffmpeg's pipe read on that thread, ffmpeg would fill the pipe's 64 KiB (a sixteenth of a
 * 768×432 frame) and wait until the run ended, so decode and inference would take turns instead of overlapping.
 * Here the pipe is drained and frames letterboxed while the consumer's thread is busy; the tensors (and, with
 * keepImage, the frames) are transferred, not copied. Frames come in order, none dropped but by `stride`; the thread
 * runs at most `depth` frames ahead. Ending the loop early or aborting the signal stops ffmpeg and the thread.
 * The thread reads ffmpeg's output with blocking reads straight into the frame buffer (readVideoFramesBlocking).
 * ffmpeg scales each frame to the model's size (ReadVideoOptions.forModel), so only model-size frames cross the pipe
 * unless keepImage asks for the full ones too; the tensors are the ones preprocess() makes of readVideoFrames'
 * forModel frames on any thread, and the same with or without keepImage.
 */
export async function* readPreparedFrames(file: string, opts: PrepareVideoOptions): AsyncGenerator<PreparedFrame> {
  const depth = opts.depth ?? 4;
  const stride = opts.stride ?? 1;
  for (const [name, v] of [['depth', depth], ['stride', stride]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new CvoptError('INVALID_ARGUMENT', `readPreparedFrames: ${name} must be an integer ≥ 1, got ${v}`, { where: { field: name } });
  }
  const { signal } = opts;
  const cancelled = () => new CvoptError('CANCELLED', `reading ${file} was cancelled`, { where: { file } });
  if (signal?.aborted) throw cancelled();
  const read: PrepWorkerInit['read'] = {};
  for (const k of ['ffmpegPath', 'ffprobePath', 'allowStreams', 'maxFrames', 'maxPixels', 'nice', 'info'] as const) if (opts[k] !== undefined) Object.assign(read, { [k]: opts[k] });
  const ffmpegPid = new SharedArrayBuffer(4);
  const init: PrepWorkerInit = { file, read, spec: opts.spec, keepImage: opts.keepImage ?? false, stride, depth, ffmpegPid };
  const worker = new Worker(workerFile(), { workerData: init });
  const inbox: PrepWorkerReply[] = [];
  let released: ArrayBuffer[] = [];
  let exited = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  worker.on('message', (m: PrepWorkerReply) => {
    inbox.push(m);
    poke();
  });
  worker.on('error', (e) => {
    inbox.push({ type: 'error', error: { code: 'INTERNAL', message: `the video decode thread failed: ${e.message}` } });
    poke();
  });
  worker.once('exit', () => {
    exited = true;
    poke();
  });
  const stop = () => {
    if (exited) return;
    worker.postMessage({ type: 'stop' } satisfies PrepWorkerRequest);
    // The thread sees messages only between frames; killing ffmpeg ends a read it is blocked in (a stalled stream).
    const pid = Atomics.load(new Int32Array(ffmpegPid), 0);
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  signal?.addEventListener('abort', stop, { once: true });
  try {
    for (;;) {
      while (inbox.length === 0) {
        if (signal?.aborted) throw cancelled();
        if (exited) throw new CvoptError('INTERNAL', `the video decode thread for ${file} ended without a result`);
        await new Promise<void>((r) => (wake = r));
      }
      if (signal?.aborted) throw cancelled();
      const m = inbox.shift()!;
      if (m.type === 'end') return;
      if (m.type === 'error') throw fromWire(m.error);
      // One message a frame: the credit carries back the buffers released since the last one.
      if (!exited) worker.postMessage({ type: 'credit', n: 1, spare: released } satisfies PrepWorkerRequest, released);
      released = [];
      const { tensor } = m;
      const release = () => {
        const buffer = tensor.buffer as ArrayBuffer;
        if (buffer.byteLength > 0 && !released.includes(buffer)) released.push(buffer);
      };
      yield { index: m.index, pre: { tensor, dims: m.dims, meta: m.meta }, ...(m.image ? { image: m.image } : {}), ms: m.ms, release };
    }
  } finally {
    signal?.removeEventListener('abort', stop);
    if (!exited) {
      stop();
      // The thread stops ffmpeg and exits at once; a thread stuck in a read is ended anyway.
      const gone = new Promise<void>((r) => worker.once('exit', () => r()));
      const timer = setTimeout(() => void worker.terminate(), 2000);
      await gone;
      clearTimeout(timer);
    }
  }
}
