import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { CvoptError, ModelManifestSchema } from '@cvopt/core';
import { findPython, trainerDir } from '@cvopt/trainer-client';
import { assertParity, exportModel } from '../src/index.js';

// Real PyTorch export → real ONNX Runtime; the tolerance written down: FP32 agrees to 1e-4 relative.
const FP32_PARITY = 1e-4;

/**
 * A yolov8n checkpoint that behaves like a trained one: BatchNorm statistics calibrated on random images (a fresh
 * preset's activations fade to ~1e-9 through the depth, so every class score would tie at the bias prior) and
 * class scores spread over 0.1-0.99 (best and second class apart by ≥ 3e-4 on the sample), so "identical detections" compares real, distinct boxes and classes.
 */
function writeLivelyCheckpoint(path: string): void {
  const code = [
    'import sys, torch',
    'from torch import nn',
    'from cvopt_trainer.models import build_model',
    'torch.manual_seed(0)',
    'm = build_model("yolov8n", nc=80)',
    'for mod in m.modules():',
    '    if isinstance(mod, nn.BatchNorm2d):',
    '        mod.reset_running_stats(); mod.momentum = None',
    'm.train()',
    'with torch.no_grad():',
    '    for _ in range(4): m(torch.rand(4, 3, 64, 64))',
    'for seq in m.model[-1].cv3: seq[-1].bias.data.fill_(-2.0); seq[-1].weight.data.mul_(0.05)',
    'torch.save({"format": "cvopt-checkpoint-v1", "preset": "yolov8n", "task": "detect", "nc": 80, "imgsz": 64,',
    '            "names": [f"c{i}" for i in range(80)], "state_dict": m.state_dict()}, sys.argv[1])',
  ].join('\n');
  execFileSync(findPython().executable, ['-c', code, path], { cwd: trainerDir(), stdio: ['ignore', 'ignore', 'inherit'] });
}

// Each of these starts PyTorch in a worker (seconds on an idle machine, minutes on a loaded one).
const WORKER_TEST_TIMEOUT_MS = 300_000;

describe('exportModel (PyTorch worker + ONNX Runtime parity)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cvopt-export-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exports a yolov8n checkpoint whose ONNX agrees with PyTorch, detections included', { timeout: WORKER_TEST_TIMEOUT_MS }, async () => {
    writeLivelyCheckpoint(join(dir, 'lively.pt'));
    // a real image with structure, so the random network produces varied scores
    const w = 96;
    const h = 72;
    const px = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set([(x * 5) % 256, (y * 7) % 256, ((x ^ y) * 3) % 256], (y * w + x) * 3);
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(join(dir, 'sample.png'));
    const stages: string[] = [];
    const r = await exportModel(
      { checkpoint: join(dir, 'lively.pt'), out: join(dir, 'art', 'model.onnx'), samples: [join(dir, 'sample.png')] },
      { onProgress: (m) => stages.push(m.stage) },
    );
    expect(stages).toContain('export');
    expect(stages).toContain('parity');
    expect(r.task).toBe('detect');
    expect(r.opset).toBe(17);
    expect(r.parity.samples).toBe(1);
    expect(r.parity.maxRelDiff).toBeLessThanOrEqual(FP32_PARITY);
    expect(r.parity.cosine).toBeGreaterThan(0.999999);
    const d = r.parity.detections!;
    expect(d.reference).toBeGreaterThan(0);
    expect(d.onnx).toBe(d.reference);
    expect(d.matched).toBe(d.reference);
    expect(d.classAgreement).toBe(1);
    expect(d.meanIou).toBeGreaterThan(0.999);
    // model.json stays valid against the shared schema and carries the figures
    const manifest = ModelManifestSchema.parse(JSON.parse(readFileSync(r.manifest, 'utf8')));
    expect(manifest.provenance.parity).toEqual(r.parity);
    expect(manifest.output.shape).toEqual([1, 84, 84]);
    expect(manifest.classNames).toHaveLength(80);
  });

  it('exports a dynamic-batch classifier and compares top-1', { timeout: WORKER_TEST_TIMEOUT_MS }, async () => {
    const r = await exportModel({ checkpoint: 'yolov8p-cls', out: join(dir, 'cls', 'model.onnx'), imgsz: 64, dynamic: true });
    expect(r.task).toBe('classify');
    expect(r.dynamic).toBe(true);
    expect(r.parity.samples).toBe(2);
    expect(r.parity.maxRelDiff).toBeLessThanOrEqual(FP32_PARITY);
    expect(r.parity.top1Agreement).toBe(1);
    const manifest = ModelManifestSchema.parse(JSON.parse(readFileSync(r.manifest, 'utf8')));
    expect(manifest.input.shape).toEqual(['batch', 3, 64, 64]);
  });

  it('says what is wrong with bad options, before running anything', async () => {
    await expect(exportModel({ checkpoint: 'yolov8n', out: join(dir, 'x.pt') })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', where: { field: 'out' } });
    await expect(exportModel({ checkpoint: 'yolov8n', out: join(dir, 'x.onnx'), samples: join(dir, 'missing') })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      where: { field: 'samples' },
    });
    await expect(exportModel({ checkpoint: 'yolov8n', out: join(dir, 'x.onnx'), imgsz: 50 })).rejects.toBeInstanceOf(CvoptError);
  });
});

describe('assertParity', () => {
  it('passes within the tolerance and fails with PARITY_FAILED above it (or on NaN)', () => {
    const base = { samples: 1, maxAbsDiff: 1e-6, cosine: 1, tolerance: 1e-3 };
    expect(() => assertParity({ ...base, maxRelDiff: 1e-3 }, { onnx: 'm.onnx' })).not.toThrow();
    expect(() => assertParity({ ...base, maxRelDiff: 2e-3 }, { onnx: 'm.onnx' })).toThrow(
      expect.objectContaining({ code: 'PARITY_FAILED', where: { file: 'm.onnx' }, message: expect.stringContaining('2.00e-3 > tolerance 0.001') }),
    );
    expect(() => assertParity({ ...base, maxRelDiff: Number.NaN }, { onnx: 'm.onnx' })).toThrow(expect.objectContaining({ code: 'PARITY_FAILED' }));
  });
});
