import { CvoptError, type Detection, type ModelManifest } from '@cvopt/core';
import type { Box } from './boxes.js';
import { unletterboxBox, type LetterboxMeta } from './resize.js';

/** A detection before NMS, box in network-input pixels, corner form. */
export interface Candidate {
  box: Box;
  score: number;
  classId: number;
}

function shapeError(what: string, dims: readonly number[], expected: string): CvoptError {
  return new CvoptError('TENSOR_SHAPE', `${what}: output dims [${dims.join(', ')}] do not match ${expected}`, {
    hint: 'check that model.json output.format matches the model (yolov8 is [B, 4+nc, N], yolox is [B, N, 5+nc])',
    details: { dims },
  });
}

function checkBatch(what: string, output: Float32Array, dims: readonly number[], batchIndex: number): void {
  if (dims.length !== 3 || dims.some((d) => !Number.isInteger(d) || d <= 0)) throw shapeError(what, dims, 'a rank-3 shape');
  const size = dims[0]! * dims[1]! * dims[2]!;
  if (output.length < size) throw shapeError(what, dims, `a buffer of ${output.length} values`);
  if (!Number.isInteger(batchIndex) || batchIndex < 0 || batchIndex >= dims[0]!) {
    throw new CvoptError('INVALID_ARGUMENT', `${what}: batch index ${batchIndex} is outside batch of ${dims[0]}`);
  }
}

const logit = (p: number): number => (p <= 0 ? -Infinity : p >= 1 ? Infinity : Math.log(p / (1 - p)));
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

export interface Yolov8DecodeOptions {
  confThreshold: number;
  /** Class scores already passed through a sigmoid in the graph (true for Ultralytics exports). Default true. */
  scoresActivated?: boolean;
  /** Emit one candidate per class above the threshold instead of only the best class (evaluation mode). */
  multiLabel?: boolean;
  /** 'anchors-last' is the Ultralytics [B, 4+nc, N]; 'anchors-first' the transposed [B, N, 4+nc] some exporters write. */
  layout?: 'anchors-last' | 'anchors-first';
}

/**
 * YOLOv8 head output [B, 4+nc, N]: rows cx, cy, w, h (input pixels), then one row of class scores per class.
 * Reads class rows in memory order, keeping a running best per anchor, which is far faster than striding
 * across rows per anchor.
 */
export function decodeYolov8(output: Float32Array, dims: readonly number[], opts: Yolov8DecodeOptions, batchIndex = 0): Candidate[] {
  checkBatch('decodeYolov8', output, dims, batchIndex);
  if (opts.layout === 'anchors-first') return decodeYolov8AnchorsFirst(output, dims, opts, batchIndex);
  const C = dims[1]!;
  const N = dims[2]!;
  const nc = C - 4;
  if (nc < 1) throw shapeError('decodeYolov8', dims, '[B, 4+nc, N] with at least one class');
  const base = batchIndex * C * N;
  const activated = opts.scoresActivated ?? true;
  const thr = activated ? opts.confThreshold : logit(opts.confThreshold);
  const score = activated ? (v: number) => v : sigmoid;
  const out: Candidate[] = [];
  const push = (n: number, cls: number, v: number) => {
    const cx = output[base + n]!;
    const cy = output[base + N + n]!;
    const hw = output[base + 2 * N + n]! / 2;
    const hh = output[base + 3 * N + n]! / 2;
    out.push({ box: [cx - hw, cy - hh, cx + hw, cy + hh], score: score(v), classId: cls });
  };
  if (opts.multiLabel) {
    for (let c = 0; c < nc; c++) {
      const row = base + (4 + c) * N;
      for (let n = 0; n < N; n++) {
        const v = output[row + n]!;
        if (v > thr) push(n, c, v);
      }
    }
    return out;
  }
  // Only scores above the threshold are looked at twice: a compare-only pass over each class row, with the
  // running best kept just for anchors that have passed at least once.
  const best = new Float32Array(N);
  const bestClass = new Int32Array(N);
  const seen = new Uint8Array(N);
  const hits: number[] = [];
  for (let c = 0; c < nc; c++) {
    const row = base + (4 + c) * N;
    for (let n = 0; n < N; n++) {
      const v = output[row + n]!;
      if (v > thr) {
        if (!seen[n]) {
          seen[n] = 1;
          hits.push(n);
          best[n] = v;
          bestClass[n] = c;
        } else if (v > best[n]!) {
          best[n] = v;
          bestClass[n] = c;
        }
      }
    }
  }
  hits.sort((x, y) => x - y);
  for (const n of hits) push(n, bestClass[n]!, best[n]!);
  return out;
}

