import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelManifestSchema, type ModelManifest } from '@cvopt/core';
import { synthDetection } from '@cvopt/datasets';
import {
  attr,
  calibrate,
  calibrationSamples,
  compareOnnx,
  datasetImages,
  convertFp16,
  DT,
  entropyThreshold,
  encodeOnnx,
  inspectOnnx,
  makeTensor,
  model,
  node,
  percentileThreshold,
  quantizableTensors,
  quantizeOnnx,
  quantizeQdq,
  quantLayers,
  rankSensitivity,
  readOnnx,
  valueInfo,
  writeOnnx,
  type ModelProto,
  type Sample,
} from '../src/index.js';
import { seededInput, tinyConvNet } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-transforms-'));

async function runModel(m: ModelProto, x: Float32Array, dims: number[], level: 'disabled' | 'all' = 'all'): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(encodeOnnx(m), { graphOptimizationLevel: level, intraOpNumThreads: 1 });
  const out = await s.run({ [s.inputNames[0] as string]: new ort.Tensor('float32', x, dims) });
  await s.release();
  return out[s.outputNames[0] as string]?.data as Float32Array;
}

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += ((a[i] as number) - (b[i] as number)) ** 2;
    den += (a[i] as number) ** 2;
  }
  return Math.sqrt(num / den);
}

const samples = (n: number): Sample[] => Array.from({ length: n }, (_, i) => ({ feeds: { images: { data: seededInput(3 * 32 * 32, 100 + i), dims: [1, 3, 32, 32] } } }));

describe('calibration thresholds', () => {
  it('percentile clips the tail it is asked to', () => {
    const h = new Float64Array(100).fill(1);
    expect(percentileThreshold(h, 50)).toBe(50);
    expect(percentileThreshold(h, 100)).toBe(100);
  });

  it('entropy keeps the bulk of a long-tailed distribution and drops the outliers', () => {
    // A Laplace-like bulk in the first 300 bins plus a few outliers far out.
    const h = new Float64Array(2048);
    for (let i = 0; i < 300; i++) h[i] = Math.round(1e5 * Math.exp(-i / 40));
    h[2000] = 1;
    const t = entropyThreshold(h, 127);
    expect(t).toBeGreaterThan(127);
    expect(t).toBeLessThan(1000);
  });
});

describe('static INT8 QDQ', () => {
  it('quantizes a conv net so ONNX Runtime runs it fused, close to FP32, for every calibration method', async () => {
    const fp32 = tinyConvNet();
    const tensors = quantizableTensors(fp32);
    expect(tensors).toContain('images');
    expect(tensors).not.toContain('head.y');
    const x = seededInput(3 * 32 * 32, 999);
    const ref = await runModel(fp32, x, [1, 3, 32, 32]);
    for (const method of ['minmax', 'percentile', 'entropy'] as const) {
      const ranges = await calibrate(fp32, tensors, samples(8), { method });
      expect(ranges.get('stem.s')?.min).toBeGreaterThanOrEqual(0);
      const q = quantizeQdq(fp32, ranges, { reduceRange: true });
      const info = inspectOnnx({ path: 'mem', fileBytes: 0, model: q.model, externalData: [] });
      const ops = Object.fromEntries(info.operators.map((o) => [o.opType, o.count]));
      expect(ops.QuantizeLinear, method).toBe(ops.DequantizeLinear ? ops.QuantizeLinear : -1);
      expect(info.initializers.byType.int8?.count).toBeGreaterThanOrEqual(4);
      expect(info.opsets[0]?.version).toBe(13);
            const unfused = await runModel(q.model, x, [1, 3, 32, 32], 'disabled');
      const fused = await runModel(q.model, x, [1, 3, 32, 32], 'all');
      // Entropy clips near-uniform noise activations hard; real images fare better (see bench/int8.mjs).
      const tol = method === 'entropy' ? 0.15 : 0.05;
      expect(relErr(ref, unfused), method).toBeLessThan(tol);
      // With 7-bit weights ORT's integer kernels reproduce the QDQ arithmetic (no u8s8 saturation).
      expect(relErr(unfused, fused), method).toBeLessThan(0.005);
    }
  });

  it('ranks layers (conv + its SiLU) by their one-at-a-time effect on the output', async () => {
    const fp32 = tinyConvNet();
    const ranges = await calibrate(fp32, quantizableTensors(fp32), samples(2));
    const q = quantizeQdq(fp32, ranges, { reduceRange: true });
    const layers = quantLayers(fp32, q.quantizedNodes);
    expect(layers[0]).toEqual(['stem', 'stem.sig', 'stem.silu']);
    expect(layers.flat().sort()).toEqual([...q.quantizedNodes].sort());
    const ranking = await rankSensitivity(fp32, ranges, { reduceRange: true }, q.quantizedNodes, samples(2));
    expect(ranking).toHaveLength(layers.length);
    for (let i = 1; i < ranking.length; i++) expect((ranking[i - 1]?.error ?? 0) >= (ranking[i]?.error ?? 0)).toBe(true);
    expect(ranking[0]?.error).toBeGreaterThan(0);
  });

  it('excluded nodes and op types stay in float', async () => {
    const fp32 = tinyConvNet();
    const ranges = await calibrate(fp32, quantizableTensors(fp32), samples(2));
    const q = quantizeQdq(fp32, ranges, { excludeNodes: ['b1'], excludeOps: ['MaxPool'] });
    const b1 = q.model.graph.node.find((n) => n.name === 'b1');
    expect(b1?.input[1]).toBe('b1.w');
    expect(q.model.graph.initializer.find((t) => t.name === 'b1.w')?.dataType).toBe(DT.FLOAT);
    expect(q.quantizedNodes).not.toContain('b1');
    expect(q.quantizedNodes).not.toContain('pool');
    const stem = q.model.graph.node.find((n) => n.name === 'stem');
    expect(stem?.input[1]).toMatch(/dequantized/);
    const out = await runModel(q.model, seededInput(3 * 32 * 32), [1, 3, 32, 32]);
    expect(out.length).toBe(6 * 8 * 8);
  });

  it('symmetric int8 activations use int8 zero points of 0', async () => {
    const fp32 = tinyConvNet();
    const ranges = await calibrate(fp32, quantizableTensors(fp32), samples(2));
    const q = quantizeQdq(fp32, ranges, { activations: 'int8' });
    const zps = q.model.graph.initializer.filter((t) => t.name?.endsWith('_zero_point') && t.dims.length === 0);
    expect(zps.length).toBeGreaterThan(5);
    for (const z of zps) expect(z.dataType).toBe(DT.INT8);
    expect(relErr(await runModel(fp32, seededInput(3072, 5), [1, 3, 32, 32]), await runModel(q.model, seededInput(3072, 5), [1, 3, 32, 32]))).toBeLessThan(0.05);
  });

  it('refuses an opset-11 model whose ops changed signature before 13', () => {
    const m = model({
      nodes: [node('Squeeze', ['x'], ['y'], { attrs: [attr.ints('axes', [0])] })],
      inputs: [valueInfo('x', DT.FLOAT, [1, 3])],
      outputs: [valueInfo('y', DT.FLOAT, [3])],
      opset: 11,
    });
    expect(() => quantizeQdq(m, new Map())).toThrow(/opset 13/);
  });
});

