import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';
import { COCO80 } from '@cvopt/onnx';
import { PLATFORM_HANDLERS, runLocal } from '../src/index.js';

/**
 * One evaluator: the accuracy drop the quantize guard accepts is the drop bench reports for the INT8 engine, for the
 * same model, data, calibration and protocol (YOLOX-nano FP32, the real COCO detector, on 6 coco128 images).
 */

const root = mkdtempSync(join(tmpdir(), 'cvopt-guard-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const D = testDataDir();

describe.skipIf(!D)('quantize guard vs bench (needs the shared test data)', () => {
  it('reports the same mAP50 drop', { timeout: 600_000 }, async () => {
    const coco = join(D ?? '', 'coco128-val');
    // Six images, one split: calibration and evaluation read the same files in both commands.
    const data = join(root, 'coco6');
    mkdirSync(join(data, 'images'), { recursive: true });
    mkdirSync(join(data, 'labels'), { recursive: true });
    for (const f of readdirSync(join(coco, 'images/val2017')).sort().slice(0, 6)) {
      symlinkSync(join(coco, 'images/val2017', f), join(data, 'images', f));
      symlinkSync(join(coco, 'labels/val2017', f.replace(/\.jpg$/, '.txt')), join(data, 'labels', f.replace(/\.jpg$/, '.txt')));
    }
    writeFileSync(join(data, 'data.yaml'), `path: ${data}\ntrain: images\nval: images\nnames: ${JSON.stringify(COCO80)}\n`);
    const yaml = join(data, 'data.yaml');
    const model = join(D ?? '', 'models/yolox_nano.onnx');

    const q = await runLocal(PLATFORM_HANDLERS.quantize, { model, data: yaml, out: join(root, 'q', 'model.int8.onnx'), method: 'minmax', calib: 4, intraOpNumThreads: 1 });
    const b = await runLocal(PLATFORM_HANDLERS.bench, {
      model,
      data: yaml,
      out: join(root, 'bench', 'report.json'),
      engines: ['ort-cpu', 'ort-cpu-int8'],
      calib: 4,
      threads: 1,
      iters: 2,
      warmup: 1,
      batchSizes: [1],
      cacheDir: join(root, 'cache'),
    });
    const int8 = b.report.engines.find((e) => e.engine === 'ort-cpu-int8');
    const fp32 = b.report.engines.find((e) => e.engine === 'ort-cpu');
    expect(int8?.status).toBe('ok');
    expect(fp32?.status).toBe('ok');
    if (int8?.status !== 'ok' || fp32?.status !== 'ok') return;
    // Same protocol recorded on both sides.
    expect(int8.figures.accuracy?.protocol).toEqual(q.protocol);
    expect(q.fp32.map50).toBeGreaterThan(0.2);
    // The FP32 figures agree, and the drop (guard: points; bench: mAP50 delta, rounded to 1e-4) is the same.
    expect(Math.abs(fp32.figures.accuracy!.map50! - q.fp32.map50!)).toBeLessThanOrEqual(5e-5);
    expect(Math.abs(int8.figures.accuracy!.map50! - q.quantized.map50!)).toBeLessThanOrEqual(5e-5);
    expect(Math.abs(-int8.figures.accuracy!.delta!.map50! - q.drop)).toBeLessThanOrEqual(0.0002);
    console.log(`quantize guard drop ${q.drop.toFixed(4)}; bench delta ${int8.figures.accuracy!.delta!.map50} (fp32 mAP50 ${q.fp32.map50?.toFixed(4)})`);
  });
});
