import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { testDataDir, type Preprocess } from '@cvopt/core';
import { classificationMetrics, evaluateDetections, postprocessClassification, postprocessDetections, preprocess, type DetectionManifest, type EvalImage } from '../src/index.js';

// End to end through real pretrained models in ONNX Runtime: if letterbox geometry, channel order, grid
// decode, NMS or the box mapping were wrong, mAP on real COCO images would collapse.
const dataDir = testDataDir();
if (!dataDir) console.warn('skipping real-model vision tests: shared test data not found (set CVOPT_TEST_DATA)');
const D = dataDir ?? '';
const N_IMAGES = 6;

function yoloLabels(file: string, W: number, H: number): EvalImage['gts'] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [c, cx, cy, w, h] = l.trim().split(/\s+/).map(Number) as [number, number, number, number, number];
      return { classId: c, box: [(cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H] as [number, number, number, number] };
    });
}

async function detectorMap(model: string, manifest: DetectionManifest) {
  const session = await ort.InferenceSession.create(join(D, 'models', model));
  const imageDir = join(D, 'coco128-val/images/val2017');
  const images: EvalImage[] = [];
  for (const f of readdirSync(imageDir).sort().slice(0, N_IMAGES)) {
    const { tensor, dims, meta } = await preprocess(join(imageDir, f), manifest.preprocess);
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', tensor, dims) });
    const o = out[session.outputNames[0]!]!;
    const dets = postprocessDetections(o.data as Float32Array, o.dims, manifest, meta, { confThreshold: 0.001, iouThreshold: 0.65 });
    for (const d of dets) {
      expect(d.box[0]).toBeGreaterThanOrEqual(0);
      expect(d.box[2]).toBeLessThanOrEqual(meta.origWidth);
    }
    images.push({ imageId: f, gts: yoloLabels(join(D, 'coco128-val/labels/val2017', f.replace(/\.jpg$/, '.txt')), meta.origWidth, meta.origHeight), dets });
  }
  await session.release();
  return evaluateDetections(images, { numClasses: 80 });
}

const classNames = Array.from({ length: 80 }, (_, i) => `c${i}`);
const base = { padValue: 114, mean: [0, 0, 0], std: [1, 1, 1], stride: 32 } as const;

describe.skipIf(!dataDir)('real models through ONNX Runtime', () => {
  it('YOLOv8n (letterbox centre, RGB 0..1, [1,84,8400]) finds the COCO objects', async () => {
    const m = await detectorMap('yolov8n_int8.onnx', {
      classNames,
      preprocess: { ...base, resize: 'letterbox', size: [640, 640], scale: 1 / 255, channelOrder: 'RGB', padPosition: 'center' } as Preprocess,
      output: { name: 'output0', format: 'yolov8', shape: [1, 84, 8400], scoresActivated: true },
    });
    // Measured 0.633 / 0.448 on these six images.
    expect(m.map50).toBeGreaterThan(0.5);
    expect(m.map5095).toBeGreaterThan(0.33);
  });

  it('YOLOX-nano (letterbox top-left, BGR 0..255, grid output) finds the COCO objects', async () => {
    const m = await detectorMap('yolox_nano.onnx', {
      classNames,
      preprocess: { ...base, resize: 'letterbox', size: [416, 416], scale: 1, channelOrder: 'BGR', padPosition: 'top-left' } as Preprocess,
      output: { name: 'output', format: 'yolox', shape: [1, 3549, 85], scoresActivated: true, strides: [8, 16, 32] },
    });
    // Measured 0.566 / 0.382.
    expect(m.map50).toBeGreaterThan(0.45);
    expect(m.map5095).toBeGreaterThan(0.28);
  });

  it('MobileNetV2 (center-crop, ImageNet mean/std, logits) names ants and bees', async () => {
    const session = await ort.InferenceSession.create(join(D, 'models/mobilenetv2-12-int8.onnx'));
    const p: Preprocess = { ...base, resize: 'center-crop', size: [224, 224], scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channelOrder: 'RGB', padPosition: 'center' };
    const manifest = { classNames: Array.from({ length: 1000 }, String), output: { name: 'output', format: 'logits' as const, shape: [1, 1000], scoresActivated: true } };
    const preds = [];
    const labels = [];
    // ImageNet class 310 is "ant", 309 "bee".
    for (const [dir, label] of [['ants', 310], ['bees', 309]] as const) {
      for (const f of readdirSync(join(D, 'hymenoptera/val', dir)).sort().slice(0, 10)) {
        const { tensor, dims } = await preprocess(join(D, 'hymenoptera/val', dir, f), p);
        const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', tensor, dims) });
        const o = out[session.outputNames[0]!]!;
        preds.push(postprocessClassification(o.data as Float32Array, o.dims, manifest, 5));
        labels.push(label);
      }
    }
    await session.release();
    const m = classificationMetrics(preds, labels);
    // Measured top-1 0.60, top-5 0.95 on these twenty photos.
    expect(m.n).toBe(20);
    expect(m.top5).toBeGreaterThanOrEqual(0.85);
    expect(m.top1).toBeGreaterThanOrEqual(0.45);
  });
});
