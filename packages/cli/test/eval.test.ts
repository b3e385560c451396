import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';
import { runCli as run } from './run-cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-cli-eval-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('cvopt eval flags', () => {
  it('fails with the flag named and a usage exit code', async () => {
    const lone = await run('--json', 'eval', '--coco-gt', 'gt.json');
    expect(lone.code).toBe(2);
    expect(JSON.parse(lone.out).error).toMatchObject({ code: 'INVALID_ARGUMENT', where: { field: '--coco-dt' } });
    const noData = await run('--json', 'eval', 'model.onnx');
    expect(JSON.parse(noData.out).error.where.field).toBe('--data');
    const badConf = await run('--json', 'eval', 'model.onnx', '--data', tmp, '--conf', '1.5');
    expect(JSON.parse(badConf.out).error.where.field).toBe('--conf');
    const badEngine = await run('--json', 'eval', 'model.onnx', '--data', tmp, '--engine', 'tensorrt');
    expect(JSON.parse(badEngine.out).error.message).toMatch(/must be an engine id: tensorrt-int8, tensorrt-fp16, ort-cuda-fp16, ort-cuda, ort-cpu-int8, ort-cpu, pytorch/);
    const gpu = await run('--json', 'eval', 'model.onnx', '--data', tmp, '--engine', 'ort-cuda');
    // A real id this machine cannot run is ENGINE_UNAVAILABLE with the reason, not a usage error.
    expect(JSON.parse(gpu.out).error.code).toMatch(/ENGINE_UNAVAILABLE|NOT_FOUND/);
  });
});

const dataDir = testDataDir();
describe.skipIf(!dataDir)('cvopt eval on real data (needs the shared test data)', () => {
  const D = dataDir ?? '';

  it('--coco-gt/--coco-dt reproduces the 12 pycocotools stats to 1e-4', async () => {
    const r = await run('--json', 'eval', '--coco-gt', join(D, 'cocoeval/instances_val2014_100.json'), '--coco-dt', join(D, 'cocoeval/instances_val2014_fakebbox100_results.json'));
    expect(r.code).toBe(0);
    const stats = Object.values(JSON.parse(r.out).stats as Record<string, number>);
    const pycocotools = [0.5045806987, 0.6969727247, 0.572981667, 0.5856257209, 0.5193996948, 0.5013978986, 0.3868127796, 0.5936795763, 0.5953529829, 0.6398109626, 0.5664205979, 0.5642905983];
    expect(stats).toHaveLength(12);
    stats.forEach((v, i) => expect(Math.abs(v - pycocotools[i]!)).toBeLessThan(1e-4));
    const human = await run('eval', '--coco-gt', join(D, 'cocoeval/instances_val2014_100.json'), '--coco-dt', join(D, 'cocoeval/instances_val2014_fakebbox100_results.json'));
    expect(human.out).toMatch(/AP@\[IoU=0.50\|area=all\|maxDets=100\]\s+0.6970/);
  });

  it('evaluates YOLOX-nano on 2 COCO images and writes COCO detections', async () => {
    const preds = join(tmp, 'preds.json');
    const r = await run('--json', 'eval', join(D, 'models/yolox_nano.onnx'), '--data', join(D, 'coco128-val'), '--max-images', '2', '--save-json', preds);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc).toMatchObject({ task: 'detect', images: 2, engine: { id: 'ort-cpu' }, savedJson: { categoryIds: 'coco91' } });
    expect(doc.detect.map50).toBeGreaterThan(0.2);
    const saved = JSON.parse(readFileSync(preds, 'utf8'));
    expect(saved[0]).toEqual({ image_id: expect.any(Number), category_id: expect.any(Number), bbox: expect.any(Array), score: expect.any(Number) });
  });
});

describe('cvopt doctor', () => {
  it('exits 0 with the required items ok while training and optional items are missing', async () => {
    // No Python: training is impossible, yet inference is ready, so doctor must still succeed and say so.
    process.env.CVOPT_PYTHON = '/nonexistent/python3';
    const r = await run('--json', 'doctor', '--quick', '--database-url', 'postgres://x@127.0.0.1:1/x', '--redis-url', 'redis://127.0.0.1:1', '--timeout-ms', '500');
    delete process.env.CVOPT_PYTHON;
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc.ok).toBe(true);
    expect(doc.trainingOk).toBe(false);
    expect(doc.items.find((i: { name: string }) => i.name === 'python')).toMatchObject({ status: 'missing', need: 'training' });
    expect(doc.items.find((i: { name: string }) => i.name === 'redis')).toMatchObject({ status: 'unavailable' });
    expect(Object.keys(doc.cpu.flags)).toEqual(expect.arrayContaining(['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni']));
  });
});
