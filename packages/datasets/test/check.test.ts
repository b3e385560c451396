import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';
import { checkDataset, loadClassificationDataset, synthClassification, type Problem } from '../src/index.js';

const dataDir = testDataDir();
if (!dataDir) console.warn('skipping real-data dataset checks: no shared test data (set CVOPT_TEST_DATA)');
const coco = dataDir ? join(dataDir, 'coco128-val') : '';
const hymenoptera = dataDir ? join(dataDir, 'hymenoptera') : '';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-check-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const at = (problems: Problem[], root: string) =>
  problems.map((p) => `${p.severity} ${p.code} ${p.file.slice(root.length + 1)}${p.line !== undefined ? `:${p.line}` : ''}`);

describe.skipIf(!dataDir)('checkDataset on real data', () => {
  it('passes coco128-val with only warnings, and measures it', async () => {
    const r = await checkDataset(coco);
    expect(r.ok).toBe(true);
    expect(r.task).toBe('detect');
    expect(r.problems.filter((p) => p.severity === 'error')).toEqual([]);
    // what the real set has: val doubles as train, and 7 of the 80 classes have no box in these 128 images
    expect(r.problems.map((p) => p.code).sort()).toEqual(['CLASS_UNUSED', 'SPLIT_OVERLAP']);
    expect(r.stats).toMatchObject({ images: 128, splits: { train: 128, val: 128 }, labelled: 128, background: 0, labelsWithoutImages: 0 });
    expect(r.stats.classHistogram).toHaveLength(80);
    expect(r.stats.classHistogram[0]).toEqual({ name: 'person', count: 350 });
    const b = r.stats.boxes;
    expect(b.units).toBe('pixels');
    expect(b.count).toBe(898);
    expect(b.small + b.medium + b.large).toBe(898);
    expect(b.minSide).toBeGreaterThan(0);
  });

  it('reports every planted fault in a broken copy, each with its file and line, in one run', async () => {
    const root = join(tmp, 'broken');
    for (const d of ['images/train', 'labels/train']) mkdirSync(join(root, d), { recursive: true });
    const src = (stem: string, kind: 'images' | 'labels', ext: string) => join(coco, kind, 'val2017', `${stem}.${ext}`);
    for (const stem of ['000000000139', '000000000285', '000000000632']) {
      copyFileSync(src(stem, 'images', 'jpg'), join(root, 'images/train', `${stem}.jpg`));
      copyFileSync(src(stem, 'labels', 'txt'), join(root, 'labels/train', `${stem}.txt`));
    }
    // a background image (no label file), a corrupt JPEG with a plausible start, a label without an image
    copyFileSync(src('000000000724', 'images', 'jpg'), join(root, 'images/train/background.jpg'));
    writeFileSync(join(root, 'images/train/corrupt.jpg'), Buffer.concat([readFileSync(src('000000000139', 'images', 'jpg')).subarray(0, 20), Buffer.alloc(200, 7)]));
    writeFileSync(join(root, 'labels/train/orphan.txt'), '0 0.5 0.5 0.1 0.1\n');
    const good = readFileSync(src('000000000285', 'labels', 'txt'), 'utf8').trim(); // one valid row
    writeFileSync(
      join(root, 'labels/train/000000000285.txt'),
      [good, '23 0.5 0.5 0.2', '99 0.5 0.5 0.2 0.2', '23 1.4 0.5 0.2 0.2', '23 0.5 0.5 0 0.2', good, '23 0.5 x 0.2 0.2'].join('\n'),
    );
    writeFileSync(join(root, 'data.yaml'), `train: images/train\nval: images/train\ntest: images/test\nnc: 81\nnames: ${JSON.stringify(readNames())}\n`);

    const r = await checkDataset(root);
    expect(r.ok).toBe(false);
    expect(at(r.problems, root)).toEqual([
      'error NC_MISMATCH data.yaml:4',
      'error SPLIT_MISSING data.yaml:3',
      'warning SPLIT_OVERLAP data.yaml',
      'error LABEL_FIELD_COUNT labels/train/000000000285.txt:2',
      'error LABEL_CLASS_RANGE labels/train/000000000285.txt:3',
      'error LABEL_COORD_RANGE labels/train/000000000285.txt:4',
      'error LABEL_BOX_EMPTY labels/train/000000000285.txt:5',
      'warning LABEL_DUPLICATE labels/train/000000000285.txt:6',
      'error LABEL_NOT_NUMBER labels/train/000000000285.txt:7',
      'error IMAGE_CORRUPT images/train/corrupt.jpg',
      'warning LABEL_ORPHAN labels/train/orphan.txt',
      'warning CLASS_UNUSED data.yaml',
    ]);
    expect(r.problems.every((p) => p.message.length > 0 && p.hint.length > 0)).toBe(true);
    expect(r.stats).toMatchObject({ images: 5, labelled: 3, background: 2, labelsWithoutImages: 1 });

    writeFileSync(join(root, 'data.yaml'), 'train: images/train\n\tval: images/train\nnames: [person]\n');
    const bad = await checkDataset(root);
    expect(bad.ok).toBe(false);
    expect(at(bad.problems, root)).toEqual(['error YAML_SYNTAX data.yaml:2']);
    expect(bad.problems[0]?.message).toBe('bad YAML: Tabs are not allowed as indentation (column 1)');
  });

  function readNames(): string[] {
    const lines = readFileSync(join(coco, 'data.yaml'), 'utf8').split('\n');
    return lines.filter((l) => /^\s+\d+:/.test(l)).map((l) => l.split(':')[1]?.trim() ?? '');
  }

  it('reads hymenoptera as a classification set, from the root or its val folder', async () => {
    for (const p of [hymenoptera, join(hymenoptera, 'val')]) {
      const d = loadClassificationDataset(p);
      expect(d.names).toEqual(['ants', 'bees']);
      expect(Object.keys(d.splits)).toEqual(['val']);
      expect(d.splits.val).toHaveLength(153);
      // An evaluation-only set: fine for eval, refused for training exactly as `cvopt train` would refuse it.
      const r = await checkDataset(p, { purpose: 'eval' });
      expect(r).toMatchObject({ ok: true, task: 'classify', problems: [] });
      const forTraining = await checkDataset(p);
      expect(forTraining.ok).toBe(false);
      expect(forTraining.problems.map((x) => [x.code, x.message.split(':')[0]])).toEqual([['SPLIT_EMPTY', 'no train images']]);
      expect(r.stats.classHistogram).toEqual([
        { name: 'ants', count: 70 },
        { name: 'bees', count: 83 },
      ]);
    }
  });
});