describe('FP16', () => {
  it('converts weights and activations, keeps Resize scales and I/O in float32, and runs on ORT CPU', async () => {
    const base = tinyConvNet();
    // Append a Resize whose scales come from a Constant, and a Range-fed shape path, to exercise the keep rules.
    base.graph.node.push(
      node('Constant', [], ['scales'], { attrs: [attr.tensor('value', makeTensor('scales', DT.FLOAT, [4], [1, 1, 2, 2]))] }),
      node('Resize', ['head.y', '', 'scales'], ['up'], { name: 'up', attrs: [attr.string('mode', 'nearest')] }),
    );
    base.graph.output = [valueInfo('up', DT.FLOAT, [1, 6, 16, 16])];
    const r = convertFp16(base);
    const g = r.model.graph;
    expect(g.input[0]?.type?.tensorType?.elemType).toBe(DT.FLOAT);
    expect(g.output[0]?.type?.tensorType?.elemType).toBe(DT.FLOAT);
    expect(g.initializer.filter((t) => t.dataType === DT.FLOAT16).length).toBe(8);
    expect(g.initializer.some((t) => t.dataType === DT.FLOAT)).toBe(false);
    // The Constant feeding Resize scales is kept float32.
    expect(r.keptNodes).toHaveLength(1);
    const constant = g.node.find((n) => n.opType === 'Constant');
    expect(constant?.attribute[0]?.t?.dataType).toBe(DT.FLOAT);
    expect(g.node.filter((n) => n.opType === 'Cast')).toHaveLength(2);
    const p = join(tmp, 'fp16.onnx');
    writeOnnx(r.model, p);
    const x = seededInput(3 * 32 * 32, 3);
    const ref = await runModel(base, x, [1, 3, 32, 32]);
    const half = await runModel(readOnnx(p).model, x, [1, 3, 32, 32]);
    // Documented tolerance: 1e-2 relative L2 for a float16 conv stack.
    expect(relErr(ref, half)).toBeLessThan(1e-2);
  });
});

