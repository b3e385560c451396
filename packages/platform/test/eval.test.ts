import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CvoptError, testDataDir } from '@cvopt/core';
import { inferManifest } from '@cvopt/onnx';
import { cocoEvaluateFiles } from '@cvopt/vision';
import { COCO80_TO_91, evaluateModel, readNamesFile } from '../src/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-eval-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function failure(p: Promise<unknown>): Promise<CvoptError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(CvoptError);
  return e as CvoptError;
}

describe('COCO 80 → 91 ids', () => {
  it('is increasing, skips the 11 unused ids and ends at toothbrush = 90', () => {
    expect(COCO80_TO_91).toHaveLength(80);
    for (let i = 1; i < 80; i++) expect(COCO80_TO_91[i]!).toBeGreaterThan(COCO80_TO_91[i - 1]!);
    expect(COCO80_TO_91[0]).toBe(1);
    expect(COCO80_TO_91[62]).toBe(72); // tv
    expect(COCO80_TO_91[79]).toBe(90);
    for (const unused of [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]) expect(COCO80_TO_91).not.toContain(unused);
  });
});

describe('readNamesFile', () => {
  it('reads one name per line, a YAML list and a YAML index map', () => {
    writeFileSync(join(tmp, 'n.txt'), 'cat\n\ndog\r\n');
    writeFileSync(join(tmp, 'l.yaml'), 'names: [cat, dog]\n');
    writeFileSync(join(tmp, 'm.yaml'), 'names:\n  1: dog\n  0: cat\n');
    for (const f of ['n.txt', 'l.yaml', 'm.yaml']) expect(readNamesFile(join(tmp, f))).toEqual(['cat', 'dog']);
  });
  it('says what is wrong with an empty or missing file', () => {
    writeFileSync(join(tmp, 'e.txt'), '\n');
    expect(() => readNamesFile(join(tmp, 'e.txt'))).toThrow(/lists no class names/);
    expect(() => readNamesFile(join(tmp, 'none.txt'))).toThrow(/does not exist/);
  });
});

