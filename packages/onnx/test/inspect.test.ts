import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { CvoptError, testDataDir } from '@cvopt/core';
import { DT, encodeOnnx, inferManifest, inferManifestWithNotes, inspectOnnx, makeTensor, model, node, readOnnx, valueInfo, verifyManifest, writeOnnx } from '../src/index.js';
import { seededInput, tinyConvNet } from './fixtures.js';

const dataDir = testDataDir();
const tmp = mkdtempSync(join(tmpdir(), 'cvopt-onnx-'));

function catchErr(fn: () => unknown): CvoptError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CvoptError) return e;
    throw e;
  }
  throw new Error('expected a CvoptError');
}

describe('readOnnx / inspectOnnx on built models', () => {
  it('reports shapes, dynamic dims, operators, initializers and metadata', () => {
    const m = tinyConvNet({ batch: 'N' });
    m.metadataProps.push({ key: 'names', value: "{0: 'a', 1: 'b'}" });
    const p = join(tmp, 'tiny.onnx');
    writeOnnx(m, p);
    const info = inspectOnnx(p);
    expect(info.irVersion).toBe(8);
    expect(info.opsets).toEqual([{ domain: 'ai.onnx', version: 13 }]);
    expect(info.inputs).toEqual([{ name: 'images', dtype: 'float32', shape: ['N', 3, 32, 32], dynamic: true }]);
    expect(info.outputs[0]?.shape).toEqual(['N', 6, 8, 8]);
    expect(info.operators.find((o) => o.opType === 'Conv')?.count).toBe(4);
    expect(info.initializers.byType.float32?.count).toBe(8);
    expect(info.metadata.names).toBe("{0: 'a', 1: 'b'}");
    expect(info.precision).toBe('fp32');
  });

  it('loads external data from a file beside the model and keeps unknown fields on re-encoding', async () => {
    const m = tinyConvNet();
    const w = m.graph.initializer[0];
    if (!w?.rawData) throw new Error('fixture has raw data');
    writeFileSync(join(tmp, 'weights.bin'), Buffer.concat([Buffer.alloc(16), Buffer.from(w.rawData)]));
    const inline = w.rawData;
    delete w.rawData;
    w.dataLocation = 1;
    w.externalData = [
      { key: 'location', value: 'weights.bin' },
      { key: 'offset', value: '16' },
      { key: 'length', value: String(inline.length) },
    ];
    // An unknown field (number 99, varint 1) must survive a read-write cycle.
    m.graph.unknown = [Uint8Array.from([0x98, 0x06, 0x01])];
    const p = join(tmp, 'ext.onnx');
    writeOnnx(m, p);
    const info = inspectOnnx(p);
    expect(info.externalData).toEqual([{ location: 'weights.bin', tensors: 1, bytes: inline.length }]);
    const loaded = readOnnx(p);
    expect(Buffer.from(loaded.model.graph.initializer[0]?.rawData ?? []).equals(Buffer.from(inline))).toBe(true);
    expect(Buffer.from(encodeOnnx(loaded.model)).includes(Buffer.from([0x98, 0x06, 0x01]))).toBe(true);
    // The self-contained copy runs in ONNX Runtime and gives the same result as the original.
    const inlined = join(tmp, 'inlined.onnx');
    writeOnnx(loaded.model, inlined);
    const x = new ort.Tensor('float32', seededInput(3 * 32 * 32), [1, 3, 32, 32]);
    const a = await (await ort.InferenceSession.create(p)).run({ images: x });
    const b = await (await ort.InferenceSession.create(inlined)).run({ images: x });
    expect(Array.from(b['head.y']?.data as Float32Array)).toEqual(Array.from(a['head.y']?.data as Float32Array));
  });

  it('a missing external data file is MODEL_INVALID naming it', () => {
    const m = tinyConvNet();
    const w = m.graph.initializer[0];
    if (!w) throw new Error('fixture');
    delete w.rawData;
    w.dataLocation = 1;
    w.externalData = [{ key: 'location', value: 'gone.bin' }];
    const p = join(tmp, 'ext-missing.onnx');
    writeOnnx(m, p);
    const e = catchErr(() => readOnnx(p));
    expect(e.code).toBe('MODEL_INVALID');
    expect(e.message).toContain('gone.bin');
  });
});

