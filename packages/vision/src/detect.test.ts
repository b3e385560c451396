import { describe, expect, it } from 'vitest';
import { CvoptError, type ModelManifest } from '@cvopt/core';
import { clipBox, decodeYolov8, decodeYolox, iou, nms, postprocessDetections, xywh2xyxy, type Candidate } from './index.js';

/** Builds a YOLOv8 [B, 4+nc, N] tensor from per-anchor rows [cx, cy, w, h, ...scores]. */
function yolov8Tensor(batches: number[][][]): { data: Float32Array; dims: number[] } {
  const B = batches.length;
  const N = batches[0]!.length;
  const C = batches[0]![0]!.length;
  const data = new Float32Array(B * C * N);
  batches.forEach((anchors, b) => anchors.forEach((row, n) => row.forEach((v, c) => (data[b * C * N + c * N + n] = v))));
  return { data, dims: [B, C, N] };
}

const cand = (box: [number, number, number, number], score: number, classId = 0): Candidate => ({ box, score, classId });

describe('box utils', () => {
  it('iou, xywh2xyxy and clipBox', () => {
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(50 / 150, 12);
    expect(iou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
    expect(iou([0, 0, 0, 0], [0, 0, 0, 0])).toBe(0);
    expect(xywh2xyxy([10, 20, 4, 6])).toEqual([8, 17, 12, 23]);
    expect(clipBox([-5, 3, 120, 90], 100, 80)).toEqual([0, 3, 100, 80]);
  });
});

describe('decodeYolov8', () => {
  const anchors = [
    [50, 50, 20, 10, 0.05, 0.9, 0.1],
    [52, 50, 20, 10, 0.05, 0.8, 0.1],
    [52, 50, 20, 10, 0.05, 0.1, 0.7],
    [10, 10, 4, 4, 0.1, 0.1, 0.1],
    [100, 80, 10, 40, 0.3, 0.2, 0.0],
  ];

  it('keeps anchors whose best class beats the threshold, boxes as corners', () => {
    const { data, dims } = yolov8Tensor([anchors]);
    const c = decodeYolov8(data, dims, { confThreshold: 0.25 });
    expect(c.map((x) => x.classId)).toEqual([1, 1, 2, 0]);
    expect(c[0]!.box).toEqual([40, 45, 60, 55]);
    expect(c[0]!.score).toBeCloseTo(0.9, 6);
    expect(c[3]!.box).toEqual([95, 60, 105, 100]);
  });

  it('applies a sigmoid when scores are logits, thresholding in logit space', () => {
    const logit = (p: number) => Math.log(p / (1 - p));
    const { data, dims } = yolov8Tensor([anchors.map((r) => [...r.slice(0, 4), ...r.slice(4).map(logit)])]);
    const c = decodeYolov8(data, dims, { confThreshold: 0.25, scoresActivated: false });
    expect(c.map((x) => x.classId)).toEqual([1, 1, 2, 0]);
    expect(c[1]!.score).toBeCloseTo(0.8, 5);
  });

  it('multi-label emits each class above the threshold', () => {
    const { data, dims } = yolov8Tensor([[[50, 50, 20, 10, 0.6, 0.5, 0.1]]]);
    expect(decodeYolov8(data, dims, { confThreshold: 0.25, multiLabel: true }).map((x) => x.classId)).toEqual([0, 1]);
  });

  it('decodes the transposed [B, N, 4+nc] layout to the same candidates', () => {
    const { data, dims } = yolov8Tensor([anchors.map((r) => r.map(() => 0)), anchors]);
    const t = new Float32Array(data.length);
    const [B, C, N] = dims as [number, number, number];
    for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) for (let n = 0; n < N; n++) t[(b * N + n) * C + c] = data[(b * C + c) * N + n]!;
    for (const multiLabel of [false, true]) {
      const a = decodeYolov8(data, dims, { confThreshold: 0.25, multiLabel }, 1);
      const b = decodeYolov8(t, [B, N, C], { confThreshold: 0.25, multiLabel, layout: 'anchors-first' }, 1);
      const key = (x: Candidate) => `${x.box.join(',')}|${x.classId}|${x.score.toFixed(6)}`;
      expect(b.map(key).sort()).toEqual(a.map(key).sort());
      expect(b.length).toBeGreaterThan(0);
    }
  });

  it('reads the requested batch item and rejects bad shapes', () => {
    const other = anchors.map((r) => [...r.slice(0, 4), 0, 0, 0]);
    const { data, dims } = yolov8Tensor([other, anchors]);
    expect(decodeYolov8(data, dims, { confThreshold: 0.25 }, 0)).toEqual([]);
    expect(decodeYolov8(data, dims, { confThreshold: 0.25 }, 1)).toHaveLength(4);
    expect(() => decodeYolov8(data, [2, 7], { confThreshold: 0.25 })).toThrow(CvoptError);
    expect(() => decodeYolov8(data, [2, 7, 6], { confThreshold: 0.25 })).toThrow(/do not match/);
    expect(() => decodeYolov8(data, dims, { confThreshold: 0.25 }, 2)).toThrow(/batch index/);
  });
});

