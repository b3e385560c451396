import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDataset, DEFAULT_READ_LIMITS, parseLabels, readLabels, type Problem } from '../src/index.js';

// Issue 13 item 12: a dataset is input from anyone. A FIFO label must not hang the check, a symlink to /dev/zero
// must not grow it without end, a row of millions of points must not crash it; each is a problem with its file.
const tmp = mkdtempSync(join(tmpdir(), 'cvopt-hostile-ds-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const root = join(tmp, 'ds');
const img = (name: string) => join(root, 'images', 'val', name);
const lab = (name: string) => join(root, 'labels', 'val', name);
/** A polygon row of n points, all inside the image. */
const polygonRow = (n: number) => `0 ${'0.25 0.75 '.repeat(n - 1)}0.5 0.5\n`;

beforeAll(async () => {
  for (const d of ['images/val', 'labels/val']) mkdirSync(join(root, d), { recursive: true });
  const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 90, g: 20, b: 200 } } }).png().toBuffer();
  for (const n of ['fifo', 'zero', 'polygon', 'noisy', 'ok']) writeFileSync(img(`${n}.png`), png);
  execFileSync('mkfifo', [lab('fifo.txt')]);
  symlinkSync('/dev/zero', lab('zero.txt'));
  writeFileSync(lab('polygon.txt'), polygonRow(2_000_000));
  writeFileSync(lab('noisy.txt'), 'x\n'.repeat(200_000));
  writeFileSync(lab('ok.txt'), '0 0.5 0.5 0.2 0.2\n');
  symlinkSync('/dev/zero', img('devzero.png'));
  writeFileSync(join(root, 'data.yaml'), 'path: .\ntrain: images/val\nval: images/val\nnames: [thing]\n');
});

const byFile = (problems: Problem[]) => new Map(problems.map((p) => [p.file.slice(root.length + 1) + (p.line ? `:${p.line}` : ''), p]));

describe('dataset check against hostile files', () => {
  it('reports a FIFO label, a /dev/zero label and image, a huge row and a flood of bad rows, and finishes', async () => {
    const r = await checkDataset(root);
    const got = byFile(r.problems);
    expect(got.get('labels/val/fifo.txt')).toMatchObject({ code: 'LABEL_UNREADABLE', message: expect.stringContaining('FIFO') });
    expect(got.get('labels/val/zero.txt')).toMatchObject({ code: 'LABEL_UNREADABLE', message: expect.stringContaining('device') });
    expect(got.get('images/val/devzero.png')).toMatchObject({ code: 'IMAGE_CORRUPT', message: expect.stringContaining('not a regular file') });
    // 2 M points is ~20 MB: over the default label cap, refused by size before it is read
    expect(got.get('labels/val/polygon.txt')).toMatchObject({ code: 'LABEL_UNREADABLE', message: expect.stringContaining(`limit of ${DEFAULT_READ_LIMITS.labelBytes}`) });
    const noisy = r.problems.filter((p) => p.file === lab('noisy.txt'));
    expect(noisy).toHaveLength(DEFAULT_READ_LIMITS.problemsPerFile + 1);
    expect(noisy.at(-1)).toMatchObject({ code: 'PROBLEMS_LEFT_OUT', severity: 'error', message: expect.stringContaining('199900 more') });
    expect(r.stats.images).toBe(6);
  });

  it('parses a huge polygon row (allowed by a raised cap) without spreading it into a call', () => {
    // Math.min(...xs) throws RangeError past ~120 k arguments; 300 k points show the fix at a fraction of the time
    const r = parseLabels(polygonRow(300_000), 'p.txt');
    expect(r.boxes).toEqual([{ classId: 0, cx: 0.375, cy: 0.625, w: 0.25, h: 0.25, line: 1 }]);
    expect(r.problems).toMatchObject([{ code: 'LABEL_SEGMENT', severity: 'warning' }]);
  });

  it('refuses a data.yaml or a split list that is a FIFO or /dev/zero, as a problem', async () => {
    const other = join(tmp, 'other');
    mkdirSync(join(other, 'images'), { recursive: true });
    symlinkSync('/dev/zero', join(other, 'data.yaml'));
    const r = await checkDataset(join(other, 'data.yaml'), { task: 'detect' });
    expect(r.problems[0]).toMatchObject({ code: 'FILE_UNREADABLE', message: expect.stringContaining('device') });

    const listed = join(tmp, 'listed');
    mkdirSync(listed);
    execFileSync('mkfifo', [join(listed, 'train.txt')]);
    writeFileSync(join(listed, 'data.yaml'), 'path: .\ntrain: train.txt\nval: train.txt\nnames: [a]\n');
    const l = await checkDataset(listed);
    expect(l.problems.find((p) => p.code === 'FILE_UNREADABLE')).toMatchObject({ file: join(listed, 'train.txt'), message: expect.stringContaining('FIFO') });
  });

  it('readLabels keeps a missing label a background image and a real one readable', () => {
    expect(readLabels(lab('absent.txt'))).toEqual({ boxes: [], problems: [] });
    expect(readLabels(lab('ok.txt')).boxes).toHaveLength(1);
  });
});