describe('corrupt files', () => {
  const good = encodeOnnx(tinyConvNet());

  it('a truncated file is MODEL_INVALID with the byte offset and field path', () => {
    const p = join(tmp, 'truncated.onnx');
    writeFileSync(p, good.subarray(0, Math.floor(good.length * 0.6)));
    const e = catchErr(() => readOnnx(p));
    expect(e.code).toBe('MODEL_INVALID');
    expect(e.message).toMatch(/at byte \d+ \(in ModelProto, field 7\)/);
    expect((e.details as { offset: number }).offset).toBeGreaterThan(0);
    expect(e.where?.file).toBe(p);
  });

  it('garbage, text and empty files are MODEL_INVALID, never a crash', () => {
    const cases: [string, Uint8Array][] = [
      ['garbage.onnx', Uint8Array.from({ length: 200 }, (_, i) => (i * 97 + 13) & 0xff)],
      ['text.onnx', new TextEncoder().encode('this is not a model\n')],
      ['empty.onnx', new Uint8Array(0)],
      ['flipped.onnx', Uint8Array.from(good, (b, i) => (i === 40 ? b ^ 0xff : b))],
    ];
    for (const [name, bytes] of cases) {
      const p = join(tmp, name);
      writeFileSync(p, bytes);
      let err: unknown;
      try {
        readOnnx(p);
      } catch (e) {
        err = e;
      }
      // A flipped byte can still decode to a structurally valid protobuf; when it does not, it must be ours.
      if (name !== 'flipped.onnx' || err) {
        expect(err, name).toBeInstanceOf(CvoptError);
        expect((err as CvoptError).code, name).toBe('MODEL_INVALID');
      }
    }
  });

  it('a missing file is NOT_FOUND', () => {
    expect(catchErr(() => readOnnx(join(tmp, 'nope.onnx'))).code).toBe('NOT_FOUND');
  });
});

describe('inferManifest on built models', () => {
  it('names every field it cannot infer with the flag that sets it', () => {
    // A detector-like output with 7 classes, no metadata: task and format can be read, class names cannot.
    const m = model({
      nodes: [node('Identity', ['x'], ['y'])],
      inputs: [valueInfo('x', DT.FLOAT, [1, 3, 'h', 'w'])],
      outputs: [valueInfo('y', DT.FLOAT, [1, 11, 'n'])],
    });
    const p = join(tmp, 'unknown.onnx');
    writeOnnx(m, p);
    const e = catchErr(() => inferManifest(p));
    expect(e.code).toBe('MANIFEST_INVALID');
    expect(e.message).toContain('format');
    expect(e.message).toContain('size');
    expect(e.message).toContain('classNames');
    expect(e.hint).toContain('--imgsz');
    expect(e.hint).toContain('--class-names');
    // With the answers, it succeeds.
    const ok = inferManifest(p, { size: [64, 64], format: 'yolov8', task: 'detect', classNames: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] });
    expect(ok.output.format).toBe('yolov8');
    expect(ok.preprocess.size).toEqual([64, 64]);
  });

  it('reads Ultralytics metadata (names, imgsz, stride) for a dynamic-size yolov8 output', () => {
    const m = model({
      nodes: [node('Identity', ['images'], ['output0'])],
      inputs: [valueInfo('images', DT.FLOAT, [1, 3, 'height', 'width'])],
      outputs: [valueInfo('output0', DT.FLOAT, [1, 6, 'anchors'])],
      metadata: { names: "{0: 'cat', 1: \"dog's\"}", imgsz: '[320, 256]', stride: '32', task: 'detect' },
    });
    const p = join(tmp, 'ultra.onnx');
    writeOnnx(m, p);
    const r = inferManifestWithNotes(p, { format: 'yolov8' });
    expect(r.manifest.classNames).toEqual(['cat', "dog's"]);
    expect(r.manifest.preprocess.size).toEqual([320, 256]);
    expect(r.notes.join(' ')).toContain('imgsz');
  });

  it('rejects a class-name list that does not match the output', () => {
    const p = join(tmp, 'tiny-cls.onnx');
    writeOnnx(
      model({
        nodes: [node('Flatten', ['x'], ['logits'])],
        inputs: [valueInfo('x', DT.FLOAT, [1, 3, 1, 1])],
        outputs: [valueInfo('logits', DT.FLOAT, [1, 3])],
        initializers: [makeTensor('unused', DT.FLOAT, [1], [0])],
      }),
      p,
    );
    expect(inferManifest(p, { classNames: ['r', 'g', 'b'] }).task).toBe('classify');
    const e = catchErr(() => inferManifest(p, { classNames: ['only-one'] }));
    expect(e.code).toBe('MANIFEST_INVALID');
    expect(e.where?.field).toBe('classNames');
  });
});

