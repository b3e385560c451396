import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CvoptError, DEFAULT_EVAL_PROTOCOL, ModelManifestSchema, type Detection } from '@cvopt/core';
import { AccuracyMeter, datasetImages } from '../src/index.js';

/** The one evaluator: its protocol against the contract the Python trainer also checks, its split and label rules. */

const fixture = JSON.parse(readFileSync(new URL('../../../contracts/eval-protocol.json', import.meta.url), 'utf8')) as {
  protocol: typeof DEFAULT_EVAL_PROTOCOL;
  output: { dims: number[]; rows: number[][] };
  imageSize: [number, number];
  expected: Record<'multiLabel' | 'singleLabel', { box: number[]; score: number; classId: number }[]>;
};

const manifest = ModelManifestSchema.parse({
  name: 'fixture',
  task: 'detect',
  input: { name: 'images', shape: [1, 3, 640, 640], layout: 'NCHW', dtype: 'float32' },
  preprocess: { resize: 'letterbox', size: [640, 640], scale: 1 / 255, channelOrder: 'RGB' },
  output: { name: 'output0', format: 'yolov8', shape: [1, 7, 5] },
  classNames: ['a', 'b', 'c'],
  opset: 17,
});

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-evaluate-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function labelFile(name: string, text: string): string {
  const f = join(tmp, name);
  writeFileSync(f, text);
  return f;
}

describe('AccuracyMeter under the shared protocol (contracts/eval-protocol.json)', () => {
  const data = Float32Array.from(fixture.output.rows.flat());
  const [w, h] = fixture.imageSize;
  const meta = { scale: 1, padX: 0, padY: 0, origWidth: w, origHeight: h };
  const gt = labelFile('gt.txt', '0 0.078125 0.078125 0.03125 0.03125\n');

  it('defaults to the contract protocol: conf 0.001, IoU 0.7, 300 dets, multi-label', () => {
    expect(DEFAULT_EVAL_PROTOCOL).toEqual(fixture.protocol);
    expect(new AccuracyMeter(manifest).protocol).toEqual(fixture.protocol);
  });

  for (const mode of ['multiLabel', 'singleLabel'] as const) {
    it(`decodes the fixture output to the expected ${mode} detections`, () => {
      const meter = new AccuracyMeter(manifest, { multiLabel: mode === 'multiLabel' });
      const dets = meter.add({ data, dims: fixture.output.dims }, meta, { image: 'x.jpg', label: gt }) as Detection[];
      const want = fixture.expected[mode];
      expect(dets).toHaveLength(want.length);
      dets.forEach((d, i) => {
        expect(d.classId).toBe(want[i]!.classId);
        expect(d.score).toBeCloseTo(want[i]!.score, 6);
        d.box.forEach((v, j) => expect(v).toBeCloseTo(want[i]!.box[j]!, 4));
      });
      const r = meter.result();
      expect(r.protocol?.multiLabel).toBe(mode === 'multiLabel');
      // The class-0 box matches the one ground truth exactly: AP 1 for the only class with ground truth.
      expect(r.map50).toBeCloseTo(1, 6);
    });
  }

  it('refuses a bad label row with LABEL_INVALID naming file and line', () => {
    const bad = labelFile('bad.txt', '0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n');
    const meter = new AccuracyMeter(manifest);
    let err: unknown;
    try {
      meter.add({ data, dims: fixture.output.dims }, meta, { image: 'x.jpg', label: bad });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CvoptError);
    expect((err as CvoptError).code).toBe('LABEL_INVALID');
    expect((err as CvoptError).where).toMatchObject({ file: bad, line: 2 });
  });

  it('refuses an out-of-range protocol with INVALID_ARGUMENT', () => {
    expect(() => new AccuracyMeter(manifest, { iou: 2 })).toThrow(/protocol/);
  });
});

describe('datasetImages: one split rule', () => {
  it('evaluates on val, else test, else train; calibrates on train, else val', () => {
    const root = join(tmp, 'ds');
    for (const s of ['train', 'test']) {
      mkdirSync(join(root, 'images', s), { recursive: true });
      mkdirSync(join(root, 'labels', s), { recursive: true });
      writeFileSync(join(root, 'images', s, `${s}1.jpg`), '');
      writeFileSync(join(root, 'labels', s, `${s}1.txt`), '');
    }
    writeFileSync(join(root, 'data.yaml'), `path: ${root}\ntrain: images/train\ntest: images/test\nnames: [a, b, c]\n`);
    const ev = datasetImages(join(root, 'data.yaml'), 'detect', 'evaluate');
    expect(ev.split).toBe('test');
    expect(ev.images.map((i) => i.image)).toEqual([join(root, 'images/test/test1.jpg')]);
    expect(datasetImages(join(root, 'data.yaml'), 'detect', 'calibrate').split).toBe('train');
  });
});
