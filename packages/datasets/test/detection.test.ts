import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CvoptError, testDataDir } from '@cvopt/core';
import { loadDetectionDataset, resolveDetectionDataset } from '../src/index.js';

const dataDir = testDataDir();
const coco = dataDir ? join(dataDir, 'coco128-val') : '';
if (!dataDir) console.warn('skipping coco128-val tests: no shared test data (set CVOPT_TEST_DATA)');

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-ds-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A tiny dataset of blank PNG-named files (the loader never decodes images). */
function layout(dir: string, files: string[]): void {
  for (const f of files) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), '');
  }
}

describe.skipIf(!dataDir)('loadDetectionDataset on coco128-val', () => {
  it('finds 128 images with labels and 80 names from the directory or the yaml', () => {
    for (const p of [coco, join(coco, 'data.yaml')]) {
      const d = loadDetectionDataset(p);
      expect(d.root).toBe(coco);
      expect(d.yamlPath).toBe(join(coco, 'data.yaml'));
      expect(d.names).toHaveLength(80);
      expect(d.names[0]).toBe('person');
      expect(d.names[79]).toBe('toothbrush');
      expect(d.splits.val).toHaveLength(128);
      expect(d.splits.train).toHaveLength(128);
      expect(d.splits.test).toBeUndefined();
      const first = d.splits.val?.[0];
      expect(first?.image).toBe(join(coco, 'images/val2017/000000000139.jpg'));
      expect(first?.label).toBe(join(coco, 'labels/val2017/000000000139.txt'));
    }
  });
});

describe('loadDetectionDataset semantics', () => {
  it('reads names as a list or as an {id: name} map, the same', () => {
    const dir = join(tmp, 'names');
    layout(dir, ['images/train/a.jpg', 'images/val/b.PNG', 'images/val/notes.md']);
    writeFileSync(join(dir, 'list.yaml'), 'train: images/train\nval: images/val\nnames: [cat, dog]\n');
    writeFileSync(join(dir, 'map.yaml'), 'path: .\ntrain: images/train\nval: images/val\nnc: 2\nnames:\n  1: dog\n  0: cat\n');
    const a = loadDetectionDataset(join(dir, 'list.yaml'));
    const b = loadDetectionDataset(join(dir, 'map.yaml'));
    expect(a.names).toEqual(['cat', 'dog']);
    expect(b).toEqual({ ...a, yamlPath: join(dir, 'map.yaml') });
    expect(a.splits.val).toEqual([{ image: join(dir, 'images/val/b.PNG'), label: join(dir, 'labels/val/b.txt') }]);
  });

  it('reads .txt image lists and lists of sources, relative to path', () => {
    const dir = join(tmp, 'lists');
    layout(dir, ['data/images/s1/a.jpg', 'data/images/s1/b.jpg', 'data/images/s2/c.webp', 'data/images/s3/d.bmp']);
    writeFileSync(join(dir, 'data/train.txt'), 'images/s1/a.jpg\n./images/s1/b.jpg\n\n');
    writeFileSync(join(dir, 'data.yaml'), 'path: data\ntrain: train.txt\nval: [images/s2, images/s3]\nnames: {0: x}\n');
    const d = loadDetectionDataset(dir);
    expect(d.root).toBe(join(dir, 'data'));
    expect(d.splits.train?.map((e) => e.image)).toEqual([join(dir, 'data/images/s1/a.jpg'), join(dir, 'data/images/s1/b.jpg')]);
    expect(d.splits.val?.map((e) => e.label)).toEqual([join(dir, 'data/labels/s2/c.txt'), join(dir, 'data/labels/s3/d.txt')]);
  });

  it('fails with every yaml problem located by line', () => {
    const dir = join(tmp, 'badnames');
    layout(dir, ['images/val/a.jpg']);
    writeFileSync(join(dir, 'data.yaml'), 'train: images/nope\nval: images/val\nnc: 3\nnames:\n  0: a\n  2: c\n');
    const r = resolveDetectionDataset(dir);
    expect(r.problems.filter((p) => p.severity === 'error').map((p) => [p.code, p.line])).toEqual([
      ['NAMES_INVALID', 4],
      ['SPLIT_MISSING', 1],
    ]);
    writeFileSync(join(dir, 'data.yaml'), 'val: images/val\nnc: 3\nnames: [a, b]\n');
    expect(() => loadDetectionDataset(dir)).toThrow(CvoptError);
    try {
      loadDetectionDataset(dir);
    } catch (e) {
      const err = e as CvoptError;
      expect(err.code).toBe('DATASET_INVALID');
      expect(err.where).toEqual({ file: join(dir, 'data.yaml'), line: 2 });
      expect(err.message).toMatch(/nc is 3 but names lists 2/);
    }
  });

  it('reports bad YAML syntax with its line', () => {
    const dir = join(tmp, 'syntax');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'data.yaml'), 'train: images/train\nval: [images/val\nnames: [a]\n');
    const r = resolveDetectionDataset(dir);
    expect(r.dataset).toBeUndefined();
    expect(r.problems[0]?.code).toBe('YAML_SYNTAX');
    expect(r.problems[0]?.line).toBeGreaterThanOrEqual(2);
  });

  it('says NOT_FOUND for a path that does not exist', () => {
    expect(() => loadDetectionDataset(join(tmp, 'missing'))).toThrow(/does not exist/);
  });

  it.skipIf(!dataDir)('keeps a copied real image findable through a txt list with ./ entries', () => {
    const dir = join(tmp, 'copy');
    mkdirSync(join(dir, 'images'), { recursive: true });
    copyFileSync(join(coco, 'images/val2017/000000000139.jpg'), join(dir, 'images/x.jpg'));
    writeFileSync(join(dir, 'val.txt'), './images/x.jpg\n');
    writeFileSync(join(dir, 'data.yaml'), 'val: val.txt\nnames: [a]\n');
    expect(loadDetectionDataset(dir).splits.val).toEqual([{ image: join(dir, 'images/x.jpg'), label: join(dir, 'labels/x.txt') }]);
  });
});
