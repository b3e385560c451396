import { CvoptError, type ModelManifest } from '@cvopt/core';
import { postprocessClassification, postprocessDetections, preprocess, type LetterboxMeta, type RgbImage } from '@cvopt/vision';
import type { RuntimeConfig } from './config.js';
import type { ItemOutput, LoadedModel, ModelHost } from './model.js';
import type { Ticket } from './scheduler.js';

/** The request side of a prediction: image bytes to tensor before the queue, tensor output to answer after. */

export interface PreparedImage {
  tensor: Float32Array;
  meta: LetterboxMeta;
}

export async function prepareImage(input: Buffer | RgbImage, manifest: ModelManifest, maxPixels: number): Promise<PreparedImage> {
  if (Buffer.isBuffer(input) && input.length === 0) {
    throw new CvoptError('IMAGE_INVALID', 'the request carries no image bytes', { where: { field: 'body' }, hint: 'send the image file as the body' });
  }
  const r = await preprocess(input, manifest.preprocess, { maxPixels });
  return { tensor: r.tensor, meta: r.meta };
}

export interface Prediction {
  model: string;
  task: 'detect' | 'classify';
  image: { width: number; height: number };
  detections?: { box: number[]; score: number; classId: number; className: string }[];
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

export interface VideoRunOptions {
  signal: AbortSignal;
  ticket: Ticket;
  deadlineMs: number;
}

/** Placeholder until @cvopt/vision's video reader lands. */
export async function* runVideo(_file: string, _model: LoadedModel, _host: ModelHost, _config: RuntimeConfig, _o: VideoRunOptions): AsyncGenerator<Record<string, unknown>> {
  throw new CvoptError('DEPENDENCY_MISSING', 'video support is not built yet');
}
