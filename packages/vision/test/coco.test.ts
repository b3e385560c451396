import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CvoptError, testDataDir } from '@cvopt/core';
import { cocoEvaluate, cocoEvaluateFiles, type CocoGroundTruthJson } from '../src/index.js';

const dataDir = testDataDir();
if (!dataDir) console.warn('skipping COCO reference fixture: shared test data not found (set CVOPT_TEST_DATA)');

describe.skipIf(!dataDir)('cocoEvaluateFiles on the pycocotools reference fixture', () => {
  it('reproduces all 12 stats to 1e-4', async () => {
    const r = await cocoEvaluateFiles(join(dataDir!, 'cocoeval/instances_val2014_100.json'), join(dataDir!, 'cocoeval/instances_val2014_fakebbox100_results.json'));
    const expected = [0.5045806987, 0.6969727247, 0.572981667, 0.5856257209, 0.5193996948, 0.5013978986, 0.3868127796, 0.5936795763, 0.5953529829, 0.6398109626, 0.5664205979, 0.5642905983];
    expect(r.stats).toHaveLength(12);
    r.stats.forEach((s, i) => expect(Math.abs(s - expected[i]!), r.names[i]).toBeLessThan(1e-4));
    // In fact it agrees to the printed precision.
    r.stats.forEach((s, i) => expect(Math.abs(s - expected[i]!)).toBeLessThan(1e-9));
    expect(r.names[0]).toBe('AP@[IoU=0.50:0.95|area=all|maxDets=100]');
    expect(r.perCategory).toHaveLength(80);
    const defined = r.perCategory.filter((c) => c.ap > -1);
    expect(defined.reduce((a, c) => a + c.ap, 0) / defined.length).toBeCloseTo(r.stats[0]!, 12);
  });
});

const gtOf = (anns: { bbox: [number, number, number, number]; iscrowd?: 0 | 1; category_id?: number; area?: number }[]): CocoGroundTruthJson => ({
  images: [{ id: 7 }],
  categories: [{ id: 1, name: 'thing' }, { id: 2, name: 'other' }],
  annotations: anns.map((a, i) => ({ id: i + 1, image_id: 7, category_id: a.category_id ?? 1, bbox: a.bbox, area: a.area ?? a.bbox[2] * a.bbox[3], iscrowd: a.iscrowd ?? 0 })),
});
const det = (bbox: [number, number, number, number], score: number, category_id = 1) => ({ image_id: 7, category_id, bbox, score });

describe('cocoEvaluate rules', () => {
  it('lets crowd regions absorb any number of detections without counting them', () => {
    const gt = gtOf([{ bbox: [0, 0, 10, 10] }, { bbox: [20, 0, 20, 20], iscrowd: 1 }]);
    // Two detections inside the crowd outrank the true positive; counted as false positives they would
    // pull AP down to 1/3 at the first recall point.
    const dt = [det([22, 2, 10, 10], 0.9), det([25, 5, 10, 10], 0.8), det([0, 0, 10, 10], 0.7), det([100, 100, 5, 5], 0.6)];
    const r = cocoEvaluate(gt, dt);
    expect(r.stats[0]).toBeCloseTo(1, 12);
    expect(r.stats[8]).toBeCloseTo(1, 12);
    expect(r.perCategory[0]).toMatchObject({ categoryId: 1, name: 'thing', numGt: 1 });
    expect(r.perCategory[0]!.ap).toBeCloseTo(1, 12);
    expect(r.perCategory[1]!.ap).toBe(-1); // no ground truth: undefined
  });

  it('marks undefined stats -1 and counts a half-found category', () => {
    const gt = gtOf([{ bbox: [0, 0, 10, 10] }, { bbox: [50, 50, 10, 10] }]);
    const r = cocoEvaluate(gt, [det([0, 0, 10, 10], 0.9)]);
    // Recall reaches 0.5 at precision 1: 51 of 101 recall points.
    expect(r.stats[0]).toBeCloseTo(51 / 101, 12);
    expect(r.stats[8]).toBeCloseTo(0.5, 12);
    // Both GTs are 100 px²: small only, so medium and large are undefined.
    expect(r.stats[4]).toBe(-1);
    expect(r.stats[5]).toBe(-1);
    expect(r.stats[3]).toBeCloseTo(51 / 101, 12);
  });

  it('caps detections per image and category at maxDets', () => {
    const gt = gtOf([{ bbox: [0, 0, 10, 10] }]);
    const dt = [det([0, 0, 10, 10], 0.5), det([40, 40, 5, 5], 0.9)];
    const r = cocoEvaluate(gt, dt);
    expect(r.stats[6]).toBe(0); // AR@1 sees only the higher-scoring false positive
    expect(r.stats[7]).toBe(1);
  });
});

describe('cocoEvaluateFiles errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-coco-'));
  const write = (name: string, body: string) => {
    const f = join(dir, name);
    writeFileSync(f, body);
    return f;
  };
  const gtFile = write('gt.json', JSON.stringify(gtOf([{ bbox: [0, 0, 10, 10] }])));

  async function code(p: Promise<unknown>): Promise<CvoptError> {
    const e = await p.then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(CvoptError);
    return e as CvoptError;
  }

  it('names the line of a JSON syntax error', async () => {
    const bad = write('bad.json', '[\n  {"image_id": 7,\n   "bbox": [1,2,3,4],,\n]');
    const e = await code(cocoEvaluateFiles(gtFile, bad));
    expect(e.code).toBe('DATASET_INVALID');
    expect(e.where).toMatchObject({ file: bad, line: 3 });
  });

  it('names the field of a schema error', async () => {
    const bad = write('short-bbox.json', JSON.stringify([det([0, 0, 10, 10], 0.9), { image_id: 7, category_id: 1, bbox: [1, 2, 3], score: 0.5 }]));
    const e = await code(cocoEvaluateFiles(gtFile, bad));
    expect(e.code).toBe('DATASET_INVALID');
    expect(e.where?.field).toBe('1.bbox');
    expect(e.message).toContain(bad);
    const gtBad = write('gt-bad.json', JSON.stringify({ images: [{ id: 7 }], annotations: [{ id: 1, image_id: 7, bbox: [0, 0, 1, 1] }], categories: [] }));
    const e2 = await code(cocoEvaluateFiles(gtBad, write('ok.json', '[]')));
    expect(e2.where).toMatchObject({ file: gtBad, field: 'annotations.0.category_id' });
  });

  it('refuses results for images the ground truth does not have, and missing files', async () => {
    const e = await code(cocoEvaluateFiles(gtFile, write('other-image.json', JSON.stringify([{ ...det([0, 0, 1, 1], 0.5), image_id: 99 }]))));
    expect(e.code).toBe('DATASET_INVALID');
    expect(e.where?.field).toBe('[0].image_id');
    expect((await code(cocoEvaluateFiles(join(dir, 'nope.json'), gtFile))).code).toBe('NOT_FOUND');
  });
});
