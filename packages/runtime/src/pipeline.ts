import { CvoptError, type Detection, type Logger, type ModelManifest } from '@cvopt/core';
import { ByteTracker, postprocessClassification, postprocessDetections, preprocess, probeVideo, readVideoFrames, type LetterboxMeta, type RgbImage } from '@cvopt/vision';
import type { RuntimeConfig } from './config.js';
import type { ItemOutput, LoadedModel, ModelHost } from './model.js';
import type { Offload } from './offload.js';
import type { Ticket } from './scheduler.js';

/** The request side of a prediction: image bytes to tensor before the queue, tensor output to answer after. */

export interface PreparedImage {
  tensor: Float32Array;
  meta: LetterboxMeta;
}

/** Decode and letterbox into `out` when given (a pooled buffer of one sample's length), else a new tensor. */
export async function prepareImage(input: Buffer | RgbImage, manifest: ModelManifest, maxPixels: number, out?: Float32Array, offload?: Offload): Promise<PreparedImage> {
  if (Buffer.isBuffer(input) && input.length === 0) {
    throw new CvoptError('IMAGE_INVALID', 'the request carries no image bytes', { where: { field: 'body' }, hint: 'send the image file as the body' });
  }
  const [h, w] = manifest.preprocess.size;
  const fits = out !== undefined && out.length === 3 * h * w;
  // BMP is decoded and resampled in JS (libvips has no BMP loader): 650 ms for a 5 MB 1-bit file, so it runs in
  // the offload worker and the HTTP thread keeps answering.
  if (offload && Buffer.isBuffer(input) && input.length >= 2 && input[0] === 0x42 && input[1] === 0x4d) {
    return offload.image(input, manifest.preprocess, maxPixels, fits ? out : undefined);
  }
  const r = await preprocess(input, manifest.preprocess, { maxPixels, ...(fits ? { out } : {}) });
  return { tensor: r.tensor, meta: r.meta };
}

/** Floats in one sample's input tensor. */
export const sampleLength = (model: LoadedModel): number => model.sampleDims.reduce((a, b) => a * b, 1);

export interface Prediction {
  model: string;
  task: 'detect' | 'classify';
  image: { width: number; height: number };
  detections?: { box: number[]; score: number; classId: number; className: string; trackId?: number }[];
  top?: { classId: number; className: string; score: number }[];
  timeMs?: number;
}

const round = (v: number, d: number) => Math.round(v * d) / d;

export function renderPrediction(out: ItemOutput, model: LoadedModel, prep: PreparedImage, config: RuntimeConfig, timeMs?: number): Prediction {
  const m = model.manifest;
  const names = m.classNames;
  const base = { model: m.name, task: m.task, image: { width: prep.meta.origWidth, height: prep.meta.origHeight } };
  const extra = timeMs === undefined ? {} : { timeMs: round(timeMs, 100) };
  if (m.task === 'classify') {
    const top = postprocessClassification(out.data, out.dims, m, config.classify.topK);
    return { ...base, top: top.map((c) => ({ classId: c.classId, className: names[c.classId] ?? String(c.classId), score: round(c.score, 1e5) })), ...extra };
  }
  const dets = postprocessDetections(out.data, out.dims, m, prep.meta, {
    confThreshold: config.detect.scoreThreshold,
    iouThreshold: config.detect.iouThreshold,
    maxDetections: config.detect.maxDetections,
  });
  return {
    ...base,
    detections: dets.map((d) => ({
      box: d.box.map((v) => round(v, 100)),
      score: round(d.score, 1e5),
      classId: d.classId,
      className: names[d.classId] ?? String(d.classId),
    })),
    ...extra,
  };
}

export interface PredictImageOptions {
  signal: AbortSignal;
  ticket: Ticket;
  /** The deadline left when the request reaches the queue. */
  deadlineMs: () => number;
  /** Called once the image is decoded, with how long the request waited for its decode slot. */
  onPrepared?: (slotWaitMs: number) => void;
  /** The answer's timeMs, read when it is rendered (omitted when absent). */
  timeMs?: () => number;
  /** Where BMP images are decoded (off the HTTP thread). */
  offload?: Offload;
}

/**
 * One image through the model: a decode slot, decode + letterbox into a reused input buffer, the queue and the
 * engine, the answer; the slot and the output buffer are given back. Shared by single images and video frames.
 */
export async function predictImage(input: Buffer | RgbImage, model: LoadedModel, host: ModelHost, config: RuntimeConfig, o: PredictImageOptions): Promise<Prediction> {
  const beforeSlot = performance.now();
  await model.prep.acquire(o.signal);
  try {
    const slotWaitMs = performance.now() - beforeSlot;
    const prep = await prepareImage(input, model.manifest, config.maxImagePixels, model.engine.takeInput(sampleLength(model)), o.offload);
    o.onPrepared?.(slotWaitMs);
    const out = await host.run(prep.tensor, { deadlineMs: o.deadlineMs(), signal: o.signal, ticket: o.ticket }, model);
    const answer = renderPrediction(out, model, prep, config, o.timeMs?.());
    model.engine.recycleOutput(out.data);
    return answer;
  } finally {
    model.prep.release();
  }
}

