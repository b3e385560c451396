import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CvoptError, Rng, testDataDir, type ModelManifest } from '@cvopt/core';
import { createOrtEngine, floatToHalf, halfToFloat, ortBinaryDir, probeExecutionProviders, readManifest } from '../src/index.js';
import { describeEngineConformance } from './conformance.js';
import { makeTinyModels, tinyManifest, type TinyModels } from './fixtures.js';

describeEngineConformance('onnxruntime cpu', (path, manifest) => createOrtEngine(path, manifest, { provider: 'cpu', intraOpNumThreads: 1 }));

async function codeOf(p: Promise<unknown>): Promise<CvoptError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(CvoptError);
  return e as CvoptError;
}

describe('createOrtEngine on bad input', () => {
  let models: TinyModels;
  beforeAll(() => {
    models = makeTinyModels();
  });

  it('names a truncated model file as MODEL_INVALID', async () => {
    const path = join(models.dir, 'truncated.onnx');
    writeFileSync(path, readFileSync(models.staticPath).subarray(0, 900));
    const e = await codeOf(createOrtEngine(path, tinyManifest()));
    expect(e.code).toBe('MODEL_INVALID');
    expect(e.message).toContain(path);
    expect(e.where?.file).toBe(path);
    expect(e.hint).toBeTruthy();
  });

  it('names random bytes as MODEL_INVALID', async () => {
    const path = join(models.dir, 'random.onnx');
    const rng = new Rng(7);
    writeFileSync(path, Uint8Array.from({ length: 4096 }, () => rng.nextU32() & 0xff));
    const e = await codeOf(createOrtEngine(path, tinyManifest()));
    expect(e.code).toBe('MODEL_INVALID');
    expect(e.message).toContain(path);
  });

  it('names a missing model file', async () => {
    const e = await codeOf(createOrtEngine(join(models.dir, 'nope.onnx'), tinyManifest()));
    expect(e.code).toBe('MODEL_INVALID');
    expect(e.message).toMatch(/does not exist/);
  });

  it('rejects a manifest whose input or output name is not in the graph', async () => {
    const m = tinyManifest();
    const e1 = await codeOf(createOrtEngine(models.staticPath, { ...m, input: { ...m.input, name: 'pixels' } }));
    expect(e1.code).toBe('MANIFEST_INVALID');
    expect(e1.where?.field).toBe('input.name');
    expect(e1.message).toContain('images');
    const e2 = await codeOf(createOrtEngine(models.staticPath, { ...m, output: { ...m.output, name: 'boxes' } }));
    expect(e2.code).toBe('MANIFEST_INVALID');
    expect(e2.where?.field).toBe('output.name');
  });

  it('rejects bad session options by field', async () => {
    const e = await codeOf(createOrtEngine(models.staticPath, tinyManifest(), { intraOpNumThreads: -1 }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.where?.field).toBe('intraOpNumThreads');
  });

  it('applies explicit session options and reports them', async () => {
    const e = await createOrtEngine(models.dynamicPath, tinyManifest(), {
      intraOpNumThreads: 1,
      graphOptimizationLevel: 'disabled',
      executionMode: 'parallel',
      interOpNumThreads: 1,
      maxBatch: 4,
    });
    expect(e.describe()).toMatchObject({ id: 'ort-cpu', provider: 'cpu', threads: 1, dynamicBatch: true, maxBatch: 4 });
    const out = await e.run(new Float32Array(4 * 3072), [4, 3, 32, 32]);
    expect(out.dims).toEqual([4, 6, 64]);
    await e.close();
  });

  it('refuses a provider this build or machine lacks with ENGINE_UNAVAILABLE', async () => {
    const probes = await probeExecutionProviders({ fileChecksOnly: true });
    const cuda = probes.find((p) => p.id === 'cuda');
    if (cuda?.available) return; // a GPU machine: nothing to refuse
    const e = await codeOf(createOrtEngine(models.staticPath, tinyManifest(), { provider: 'cuda' }));
    expect(e.code).toBe('ENGINE_UNAVAILABLE');
    expect(e.message).toContain('libonnxruntime_providers_cuda.so');
    expect(e.hint).toMatch(/cvopt doctor/);
  });
});

describe('readManifest', () => {
  let models: TinyModels;
  const manifestJson = (m: ModelManifest) => JSON.stringify(m, null, 2);
  beforeAll(() => {
    models = makeTinyModels();
  });

  it('reads <name>.json beside <name>.onnx', () => {
    writeFileSync(join(models.dir, 'static.json'), manifestJson(tinyManifest({ name: 'own' })));
    expect(readManifest(models.staticPath).name).toBe('own');
  });

  it('falls back to model.json in the same folder', () => {
    writeFileSync(join(models.dir, 'model.json'), manifestJson(tinyManifest({ name: 'shared' })));
    expect(readManifest(models.dynamicPath).name).toBe('shared');
  });

  it('says where it looked when there is none', () => {
    const dir2 = mkdtempSync(join(tmpdir(), 'cvopt-lonely-'));
    const p = join(dir2, 'static.onnx');
    copyFileSync(models.staticPath, p);
    try {
      readManifest(p);
      expect.unreachable();
    } catch (e) {
      expect((e as CvoptError).code).toBe('MANIFEST_INVALID');
      expect((e as CvoptError).message).toContain(join(dir2, 'static.json'));
      expect((e as CvoptError).message).toContain(join(dir2, 'model.json'));
    }
  });

  it('gives the line of a JSON syntax error', () => {
    const p = join(models.dir, 'broken.onnx');
    copyFileSync(models.staticPath, p);
    writeFileSync(join(models.dir, 'broken.json'), '{\n  "name": "x",\n  "task": detect\n}\n');
    try {
      readManifest(p);
      expect.unreachable();
    } catch (e) {
      expect((e as CvoptError).code).toBe('MANIFEST_INVALID');
      expect((e as CvoptError).where).toEqual({ file: join(models.dir, 'broken.json'), line: 3 });
    }
  });

  it('names the invalid field', () => {
    const p = join(models.dir, 'badfield.onnx');
    copyFileSync(models.staticPath, p);
    const bad = { ...tinyManifest(), preprocess: { ...tinyManifest().preprocess, channelOrder: 'RBG' } };
    writeFileSync(join(models.dir, 'badfield.json'), JSON.stringify(bad));
    try {
      readManifest(p);
      expect.unreachable();
    } catch (e) {
      expect((e as CvoptError).code).toBe('MANIFEST_INVALID');
      expect((e as CvoptError).where?.field).toBe('preprocess.channelOrder');
    }
  });
});

describe('probeExecutionProviders', () => {
  it('finds the CPU provider and explains every unavailable one', async () => {
    const probes = await probeExecutionProviders();
    expect(probes.map((p) => p.id)).toEqual(['cpu', 'cuda', 'tensorrt', 'webgpu']);
    expect(probes[0]).toEqual({ id: 'cpu', available: true });
    for (const p of probes) if (!p.available) expect(p.reason?.length).toBeGreaterThan(20);
    const gpuLibs = existsSync(join(ortBinaryDir(), 'libonnxruntime_providers_cuda.so'));
    if (!gpuLibs) {
      for (const id of ['cuda', 'tensorrt'] as const) {
        const p = probes.find((x) => x.id === id)!;
        expect(p.available).toBe(false);
        expect(p.reason).toContain(`libonnxruntime_providers_${id}.so`);
        expect(p.reason).toContain('--onnxruntime-node-install=cuda12');
      }
    }
  });
});

describe('float16 conversion', () => {
  it('round-trips representable values and rounds to nearest even', () => {
    for (const v of [0, -0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8, 0.333251953125]) expect(halfToFloat(floatToHalf(v))).toBe(v);
    expect(halfToFloat(floatToHalf(1e6))).toBe(Infinity);
    expect(Number.isNaN(halfToFloat(floatToHalf(NaN)))).toBe(true);
    expect(halfToFloat(floatToHalf(1 + 2 ** -11))).toBe(1); // tie goes to the even mantissa
    expect(halfToFloat(floatToHalf(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9);
  });
});

const dataDir = testDataDir();
describe.skipIf(!dataDir)('real YOLOv8n int8 on ONNX Runtime (needs the shared test data)', () => {
  const modelPath = join(dataDir ?? '', 'models', 'yolov8n_int8.onnx');
  const manifest = tinyManifest({
    name: 'yolov8n_int8',
    input: { name: 'images', shape: [1, 3, 640, 640], layout: 'NCHW', dtype: 'float32' },
    output: { name: 'output0', format: 'yolov8', shape: [1, 84, 8400], scoresActivated: true },
    precision: 'int8',
    opset: 20,
  });
  let engine: Awaited<ReturnType<typeof createOrtEngine>>;
  beforeAll(async () => {
    engine = await createOrtEngine(modelPath, manifest, { intraOpNumThreads: 2 });
  });
  afterAll(async () => engine?.close());

  it('finds the bear in COCO image 285 (label class 21)', async () => {
    const img = join(dataDir!, 'coco128-val', 'images', 'val2017', '000000000285.jpg');
    const { data } = await sharp(img).removeAlpha().resize(640, 640, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
    const hw = 640 * 640;
    const x = new Float32Array(3 * hw);
    for (let i = 0; i < hw; i++) for (let c = 0; c < 3; c++) x[c * hw + i] = (data[i * 3 + c] ?? 0) / 255;
    const out = await engine.run(x, [1, 3, 640, 640]);
    expect(out.dims).toEqual([1, 84, 8400]);
    let best = 0;
    let bestClass = -1;
    for (let cls = 0; cls < 80; cls++) {
      for (let a = 0; a < 8400; a++) {
        const s = out.data[(4 + cls) * 8400 + a]!;
        if (s > best) [best, bestClass] = [s, cls];
      }
    }
    expect(bestClass).toBe(21);
    expect(best).toBeGreaterThan(0.5);
    expect(best).toBeLessThanOrEqual(1);
  });

  it('rejects a 416 input with the expected dims in the message', async () => {
    const e = await codeOf(engine.run(new Float32Array(3 * 416 * 416), [1, 3, 416, 416]));
    expect(e.code).toBe('TENSOR_SHAPE');
    expect(e.message).toContain('expected dims [1, 3, 640, 640], got [1, 3, 416, 416]');
  });
});
