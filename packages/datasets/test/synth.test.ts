import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '@cvopt/core';
import sharp from 'sharp';
import { listFilesRecursive, loadDetectionDataset, readLabels, synthDetection, SHAPE_KINDS } from '../src/index.js';
import { createCanvas, drawShape, paintBackground } from '../src/raster.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-synth-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function treeHash(root: string): string {
  const h = createHash('sha256');
  for (const f of listFilesRecursive(root)) h.update(relative(root, f)).update(readFileSync(f));
  return h.digest('hex');
}

describe('synthDetection', () => {
  it('is byte-identical for the same seed and differs for another', async () => {
    const opts = { images: 10, imgsz: 96, classes: 4 };
    await synthDetection({ ...opts, out: join(tmp, 'a'), seed: 7 });
    await synthDetection({ ...opts, out: join(tmp, 'b'), seed: 7 });
    await synthDetection({ ...opts, out: join(tmp, 'c'), seed: 8 });
    expect(treeHash(join(tmp, 'a'))).toBe(treeHash(join(tmp, 'b')));
    expect(treeHash(join(tmp, 'a'))).not.toBe(treeHash(join(tmp, 'c')));
  });

  it('writes an Ultralytics layout that loads, with valid labels and a val split', async () => {
    const out = join(tmp, 'layout');
    const r = await synthDetection({ out, images: 30, imgsz: 128, seed: 1 });
    expect(r.train + r.val).toBe(30);
    expect(r.val).toBe(6);
    const d = loadDetectionDataset(r.dataYaml);
    expect(d.names).toEqual(['circle', 'square', 'triangle']);
    expect(d.splits.train).toHaveLength(24);
    expect(d.splits.val).toHaveLength(6);
    let boxes = 0;
    for (const e of [...(d.splits.train ?? []), ...(d.splits.val ?? [])]) {
      const l = readLabels(e.label, { numClasses: 3 });
      expect(l.problems).toEqual([]);
      boxes += l.boxes.length;
      for (const b of l.boxes) expect(Math.min(b.w, b.h) * 128).toBeGreaterThanOrEqual(12);
    }
    expect(boxes).toBe(r.boxes);
    const meta = await sharp(d.splits.val?.[0]?.image).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['jpeg', 128, 128, 3]);
  });
});

describe('synth output directory', () => {
  it('replaces an earlier synthetic dataset and refuses a directory holding anything else', async () => {
    const out = join(tmp, 'again');
    await synthDetection({ out, images: 12, imgsz: 64 });
    const r = await synthDetection({ out, images: 5, imgsz: 64 });
    const d = loadDetectionDataset(r.dataYaml);
    expect((d.splits.train?.length ?? 0) + (d.splits.val?.length ?? 0)).toBe(5);
    expect(listFilesRecursive(join(out, 'labels'))).toHaveLength(5);
    const foreign = join(tmp, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'thesis.tex'), 'precious');
    await expect(synthDetection({ out: foreign, images: 5 })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(readFileSync(join(foreign, 'thesis.tex'), 'utf8')).toBe('precious');
  });
});

describe('drawShape', () => {
  it('returns the box that hugs exactly the painted pixels, for every shape kind', () => {
    const rng = new Rng(3);
    for (const kind of SHAPE_KINDS) {
      const c = createCanvas(64, 64);
      paintBackground(c, 'solid', rng);
      const before = Uint8Array.from(c.data);
      const colour: [number, number, number] = [before[0] === 0 ? 255 : 0, 1, 2];
      const box = drawShape(c, kind, { x: 10.3, y: 7.8, w: 31.4, h: 22.9 }, colour);
      expect(box, kind).toBeDefined();
      let [x1, y1, x2, y2] = [64, 64, 0, 0];
      for (let y = 0; y < 64; y++) {
        for (let x = 0; x < 64; x++) {
          const i = (y * 64 + x) * 3;
          if (c.data[i] === colour[0] && c.data[i + 1] === 1 && c.data[i + 2] === 2) {
            [x1, y1, x2, y2] = [Math.min(x1, x), Math.min(y1, y), Math.max(x2, x + 1), Math.max(y2, y + 1)];
          }
        }
      }
      expect(box, kind).toEqual([x1, y1, x2, y2]);
      // and the box is the drawn rectangle to within a pixel: the shapes fill their rectangle
      expect(x1).toBeLessThanOrEqual(11);
      expect(x2).toBeGreaterThanOrEqual(41);
      expect(y1).toBeLessThanOrEqual(9);
      expect(y2).toBeGreaterThanOrEqual(30);
    }
  });
});
