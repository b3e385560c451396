import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';
import { attr, checkOnnx, DT, makeTensor, model, node, valueInfo, writeOnnx } from '../src/index.js';
import { tinyConvNet } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-check-'));
const dataDir = testDataDir();

/** A model with three planted problems: an op from an unknown domain, an op TensorRT cannot run, unbounded dynamic input dims. */
function planted(): string {
  const m = model({
    nodes: [
      node('Relu', ['x'], ['r'], { name: 'relu0' }),
      node('FancyOp', ['r'], ['f'], { name: 'fancy_custom', domain: 'com.acme' }),
      node('BitShift', ['xi', 'sh'], ['bs'], { name: 'shift_bits', attrs: [attr.string('direction', 'LEFT')] }),
      node('Cast', ['bs'], ['bsf'], { name: 'cast_back', attrs: [attr.int('to', DT.FLOAT)] }),
      node('Add', ['f', 'bsf'], ['y'], { name: 'add_out' }),
    ],
    inputs: [valueInfo('x', DT.FLOAT, ['batch', 3, 'h', 'w']), valueInfo('xi', DT.UINT8, ['batch', 3, 'h', 'w'])],
    outputs: [valueInfo('y', DT.FLOAT, ['batch', 3, 'h', 'w'])],
    initializers: [makeTensor('sh', DT.UINT8, [1], [1])],
    extraOpsets: [{ domain: 'com.acme', version: 1 }],
  });
  const p = join(tmp, 'planted.onnx');
  writeOnnx(m, p);
  return p;
}

describe('checkOnnx', () => {
  it('lists every planted problem for every target in one report', async () => {
    const r = await checkOnnx(planted());
    expect(r.blocked).toBe(true);
    const byTarget = Object.fromEntries(r.targets.map((t) => [t.target, t]));
    const cpu = byTarget['ort-cpu'];
    expect(cpu?.blockers.find((b) => b.node === 'fancy_custom')).toMatchObject({ kind: 'domain', opType: 'FancyOp', domain: 'com.acme', opset: 1 });
    // The real ONNX Runtime session agrees that the model cannot load, and says why.
    expect(cpu?.blockers.find((b) => b.kind === 'session')?.message).toMatch(/FancyOp|com\.acme/);
    expect(cpu?.warnings.some((w) => w.kind === 'dynamic-shape' && w.tensor === 'x')).toBe(true);
    for (const trt of ['tensorrt-8.6', 'tensorrt-10']) {
      const t = byTarget[trt];
      expect(t?.blocked, trt).toBe(true);
      const nodes = t?.blockers.map((b) => b.node);
      expect(nodes).toContain('fancy_custom');
      expect(nodes).toContain('shift_bits');
      expect(t?.blockers.find((b) => b.node === 'shift_bits')).toMatchObject({ opType: 'BitShift', domain: 'ai.onnx', opset: 13 });
      expect(t?.warnings.filter((w) => w.kind === 'dynamic-shape').map((w) => w.tensor)).toEqual(['x', 'xi']);
      for (const b of t?.blockers ?? []) expect(b.fix.length).toBeGreaterThan(10);
    }
  });

  it('passes a clean model on every target, confirmed by a real ONNX Runtime session', async () => {
    const p = join(tmp, 'tiny.onnx');
    writeOnnx(tinyConvNet(), p);
    const r = await checkOnnx(p);
    expect(r.blocked).toBe(false);
    expect(r.targets.map((t) => t.target)).toEqual(['ort-cpu', 'ort-cuda', 'tensorrt-8.6', 'tensorrt-10']);
    expect(r.targets[0]?.basis.join(' ')).toContain('InferenceSession');
  });

  it('flags float64 weights and a too-new opset for TensorRT 8.6', async () => {
    const m = model({
      nodes: [node('Cast', ['x'], ['xd'], { attrs: [attr.int('to', DT.DOUBLE)] }), node('Add', ['xd', 'w'], ['y'], { name: 'add_double' })],
      inputs: [valueInfo('x', DT.FLOAT, [1, 3, 4, 4])],
      outputs: [valueInfo('y', DT.DOUBLE, [1, 3, 4, 4])],
      initializers: [makeTensor('w', DT.DOUBLE, [1], [0.5])],
      opset: 18,
    });
    const p = join(tmp, 'double.onnx');
    writeOnnx(m, p);
    const r = await checkOnnx(p, { targets: ['ort-cpu', 'tensorrt-8.6'] });
    expect(r.targets[0]?.blocked).toBe(false);
    const trt = r.targets[1];
    expect(trt?.blockers.map((b) => b.kind).sort()).toEqual(['dtype', 'dtype', 'opset']);
  });

  it('rejects an unknown target with the list of known ones', async () => {
    const p = join(tmp, 'tiny2.onnx');
    writeOnnx(tinyConvNet(), p);
    await expect(checkOnnx(p, { targets: ['openvino'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', hint: expect.stringContaining('tensorrt-10') });
  });
});

describe.skipIf(!dataDir)('checkOnnx on real models', () => {
  it('dynamic quantization (ConvInteger) blocks TensorRT but not ONNX Runtime CPU', async () => {
    const r = await checkOnnx(join(dataDir ?? '', 'models/yolov8n_int8.onnx'), { targets: ['ort-cpu', 'tensorrt-10'] });
    expect(r.targets[0]?.blocked).toBe(false);
    const trt = r.targets[1];
    expect(trt?.blockers.filter((b) => b.opType === 'ConvInteger')).toHaveLength(64);
    expect(trt?.blockers.filter((b) => b.opType === 'DynamicQuantizeLinear')).toHaveLength(59);
    expect(trt?.blockers.find((b) => b.opType === 'ConvInteger')?.fix).toContain('cvopt quantize');
  });

  it('the Microsoft-domain op in MobileNetV2-int8 blocks TensorRT only', async () => {
    const r = await checkOnnx(join(dataDir ?? '', 'models/mobilenetv2-12-int8.onnx'), { targets: ['ort-cpu', 'tensorrt-8.6'] });
    expect(r.targets[0]?.blocked).toBe(false);
    expect(r.targets[1]?.blockers.filter((b) => b.domain === 'com.microsoft').map((b) => b.opType)).toContain('QLinearAdd');
  });
});