export interface VideoRunOptions {
  signal: AbortSignal;
  ticket: Ticket;
  deadlineMs: number;
  /** Told each ffmpeg child's pid (the memory cap counts it). */
  onSpawn?: (pid: number) => void;
  /** Where ffmpeg's own words go (they hold server paths and heap addresses: never to the client). */
  log?: Logger;
  /** Give detections persistent ids across frames (ByteTrack-style tracker, default options). */
  track?: boolean;
}

/**
 * What a client may learn of a failed video: the catalogue code and a fixed sentence. ffmpeg's stderr (server
 * paths, heap addresses, library versions) goes to the log only.
 */
function forClient(e: unknown, log: Logger | undefined): unknown {
  if (!(e instanceof CvoptError) || e.code !== 'VIDEO_INVALID') return e;
  log?.info({ reason: e.message }, 'video upload refused');
  return new CvoptError('VIDEO_INVALID', 'the video is corrupt, truncated, or not in an accepted container (MP4/MOV, Matroska/WebM, AVI)', {
    where: { field: 'body' },
    hint: 'check that the file plays in a video player; re-encode it with ffmpeg -i in.mp4 -c:v libx264 out.mp4',
  });
}

/**
 * A video as a stream of answers: first a header line describing the video, then one line per frame. Length
 * limits are checked from the container before any frame is decoded; frames run one at a time through the
 * same queue as images, under the request's admission ticket, so a video never holds more than one slot.
 */
export async function* runVideo(file: string, model: LoadedModel, host: ModelHost, config: RuntimeConfig, o: VideoRunOptions): AsyncGenerator<Record<string, unknown>> {
  const limits = config.video;
  let info: Awaited<ReturnType<typeof probeVideo>>;
  try {
    info = await probeVideo(file);
  } catch (e) {
    throw forClient(e, o.log);
  }
  if (info.durationS > limits.maxSeconds || info.frames > limits.maxFrames) {
    throw new CvoptError('VIDEO_TOO_LONG', `the video lasts ${info.durationS.toFixed(1)} s (${info.frames} frames); the limit is ${limits.maxSeconds} s and ${limits.maxFrames} frames`, {
      where: { field: 'body' },
      hint: 'cut the clip (ffmpeg -t SECONDS) or raise video.maxSeconds / video.maxFrames in the runtime config',
    });
  }
  if (info.width * info.height > config.maxImagePixels) {
    throw new CvoptError('IMAGE_TOO_LARGE', `video frames are ${info.width}×${info.height}, above the limit of ${config.maxImagePixels} pixels`, { where: { field: 'body' } });
  }
  yield { model: model.manifest.name, task: model.manifest.task, video: { width: info.width, height: info.height, fps: info.fps, frames: info.frames, durationS: info.durationS } };
  // Frames are scaled in ffmpeg to the size the model's resize step gives them (as `cvopt predict` decodes them, so
  // both see the same pixels): a 4K frame would cost 25 MB in the pipe and in node only to be letterboxed down
  // again. Boxes are mapped back to the video's own pixels (each frame says its source size).
  const forModel = { spec: model.manifest.preprocess };
  const tracker = o.track && model.manifest.task === 'detect' ? new ByteTracker() : undefined;
  try {
    for await (const f of readVideoFrames(file, { info, maxFrames: limits.maxFrames, signal: o.signal, forModel, ...(o.onSpawn ? { onSpawn: o.onSpawn } : {}) })) {
      const { model: _m, task: _t, image: _i, ...answer } = await predictImage(f.image, model, host, config, { signal: o.signal, ticket: o.ticket, deadlineMs: () => o.deadlineMs });
      const sx = (f.source?.width ?? f.image.width) / f.image.width;
      const sy = (f.source?.height ?? f.image.height) / f.image.height;
      if (answer.detections && (sx !== 1 || sy !== 1)) {
        for (const d of answer.detections) d.box = [d.box[0]! * sx, d.box[1]! * sy, d.box[2]! * sx, d.box[3]! * sy].map((v) => Math.round(v * 100) / 100);
      }
      // Tracking runs in the video's own pixels, after the boxes are mapped back.
      if (tracker && answer.detections) answer.detections = tracker.update(answer.detections.map((d) => ({ ...d, box: d.box as Detection['box'] })));
      yield { frame: f.index, timeS: info.fps > 0 ? Math.round((f.index / info.fps) * 1000) / 1000 : null, ...answer };
    }
  } catch (e) {
    throw forClient(e, o.log);
  }
}