/** [B, N, 4+nc]: each anchor's values are contiguous, so one pass per anchor. */
function decodeYolov8AnchorsFirst(output: Float32Array, dims: readonly number[], opts: Yolov8DecodeOptions, batchIndex: number): Candidate[] {
  const N = dims[1]!;
  const C = dims[2]!;
  const nc = C - 4;
  if (nc < 1) throw shapeError('decodeYolov8', dims, '[B, N, 4+nc] with at least one class');
  const activated = opts.scoresActivated ?? true;
  const thr = activated ? opts.confThreshold : logit(opts.confThreshold);
  const out: Candidate[] = [];
  for (let n = 0; n < N; n++) {
    const o = (batchIndex * N + n) * C;
    const cx = output[o]!;
    const cy = output[o + 1]!;
    const hw = output[o + 2]! / 2;
    const hh = output[o + 3]! / 2;
    let bestV = -Infinity;
    let bestC = 0;
    for (let c = 0; c < nc; c++) {
      const v = output[o + 4 + c]!;
      if (opts.multiLabel && v > thr) out.push({ box: [cx - hw, cy - hh, cx + hw, cy + hh], score: activated ? v : sigmoid(v), classId: c });
      if (v > bestV) {
        bestV = v;
        bestC = c;
      }
    }
    if (!opts.multiLabel && bestV > thr) out.push({ box: [cx - hw, cy - hh, cx + hw, cy + hh], score: activated ? bestV : sigmoid(bestV), classId: bestC });
  }
  return out;
}

export interface YoloxDecodeOptions {
  /** Network input [height, width]. */
  inputSize: readonly [number, number];
  strides?: readonly number[];
  confThreshold: number;
  /** Emit one candidate per class whose obj × cls passes the threshold instead of only the best class. */
  multiLabel?: boolean;
}

/**
 * YOLOX output [B, N, 5+nc] in grid form (exported with decode_in_inference off): per anchor
 * tx, ty, tw, th, objectness, class scores (the last two already sigmoid). Anchors run stride by stride,
 * row-major over each stride's grid. Box centre (t + grid) × stride, size exp(t) × stride; score = obj × cls.
 */
export function decodeYolox(output: Float32Array, dims: readonly number[], opts: YoloxDecodeOptions, batchIndex = 0): Candidate[] {
  checkBatch('decodeYolox', output, dims, batchIndex);
  const N = dims[1]!;
  const C = dims[2]!;
  const nc = C - 5;
  if (nc < 1) throw shapeError('decodeYolox', dims, '[B, N, 5+nc] with at least one class');
  const strides = opts.strides ?? [8, 16, 32];
  const [h, w] = opts.inputSize;
  const grids = strides.map((s) => ({ s, gw: Math.floor(w / s), gh: Math.floor(h / s) }));
  const anchors = grids.reduce((acc, g) => acc + g.gw * g.gh, 0);
  if (anchors !== N) throw shapeError('decodeYolox', dims, `${anchors} anchors for input ${h}x${w} and strides ${strides.join('/')}`);
  const out: Candidate[] = [];
  let a = 0;
  const base = batchIndex * N * C;
  for (const { s, gw, gh } of grids) {
    for (let gy = 0; gy < gh; gy++) {
      for (let gx = 0; gx < gw; gx++, a++) {
        const o = base + a * C;
        const obj = output[o + 4]!;
        if (obj <= opts.confThreshold) continue; // cls ≤ 1, so obj × cls cannot pass either
        if (opts.multiLabel) {
          const cx = (output[o]! + gx) * s;
          const cy = (output[o + 1]! + gy) * s;
          const bw = Math.exp(output[o + 2]!) * s;
          const bh = Math.exp(output[o + 3]!) * s;
          for (let c = 0; c < nc; c++) {
            const sc = obj * output[o + 5 + c]!;
            if (sc > opts.confThreshold) out.push({ box: [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], score: sc, classId: c });
          }
          continue;
        }
        let bestC = 0;
        let bestV = -Infinity;
        for (let c = 0; c < nc; c++) {
          const v = output[o + 5 + c]!;
          if (v > bestV) {
            bestV = v;
            bestC = c;
          }
        }
        const sc = obj * bestV;
        if (!(sc > opts.confThreshold)) continue;
        const cx = (output[o]! + gx) * s;
        const cy = (output[o + 1]! + gy) * s;
        const bw = Math.exp(output[o + 2]!) * s;
        const bh = Math.exp(output[o + 3]!) * s;
        out.push({ box: [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], score: sc, classId: bestC });
      }
    }
  }
  return out;
}

export interface NmsOptions {
  /** Suppress a box whose IoU with a kept, higher-scoring box exceeds this. */
  iouThreshold: number;
  maxDetections: number;
  /** Boxes of different classes never suppress each other. Default true. */
  classAware?: boolean;
  /** Only the highest-scoring this many candidates enter NMS. Default 30000. */
  maxCandidates?: number;
}