const dataDir = testDataDir();
describe.skipIf(!dataDir)('evaluateModel on the real models (needs the shared test data)', () => {
  const D = dataDir ?? '';
  const coco = join(D, 'coco128-val');

  it('YOLOv8n on coco128-val under the default protocol: the independent pycocotools figures, and the saved COCO files score the same', async () => {
    // An independent multi-label pipeline scored by pycocotools gives mAP50-95 0.4224 / mAP50 0.5823 on these 128 images.
    const saveJson = join(tmp, 'v8.json');
    const saveGt = join(tmp, 'v8-gt.json');
    const r = await evaluateModel({ model: join(D, 'models/yolov8n_int8.onnx'), data: coco, saveJson, saveGt });
    expect(r).toMatchObject({ task: 'detect', images: 128, split: 'val', protocol: { conf: 0.001, iou: 0.7, maxDetections: 300, multiLabel: true } });
    expect(r.manifestSource).toBe('inferred from the ONNX file');
    const d = r.detect!;
    expect(Math.abs(d.map5095 - 0.4224)).toBeLessThan(0.003);
    expect(Math.abs(d.map50 - 0.5823)).toBeLessThan(0.003);
    expect(r.savedJson).toMatchObject({ path: saveJson, categoryIds: 'coco91' });
    expect(r.savedGt).toMatchObject({ path: saveGt, images: 128 });

    // The saved detections against the saved ground truth through the pycocotools port: image ids, the 91-id mapping
    // and the [x, y, w, h] pixel boxes line up, so the 12-stat evaluation gives what eval printed.
    const saved = JSON.parse(readFileSync(saveJson, 'utf8')) as { image_id: number; bbox: [number, number, number, number] }[];
    const gt = JSON.parse(readFileSync(saveGt, 'utf8')) as { images: { id: number; width: number; height: number }[] };
    for (const s of saved) {
      const img = gt.images.find((i) => i.id === s.image_id)!;
      expect(s.bbox[0]! + s.bbox[2]!).toBeLessThanOrEqual(img.width + 1e-3);
      expect(s.bbox[1]! + s.bbox[3]!).toBeLessThanOrEqual(img.height + 1e-3);
    }
    const summary = await cocoEvaluateFiles(saveGt, saveJson);
    expect(summary.stats[0]).toBeCloseTo(d.map5095, 9);
    expect(summary.stats[1]).toBeCloseTo(d.map50, 9);
  }, 300_000);

  it('the single-label protocol is still there, and recorded', async () => {
    const r = await evaluateModel({ model: join(D, 'models/yolov8n_int8.onnx'), data: coco, maxImages: 8, protocol: { multiLabel: false } });
    expect(r.protocol).toMatchObject({ multiLabel: false });
    expect(r.detect!.map50).toBeGreaterThan(0.3);
  });

  it('YOLOX-nano through its grid format (BGR, 0..255, top-left padding) on 4 images', async () => {
    const r = await evaluateModel({ model: join(D, 'models/yolox_nano.onnx'), data: coco, maxImages: 4 });
    expect(r.notes.join(' ')).toMatch(/yolox convention/);
    expect(r.detect!.map50).toBeGreaterThan(0.35);
    // Fed 0..1 instead of 0..255 the model sees near-black images: the override reaches the preprocessing.
    const dim = await evaluateModel({ model: join(D, 'models/yolox_nano.onnx'), data: coco, maxImages: 4, overrides: { scale: 1 / 255 } });
    expect(dim.detect!.map50).toBeLessThan(r.detect!.map50 / 2);
  });

  it('uses the model.json beside the model when there is one', async () => {
    const dir = join(tmp, 'with-json');
    mkdirSync(dir, { recursive: true });
    symlinkSync(join(D, 'models/yolox_nano.onnx'), join(dir, 'model.onnx'));
    const manifest = { ...inferManifest(join(D, 'models/yolox_nano.onnx')), name: 'from-model-json' };
    writeFileSync(join(dir, 'model.json'), JSON.stringify(manifest));
    const r = await evaluateModel({ model: join(dir, 'model.onnx'), data: coco, maxImages: 1 });
    expect(r.manifestSource).toBe(join(dir, 'model.json'));
    expect(r.notes).toEqual([]);
    expect(r.detect!.map50).toBeGreaterThan(0);
  });

  it('top-1/top-5 of the ImageNet MobileNetV2 on real bees and ants, mapped to its classes by folder name', async () => {
    // ImageNet-1k: 309 bee, 310 ant. The inferred manifest names classes imagenet_<index>.
    const ds = join(tmp, 'hymenoptera-imagenet');
    for (const [folder, cls] of [['bees', 309], ['ants', 310]] as const) {
      const dir = join(ds, `imagenet_${cls}`);
      mkdirSync(dir, { recursive: true });
      for (const f of readdirSync(join(D, 'hymenoptera/val', folder)).sort().slice(0, 5)) symlinkSync(join(D, 'hymenoptera/val', folder, f), join(dir, f));
    }
    const r = await evaluateModel({ model: join(D, 'models/mobilenetv2-12-int8.onnx'), data: ds });
    expect(r.task).toBe('classify');
    expect(r.classify!.n).toBe(10);
    expect(r.classify!.top5).toBeGreaterThanOrEqual(0.7);
    expect(r.classify!.top1).toBeLessThanOrEqual(r.classify!.top5);
  });

  it('refuses a classifier on folders it has no classes for, and a detector on a classification set', async () => {
    const e1 = await failure(evaluateModel({ model: join(D, 'models/mobilenetv2-12-int8.onnx'), data: join(D, 'hymenoptera/val'), maxImages: 2 }));
    expect(e1.code).toBe('DATASET_INVALID');
    expect(e1.message).toMatch(/1000 classes but the dataset has 2 class folders \(ants, bees\)/);
    const e2 = await failure(evaluateModel({ model: join(D, 'models/yolox_nano.onnx'), data: join(D, 'hymenoptera/val'), maxImages: 2 }));
    expect(e2.code).toBe('DATASET_INVALID');
    expect(e2.message).toMatch(/detector but .* is a classification dataset/);
  });
});

describe('evaluateModel argument checks', () => {
  it('names the bad field', async () => {
    const m = join(tmp, 'm.onnx');
    writeFileSync(m, 'not onnx');
    expect((await failure(evaluateModel({ model: m, data: tmp, protocol: { conf: 2 } }))).where?.field).toBe('conf');
    expect((await failure(evaluateModel({ model: m, data: tmp, engine: 'trt' as never }))).where?.field).toBe('engine');
    expect((await failure(evaluateModel({ model: join(tmp, 'none.onnx'), data: tmp }))).code).toBe('NOT_FOUND');
    expect((await failure(evaluateModel({ model: m, data: join(tmp, 'nowhere') }))).code).toBe('NOT_FOUND');
  });
});
