import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CvoptError, Rng, type Detection } from '@cvopt/core';
import { cocoEvaluate, evaluateDetections, type CocoGroundTruthJson, type CocoResultJson, type EvalImage } from './index.js';

type Box = [number, number, number, number];
const gt = (box: Box, classId = 0) => ({ box, classId });
const det = (box: Box, score: number, classId = 0): Detection => ({ box, score, classId });

describe('evaluateDetections, hand-checked', () => {
  it('scores a perfect prediction 1.0', () => {
    const images: EvalImage[] = [
      { imageId: 1, gts: [gt([0, 0, 10, 10]), gt([20, 20, 60, 50], 1)], dets: [det([0, 0, 10, 10], 0.9), det([20, 20, 60, 50], 0.8, 1)] },
      { imageId: 2, gts: [gt([5, 5, 30, 30])], dets: [det([5, 5, 30, 30], 0.7)] },
    ];
    const m = evaluateDetections(images, { numClasses: 3 });
    expect(m.map50).toBeCloseTo(1, 12);
    expect(m.map5095).toBeCloseTo(1, 12);
    expect(m.precision).toBeCloseTo(1, 12);
    expect(m.recall).toBe(1);
    expect(m.perClass.map((c) => c.gts)).toEqual([2, 1, 0]);
    expect(m.perClass[2]!.ap50).toBe(-1); // no ground truth: left out of the mean
  });

  it('half the objects found gives AP = 51/101 and recall 0.5', () => {
    const m = evaluateDetections([{ imageId: 'a', gts: [gt([0, 0, 10, 10]), gt([50, 50, 60, 60])], dets: [det([0, 0, 10, 10], 0.9)] }], { numClasses: 1 });
    expect(m.map50).toBeCloseTo(51 / 101, 12);
    expect(m.map5095).toBeCloseTo(51 / 101, 12);
    expect(m.recall).toBe(0.5);
    expect(m.precision).toBe(1);
  });

  it('a box with the wrong class earns nothing', () => {
    const m = evaluateDetections([{ imageId: 1, gts: [gt([0, 0, 10, 10], 0)], dets: [det([0, 0, 10, 10], 0.9, 1)] }], { numClasses: 2 });
    expect(m.map50).toBe(0);
    expect(m.perClass[0]!.ap50).toBe(0);
    expect(m.perClass[1]!.ap50).toBe(-1);
    expect(m.recall).toBe(0);
  });

  it('a loose box counts at IoU 0.5 but not at 0.75', () => {
    // IoU of [0,0,10,10] and [0,0,10,15] is 100/150 = 0.667.
    const m = evaluateDetections([{ imageId: 1, gts: [gt([0, 0, 10, 10])], dets: [det([0, 0, 10, 15], 0.9)] }], { numClasses: 1 });
    expect(m.map50).toBeCloseTo(1, 12);
    expect(m.map75).toBe(0);
    expect(m.map5095).toBeCloseTo(4 / 10, 12); // thresholds 0.50, 0.55, 0.60, 0.65
  });

  it('refuses class ids outside numClasses, naming the field', () => {
    expect(() => evaluateDetections([{ imageId: 1, gts: [gt([0, 0, 1, 1], 5)], dets: [] }], { numClasses: 3 })).toThrow(CvoptError);
    let err: unknown;
    try {
      evaluateDetections([{ imageId: 1, gts: [], dets: [det([0, 0, 1, 1], 0.5, -1)] }], { numClasses: 3 });
    } catch (e) {
      err = e;
    }
    expect((err as CvoptError).where?.field).toBe('images[0].dets[0].classId');
  });
});