describe('quantizeOnnx end to end on a synthetic dataset', () => {
  let data = '';
  let fp32Path = '';
  let manifest: ModelManifest;
  beforeAll(async () => {
    data = (await synthDetection({ out: join(tmp, 'synth'), images: 12, imgsz: 64, classes: 2, seed: 3 })).dataYaml;
    const m = tinyConvNet({ size: 64 });
    // Reshape the head to a YOLOv8-style [1, 4+nc, N] output so the detection evaluation path runs.
    m.graph.initializer.push(makeTensor('hshape', DT.INT64, [3], [1, 6, 256]));
    m.graph.node.push(node('Reshape', ['head.y', 'hshape'], ['output0'], { name: 'to_yolov8' }));
    m.graph.output = [valueInfo('output0', DT.FLOAT, [1, 6, 256])];
    fp32Path = join(tmp, 'det.onnx');
    writeOnnx(m, fp32Path);
    manifest = ModelManifestSchema.parse({
      name: 'det',
      task: 'detect',
      input: { name: 'images', shape: [1, 3, 64, 64], layout: 'NCHW', dtype: 'float32' },
      preprocess: { resize: 'letterbox', size: [64, 64], scale: 1 / 255, channelOrder: 'RGB' },
      output: { name: 'output0', format: 'yolov8', shape: [1, 6, 256] },
      classNames: ['a', 'b'],
      opset: 13,
    });
  });

  it('calibrates on dataset images, evaluates both models and runs the guard when the bound is not met', async () => {
    const out = join(tmp, 'det.int8.onnx');
    // An unreachable bound makes the guard move layers back to FP32 round after round.
    const r = await quantizeOnnx(fp32Path, out, { data, manifest, calib: 4, method: 'percentile', maxDrop: -1 });
    expect(r.precision).toBe('int8');
    expect(r.calibrationImages).toBe(4);
    expect(r.metric).toBe('mAP50');
    expect(r.fp32.map50).toBeGreaterThanOrEqual(0);
    expect(r.guard.length).toBeGreaterThan(2);
    expect(r.guard[1]?.excluded.length).toBeGreaterThanOrEqual(1);
    expect((r.guard.at(-1)?.excluded.length ?? 0) > (r.guard[1]?.excluded.length ?? 0)).toBe(true);
    expect(r.withinBound).toBe(false);
    const sidecar = ModelManifestSchema.parse(JSON.parse(readFileSync(join(tmp, 'det.int8.json'), 'utf8')));
    expect(sidecar.precision).toBe('int8');
    const s = await ort.InferenceSession.create(out);
    expect(s.outputNames).toEqual(['output0']);
  });

  it('parity: a model against itself agrees exactly; against its INT8 version closely', async () => {
    const { images } = datasetImages(data, 'detect', 'evaluate');
    const paths = images.map((i) => i.image);
    const same = await compareOnnx(fp32Path, fp32Path, manifest, paths, { confThreshold: 0.01 });
    expect(same.outputs[0]).toMatchObject({ name: 'output0', maxAbs: 0, meanAbs: 0 });
    expect(same.outputs[0]?.cosine).toBeCloseTo(1, 6);
    expect(same.detections?.matched).toBe(same.detections?.detectionsA);
    expect(same.detections?.classAgreement).toBe(same.detections?.detectionsA ? 1 : 0);
    const src = readOnnx(fp32Path).model;
    const ranges = await calibrate(src, quantizableTensors(src), await calibrationSamples(images.slice(0, 2), manifest));
    writeOnnx(quantizeQdq(src, ranges).model, join(tmp, 'det.qdq.onnx'));
    const q = await compareOnnx(fp32Path, join(tmp, 'det.qdq.onnx'), manifest, paths, { confThreshold: 0.01 });
    expect(q.images).toBe(paths.length);
    expect(q.outputs[0]?.maxAbs).toBeGreaterThan(0);
    expect(q.outputs[0]?.cosine).toBeGreaterThan(0.95);
  });

  it('--fp16 converts instead of calibrating and reports the accuracy change (into a folder it creates)', async () => {
    const out = join(tmp, 'not', 'yet', 'det.fp16.onnx');
    const r = await quantizeOnnx(fp32Path, out, { data, manifest, fp16: true });
    expect(r.precision).toBe('fp16');
    expect(r.calibrationImages).toBe(0);
    expect(Math.abs(r.drop)).toBeLessThan(0.05);
    expect(inspectOnnx(out).precision).toBe('fp16');
    expect(ModelManifestSchema.parse(JSON.parse(readFileSync(join(tmp, 'not', 'yet', 'det.fp16.json'), 'utf8'))).precision).toBe('fp16');
  });

  it('reads the model.json beside the model when no manifest is passed (what `cvopt export` writes)', async () => {
    const dir = join(tmp, 'exported');
    mkdirSync(dir, { recursive: true });
    copyFileSync(fp32Path, join(dir, 'model.onnx'));
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ ...manifest, classNames: ['left', 'right'] }));
    const out = join(dir, 'model.fp16.onnx');
    await quantizeOnnx(join(dir, 'model.onnx'), out, { data, fp16: true });
    const sidecar = ModelManifestSchema.parse(JSON.parse(readFileSync(join(dir, 'model.fp16.json'), 'utf8')));
    expect(sidecar.classNames).toEqual(['left', 'right']);
  });

  it('refuses a model that is already quantized', async () => {
    const out = join(tmp, 'det.int8.onnx');
    await expect(quantizeOnnx(out, join(tmp, 'again.onnx'), { data, manifest: { ...manifest, precision: 'int8' } })).rejects.toMatchObject({ code: 'MODEL_INVALID' });
  });
});