describe('dataset layouts', () => {
  it('says a YOLO layout is missing its data.yaml rather than reading it as classes', async () => {
    const root = join(tmp, 'noyaml');
    for (const d of ['images/train', 'labels/train']) mkdirSync(join(root, d), { recursive: true });
    await expect(checkDataset(root)).rejects.toMatchObject({ code: 'DATASET_INVALID', message: expect.stringMatching(/holds no data\.yaml/) });
  });
});

describe('classification datasets', () => {
  it('synthesises a deterministic folder-per-class set that loads and checks clean', async () => {
    const out = join(tmp, 'cls');
    const r = await synthClassification({ out, imagesPerClass: 8, imgsz: 32, seed: 2 });
    expect(r).toMatchObject({ names: ['circle', 'square', 'triangle'], train: 18, val: 6 });
    const d = loadClassificationDataset(out);
    // ImageFolder order: class ids follow the sorted folder names
    expect(d.names).toEqual(['circle', 'square', 'triangle']);
    expect(d.splits.train).toHaveLength(18);
    expect(d.splits.val?.filter((e) => e.classId === 2)).toHaveLength(2);
    const c = await checkDataset(out, { task: 'classify' });
    expect(c.ok).toBe(true);
    const again = join(tmp, 'cls2');
    await synthClassification({ out: again, imagesPerClass: 8, imgsz: 32, seed: 2 });
    const file = 'val/square/img_00007.jpg';
    expect(readFileSync(join(again, file)).equals(readFileSync(join(out, file)))).toBe(true);
  });

  it('reports a class missing from one split, an empty class folder and a corrupt image', async () => {
    const root = join(tmp, 'clsbad');
    for (const d of ['train/a', 'train/b', 'val/a', 'val/c']) mkdirSync(join(root, d), { recursive: true });
    await synthClassification({ out: join(tmp, 'clssrc'), imagesPerClass: 2, imgsz: 16, seed: 0, classes: 2 });
    copyFileSync(join(tmp, 'clssrc/train/circle/img_00000.jpg'), join(root, 'train/a/1.jpg'));
    copyFileSync(join(tmp, 'clssrc/train/square/img_00000.jpg'), join(root, 'train/b/1.jpg'));
    writeFileSync(join(root, 'val/a/broken.png'), 'not a png');
    const r = await checkDataset(root);
    expect(r.task).toBe('classify');
    expect(at(r.problems, root)).toEqual([
      'warning CLASS_DIRS_DIFFER train',
      'warning CLASS_DIRS_DIFFER val',
      'warning CLASS_DIR_EMPTY val/c',
      'error IMAGE_CORRUPT val/a/broken.png',
    ]);
    expect(r.stats.classHistogram).toEqual([
      { name: 'a', count: 2 },
      { name: 'b', count: 1 },
      { name: 'c', count: 0 },
    ]);
  });
});

describe('check agrees with training', () => {
  it('refuses a task the layout contradicts instead of misreading it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cvopt-task-'));
    mkdirSync(join(dir, 'images'));
    mkdirSync(join(dir, 'labels'));
    writeFileSync(join(dir, 'data.yaml'), 'path: .\ntrain: images\nval: images\nnames: [a]\n');
    await expect(checkDataset(dir, { task: 'classify' })).rejects.toMatchObject({ code: 'DATASET_INVALID', where: { field: '--task' } });
  });
});