describe('evaluateDetections agrees with the shared definitions', () => {
  it('matches the contract fixture shared with the Python evaluator', () => {
    const fx = JSON.parse(readFileSync(new URL('../../../contracts/map-fixture.json', import.meta.url), 'utf8')) as {
      classes: string[];
      images: { name: string; gts: { box: Box; classId: number }[]; predictions: Detection[] }[];
      expected: { map50: number; map75: number; map5095: number; ap50PerClass: number[]; apPerClass: number[] };
      tolerance: number;
    };
    const m = evaluateDetections(
      fx.images.map((im) => ({ imageId: im.name, gts: im.gts, dets: im.predictions })),
      { numClasses: fx.classes.length },
    );
    const tol = fx.tolerance;
    expect(Math.abs(m.map50 - fx.expected.map50)).toBeLessThan(tol);
    expect(Math.abs(m.map75 - fx.expected.map75)).toBeLessThan(tol);
    expect(Math.abs(m.map5095 - fx.expected.map5095)).toBeLessThan(tol);
    m.perClass.forEach((c, k) => {
      expect(Math.abs(c.ap50 - fx.expected.ap50PerClass[k]!)).toBeLessThan(tol);
      expect(Math.abs(c.ap5095 - fx.expected.apPerClass[k]!)).toBeLessThan(tol);
    });
  });

  it('equals cocoEvaluate AP, AP50 and AP75 on the same boxes converted to COCO JSON', () => {
    const rng = new Rng(7);
    const K = 4;
    const images: EvalImage[] = [];
    for (let i = 0; i < 30; i++) {
      const gts = Array.from({ length: rng.int(0, 6) }, () => {
        const x = rng.uniform(0, 500);
        const y = rng.uniform(0, 400);
        return gt([x, y, x + rng.uniform(4, 150), y + rng.uniform(4, 150)], rng.int(0, K - 1));
      });
      const dets: Detection[] = [];
      for (const g of gts) {
        if (rng.bool(0.15)) continue; // missed
        const w = g.box[2] - g.box[0];
        const j = () => rng.normal(0, 0.08 * w);
        dets.push(det([g.box[0] + j(), g.box[1] + j(), g.box[2] + j(), g.box[3] + j()], Math.round(rng.float() * 20) / 20, rng.bool(0.1) ? rng.int(0, K - 1) : g.classId));
      }
      for (let f = rng.int(0, 3); f > 0; f--) {
        const x = rng.uniform(0, 500);
        dets.push(det([x, x / 2, x + 30, x / 2 + 40], Math.round(rng.float() * 20) / 20, rng.int(0, K - 1))); // scores rounded: many ties
      }
      images.push({ imageId: i + 1, gts, dets });
    }
    const m = evaluateDetections(images, { numClasses: K });
    let annId = 1;
    const cocoGt: CocoGroundTruthJson = {
      images: images.map((im) => ({ id: im.imageId as number })),
      categories: Array.from({ length: K }, (_, k) => ({ id: k })),
      annotations: images.flatMap((im) =>
        im.gts.map((g) => {
          const w = g.box[2] - g.box[0];
          const h = g.box[3] - g.box[1];
          return { id: annId++, image_id: im.imageId as number, category_id: g.classId, bbox: [g.box[0], g.box[1], w, h] as Box, area: w * h, iscrowd: 0 as const };
        }),
      ),
    };
    const cocoDt: CocoResultJson[] = images.flatMap((im) =>
      im.dets.map((d) => ({ image_id: im.imageId as number, category_id: d.classId, bbox: [d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]] as Box, score: d.score })),
    );
    const c = cocoEvaluate(cocoGt, cocoDt);
    expect(m.map5095).toBeGreaterThan(0.1);
    expect(m.map5095).toBeLessThan(0.95);
    expect(Math.abs(m.map5095 - c.stats[0]!)).toBeLessThan(1e-12);
    expect(Math.abs(m.map50 - c.stats[1]!)).toBeLessThan(1e-12);
    expect(Math.abs(m.map75 - c.stats[2]!)).toBeLessThan(1e-12);
    expect(m.recall).toBeGreaterThan(0.5);
    expect(m.precision).toBeGreaterThan(0.5);
  });
});