/** Greedy non-maximum suppression, highest score first; returns at most maxDetections, by descending score. */
export function nms<T extends Candidate>(cands: readonly T[], opts: NmsOptions): T[] {
  const classAware = opts.classAware ?? true;
  const scores = new Float64Array(cands.length);
  for (let i = 0; i < cands.length; i++) scores[i] = cands[i]!.score;
  // Ties keep input order, so the result never depends on the sort implementation.
  const order = Array.from({ length: cands.length }, (_, i) => i).sort((i, j) => scores[j]! - scores[i]! || i - j);
  const n = Math.min(order.length, opts.maxCandidates ?? 30000);
  const boxes = new Float64Array(n * 5);
  for (let k = 0; k < n; k++) {
    const b = cands[order[k]!]!.box;
    boxes[k * 5] = b[0];
    boxes[k * 5 + 1] = b[1];
    boxes[k * 5 + 2] = b[2];
    boxes[k * 5 + 3] = b[3];
    boxes[k * 5 + 4] = Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
  }
  // Kept indices per class (one shared list when class-agnostic): a box only meets its own class.
  const keptBy = new Map<number, number[]>();
  const kept: T[] = [];
  const thr = opts.iouThreshold;
  for (let k = 0; k < n && kept.length < opts.maxDetections; k++) {
    const cand = cands[order[k]!]!;
    const key = classAware ? cand.classId : 0;
    let list = keptBy.get(key);
    if (!list) {
      list = [];
      keptBy.set(key, list);
    }
    const x1 = boxes[k * 5]!;
    const y1 = boxes[k * 5 + 1]!;
    const x2 = boxes[k * 5 + 2]!;
    const y2 = boxes[k * 5 + 3]!;
    const area = boxes[k * 5 + 4]!;
    let suppressed = false;
    for (const j of list) {
      const w = Math.min(x2, boxes[j * 5 + 2]!) - Math.max(x1, boxes[j * 5]!);
      if (w <= 0) continue;
      const h = Math.min(y2, boxes[j * 5 + 3]!) - Math.max(y1, boxes[j * 5 + 1]!);
      if (h <= 0) continue;
      const inter = w * h;
      if (inter / (area + boxes[j * 5 + 4]! - inter) > thr) {
        suppressed = true;
        break;
      }
    }
    if (suppressed) continue;
    list.push(k);
    kept.push(cand);
  }
  return kept;
}

export interface PostprocessOptions {
  confThreshold?: number;
  iouThreshold?: number;
  maxDetections?: number;
  classAware?: boolean;
  multiLabel?: boolean;
}

export type DetectionManifest = Pick<ModelManifest, 'output' | 'preprocess' | 'classNames'>;

/**
 * Raw detector output to detections in ORIGINAL image pixels: decode by manifest.output.format, NMS,
 * undo the letterbox, clip to the image, drop boxes left with no area.
 */
export function postprocessDetections(
  output: Float32Array,
  dims: readonly number[],
  manifest: DetectionManifest,
  meta: LetterboxMeta,
  opts: PostprocessOptions = {},
  batchIndex = 0,
): Detection[] {
  const confThreshold = opts.confThreshold ?? 0.25;
  const nc = manifest.classNames.length;
  let cands: Candidate[];
  if (manifest.output.format === 'yolov8') {
    // The transposed layout is recognised by where 4+nc sits; a square [B, 4+nc, 4+nc] reads as the usual one.
    const layout = dims[1] === 4 + nc ? 'anchors-last' : dims[2] === 4 + nc ? 'anchors-first' : undefined;
    if (!layout) throw shapeError('postprocessDetections', dims, `[B, ${4 + nc}, N] (or [B, N, ${4 + nc}]) for ${nc} classes in model.json`);
    cands = decodeYolov8(output, dims, { confThreshold, scoresActivated: manifest.output.scoresActivated ?? true, multiLabel: opts.multiLabel ?? false, layout }, batchIndex);
  } else if (manifest.output.format === 'yolox') {
    if (dims[2] !== 5 + nc) throw shapeError('postprocessDetections', dims, `[B, N, ${5 + nc}] for ${nc} classes in model.json`);
    cands = decodeYolox(output, dims, { inputSize: manifest.preprocess.size, strides: manifest.output.strides ?? [8, 16, 32], confThreshold, multiLabel: opts.multiLabel ?? false }, batchIndex);
  } else {
    throw new CvoptError('MANIFEST_INVALID', `postprocessDetections: output format ${manifest.output.format} is not a detector format`, {
      where: { field: 'output.format' },
      hint: 'use postprocessClassification for logits/probabilities outputs',
    });
  }
  const kept = nms(cands, { iouThreshold: opts.iouThreshold ?? 0.7, maxDetections: opts.maxDetections ?? 300, classAware: opts.classAware ?? true });
  const W = meta.origWidth;
  const H = meta.origHeight;
  const dets: Detection[] = [];
  for (const c of kept) {
    const b = unletterboxBox(c.box, meta);
    const x1 = Math.min(Math.max(b[0], 0), W);
    const y1 = Math.min(Math.max(b[1], 0), H);
    const x2 = Math.min(Math.max(b[2], 0), W);
    const y2 = Math.min(Math.max(b[3], 0), H);
    if (x2 > x1 && y2 > y1) dets.push({ box: [x1, y1, x2, y2], score: c.score, classId: c.classId });
  }
  return dets;
}