describe('decodeYolox', () => {
  it('decodes grid offsets per stride with score = objectness × class', () => {
    // 64×64 input, strides 8/16/32: 64 + 16 + 4 anchors, 2 classes.
    const N = 84;
    const C = 7;
    const data = new Float32Array(N * C);
    const set = (a: number, row: number[]) => data.set(row, a * C);
    set(64 + 1 * 4 + 2, [0.5, 0.25, Math.log(2), 0, 0.9, 0.1, 0.8]); // stride 16, gx 2, gy 1
    set(3, [0, 0, 0, 0, 0.2, 0.9, 0]); // 0.18: below threshold
    set(80 + 3, [0, 0, 0, 0, 0.6, 0.5, 0.2]); // stride 32, gx 1, gy 1 → centre (32, 32), size 32
    const c = decodeYolox(data, [1, N, C], { inputSize: [64, 64], strides: [8, 16, 32], confThreshold: 0.25 });
    expect(c).toHaveLength(2);
    expect(c[0]!.classId).toBe(1);
    expect(c[0]!.score).toBeCloseTo(0.72, 6);
    c[0]!.box.forEach((v, i) => expect(v).toBeCloseTo([24, 12, 56, 28][i]!, 5));
    expect(c[1]!.box).toEqual([16, 16, 48, 48]);
    expect(c[1]!.score).toBeCloseTo(0.3, 6);
    expect(() => decodeYolox(data, [1, 80, C], { inputSize: [64, 64], confThreshold: 0.25 })).toThrow(/84 anchors/);
    // Multi-label (the evaluation protocol): every class whose obj × cls passes, at the same box.
    const m = decodeYolox(data, [1, N, C], { inputSize: [64, 64], strides: [8, 16, 32], confThreshold: 0.05, multiLabel: true });
    expect(m.map((x) => [x.classId, Number(x.score.toFixed(4))])).toEqual([
      [0, 0.18],
      [0, 0.09],
      [1, 0.72],
      [0, 0.3],
      [1, 0.12],
    ]);
  });
});

describe('nms', () => {
  const a = cand([0, 0, 10, 10], 0.9, 0);
  const b = cand([1, 0, 11, 10], 0.8, 0); // IoU with a = 90/110 ≈ 0.82
  const c = cand([1, 0, 11, 10], 0.7, 1); // same place, other class
  const d = cand([50, 50, 60, 60], 0.6, 0);

  it('suppresses overlaps within a class, keeps other classes, returns by score', () => {
    expect(nms([d, b, c, a], { iouThreshold: 0.5, maxDetections: 10 })).toEqual([a, c, d]);
    expect(nms([d, b, c, a], { iouThreshold: 0.5, maxDetections: 10, classAware: false })).toEqual([a, d]);
  });

  it('keeps a box whose IoU equals the threshold, suppresses above it', () => {
    const iouAB = iou(a.box, b.box);
    expect(nms([a, b], { iouThreshold: iouAB, maxDetections: 10 })).toHaveLength(2);
    expect(nms([a, b], { iouThreshold: iouAB - 1e-9, maxDetections: 10 })).toHaveLength(1);
  });

  it('caps the number of detections', () => {
    const many = Array.from({ length: 50 }, (_, i) => cand([i * 20, 0, i * 20 + 10, 10], i / 100, 0));
    const kept = nms(many, { iouThreshold: 0.5, maxDetections: 7 });
    expect(kept).toHaveLength(7);
    expect(kept[0]!.score).toBeCloseTo(0.49, 12);
    expect(kept[6]!.score).toBeCloseTo(0.43, 12);
  });
});

describe('postprocessDetections', () => {
  const manifest = {
    classNames: ['a', 'b', 'c'],
    preprocess: { resize: 'letterbox', size: [64, 64], padValue: 114, scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'RGB', padPosition: 'center', stride: 32 },
    output: { name: 'output0', format: 'yolov8', shape: [1, 7, 3], scoresActivated: true },
  } satisfies Pick<ModelManifest, 'classNames' | 'preprocess' | 'output'>;

  it('maps boxes back to original pixels, clipped, after NMS', () => {
    // Original 200×100 letterboxed to 64×64: scale 0.32, padY 16.
    const meta = { scale: 0.32, padX: 0, padY: 16, origWidth: 200, origHeight: 100 };
    const { data, dims } = yolov8Tensor([
      [
        [32, 32, 16, 8, 0.1, 0.9, 0],
        [32, 32, 16, 8, 0.1, 0.85, 0], // duplicate
        [60, 30, 16, 8, 0.5, 0, 0], // runs off the right edge
      ],
    ]);
    const dets = postprocessDetections(data, dims, manifest, meta);
    expect(dets).toHaveLength(2);
    expect(dets[0]!.classId).toBe(1);
    dets[0]!.box.forEach((v, i) => expect(v).toBeCloseTo([75, 37.5, 125, 62.5][i]!, 4));
    expect(dets[1]!.box[2]).toBe(200);
    expect(() => postprocessDetections(data, [1, 6, 3], manifest, meta)).toThrow(/for 3 classes/);
    // The same output transposed to [1, N, 4+nc] is recognised from its shape.
    const t = new Float32Array(data.length);
    for (let c = 0; c < 7; c++) for (let n = 0; n < 3; n++) t[n * 7 + c] = data[c * 3 + n]!;
    expect(postprocessDetections(t, [1, 3, 7], manifest, meta)).toEqual(dets);
    expect(() => postprocessDetections(data, dims, { ...manifest, output: { ...manifest.output, format: 'logits' } }, meta)).toThrow(CvoptError);
  });
});