describe.skipIf(!dataDir)('real models in shared data', () => {
  const models = join(dataDir ?? '', 'models');

  it('inspects YOLOX-nano as an FP32 opset-11 detector', () => {
    const info = inspectOnnx(join(models, 'yolox_nano.onnx'));
    expect(info.precision).toBe('fp32');
    expect(info.opsets).toEqual([{ domain: 'ai.onnx', version: 11 }]);
    expect(info.inputs[0]).toMatchObject({ name: 'images', shape: [1, 3, 416, 416], dynamic: false });
    expect(info.outputs[0]?.shape).toEqual([1, 3549, 85]);
    expect(info.nodes).toBe(369);
  });

  it('infers the known preprocessing of the three real models', () => {
    const yolox = inferManifest(join(models, 'yolox_nano.onnx'));
    expect(yolox.output).toMatchObject({ format: 'yolox', strides: [8, 16, 32] });
    expect(yolox.preprocess).toMatchObject({ channelOrder: 'BGR', scale: 1, padValue: 114, padPosition: 'top-left', size: [416, 416] });
    expect(yolox.classNames).toHaveLength(80);

    const v8 = inferManifest(join(models, 'yolov8n_int8.onnx'));
    expect(v8.output).toMatchObject({ name: 'output0', format: 'yolov8', scoresActivated: true });
    expect(v8.preprocess).toMatchObject({ channelOrder: 'RGB', padPosition: 'center', padValue: 114, size: [640, 640] });
    expect(v8.preprocess.scale).toBeCloseTo(1 / 255);
    expect(v8.classNames[0]).toBe('person');
    expect(v8.precision).toBe('int8');
    expect(v8.opset).toBe(20);

    const mb = inferManifest(join(models, 'mobilenetv2-12-int8.onnx'));
    expect(mb).toMatchObject({ task: 'classify', precision: 'int8' });
    expect(mb.output.format).toBe('logits');
    expect(mb.preprocess.mean).toEqual([0.485, 0.456, 0.406]);
    expect(mb.preprocess.size).toEqual([224, 224]);
    expect(verifyManifest(join(models, 'mobilenetv2-12-int8.onnx'), mb)).toEqual([]);
    expect(verifyManifest(join(models, 'mobilenetv2-12-int8.onnx'), { ...mb, opset: 13 })).toEqual([{ field: 'opset', manifest: 13, model: 12 }]);
  });

  it('re-encodes a real model so that ONNX Runtime gives the same output', async () => {
    const src = join(models, 'yolox_nano.onnx');
    const out = join(tmp, 'yolox-roundtrip.onnx');
    writeOnnx(readOnnx(src).model, out);
    const x = new ort.Tensor('float32', seededInput(3 * 416 * 416).map((v) => v * 255), [1, 3, 416, 416]);
    const a = (await (await ort.InferenceSession.create(src)).run({ images: x })).output?.data as Float32Array;
    const b = (await (await ort.InferenceSession.create(out)).run({ images: x })).output?.data as Float32Array;
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    expect(readFileSync(out).length).toBeGreaterThan(3_000_000);
  });
});
