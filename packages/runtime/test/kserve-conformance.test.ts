import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureModels, post, startApp, type Json, type Running } from './helpers.js';

/**
 * Conformance with the Open Inference Protocol REST API (KServe v2) and its binary tensor data extension (Triton),
 * written from the specifications: every required endpoint, the error shape, JSON and binary inference with outputs
 * compared to a bare onnxruntime-node session on the same tensor, and wrong inputs answered 400 with a string error.
 */
describe('Open Inference Protocol conformance (real HTTP, real ONNX Runtime)', () => {
  let s: Running;
  let session: ort.InferenceSession;
  const name = 'tiny-det-dynamic';
  const dims = [2, 3, 64, 64];
  const n = dims.reduce((a, b) => a * b, 1);
  const input = Float32Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) / 1000);
  let expected: Float32Array;
  let expectedDims: number[];
  beforeAll(async () => {
    s = await startApp(fixtureModels().detDynamic);
    session = await ort.InferenceSession.create(join(fixtureModels().detDynamic, 'model.onnx'));
    const out = await session.run({ images: new ort.Tensor('float32', input, dims) });
    const t = out[session.outputNames[0]!]!;
    expected = t.data as Float32Array;
    expectedDims = [...t.dims];
  });
  afterAll(async () => {
    await s?.close();
    await session?.release();
  });

  const v2 = (path: string) => `${s.url}/v2${path}`;
  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
    return m;
  };

  it('serves server metadata, liveness and readiness', async () => {
    const meta = (await (await fetch(v2(''))).json()) as Json;
    expect(meta).toMatchObject({ name: 'cvopt', version: expect.any(String) });
    expect(meta.extensions).toEqual(expect.arrayContaining(['binary_tensor_data', 'model_repository']));
    const live = await fetch(v2('/health/live'));
    expect([live.status, await live.json()]).toEqual([200, { live: true }]);
    expect((await fetch(v2('/health/ready'))).status).toBe(200);
  });

  it('serves model metadata and readiness on unversioned and versioned paths, 404 with a string error otherwise', async () => {
    for (const base of [`/models/${name}`, `/models/${name}/versions/1`]) {
      const meta = (await (await fetch(v2(base))).json()) as Json;
      expect(meta).toMatchObject({ name, versions: ['1'], platform: 'onnxruntime_onnx' });
      expect(meta.inputs).toEqual([{ name: 'images', datatype: 'FP32', shape: [-1, 3, 64, 64] }]);
      expect(meta.outputs[0]).toMatchObject({ name: 'output0', datatype: 'FP32' });
      const ready = await fetch(v2(`${base}/ready`));
      expect(ready.status).toBe(200);
    }
    for (const path of [`/models/${name}/versions/7`, '/models/other', `/models/${name}/versions/7/ready`, '/nothing-here']) {
      const r = await fetch(v2(path));
      expect(r.status, path).toBe(404);
      expect(typeof ((await r.json()) as Json).error, path).toBe('string');
    }
  });

  it('infers from JSON (nested data, id, parameters passed through) equal to a bare ONNX Runtime run', async () => {
    // Nested row-major arrays are as valid as flat ones.
    const nested = Array.from({ length: 2 }, (_, b) => Array.from({ length: 3 }, (_, c) => Array.from({ length: 64 }, (_, y) => Array.from(input.subarray(((b * 3 + c) * 64 + y) * 64, ((b * 3 + c) * 64 + y + 1) * 64)))));
    for (const path of [`/models/${name}/infer`, `/models/${name}/versions/1/infer`]) {
      const r = await post(v2(path), JSON.stringify({ id: 'req-1', parameters: { trace: 'abc' }, inputs: [{ name: 'images', shape: dims, datatype: 'FP32', data: nested }] }), { 'content-type': 'application/json' });
      expect(r.status, JSON.stringify(r.json).slice(0, 200)).toBe(200);
      expect(r.json).toMatchObject({ model_name: name, model_version: '1', id: 'req-1', parameters: { trace: 'abc' } });
      const out = r.json.outputs[0];
      expect(out).toMatchObject({ name: 'output0', datatype: 'FP32', shape: expectedDims });
      expect(maxDiff(out.data, expected)).toBeLessThan(1e-5);
    }
  });

  it('infers with the binary tensor data extension, binary in and binary out', async () => {
    for (const outputs of [{ outputs: [{ name: 'output0', parameters: { binary_data: true } }] }, { parameters: { binary_data_output: true } }]) {
      const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'images', shape: dims, datatype: 'FP32', parameters: { binary_data_size: n * 4 } }], ...outputs }));
      const r = await fetch(v2(`/models/${name}/infer`), {
        method: 'POST',
        body: Buffer.concat([head, Buffer.from(input.buffer)]),
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) },
      });
      expect(r.status).toBe(200);
      const body = Buffer.from(await r.arrayBuffer());
      const headLen = Number(r.headers.get('inference-header-content-length'));
      expect(headLen).toBeGreaterThan(0);
      const json = JSON.parse(body.subarray(0, headLen).toString()) as Json;
      const out = json.outputs[0];
      expect(out).toMatchObject({ name: 'output0', datatype: 'FP32', shape: expectedDims, parameters: { binary_data_size: expected.length * 4 } });
      expect(out.data).toBeUndefined();
      const bytes = body.subarray(headLen);
      expect(bytes.length).toBe(expected.length * 4);
      const got = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
      expect(maxDiff(got, expected)).toBeLessThan(1e-5);
    }
    // Binary in, JSON out.
    const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'images', shape: dims, datatype: 'FP32', parameters: { binary_data_size: n * 4 } }] }));
    const r = await fetch(v2(`/models/${name}/infer`), { method: 'POST', body: Buffer.concat([head, Buffer.from(input.buffer)]), headers: { 'inference-header-content-length': String(head.length) } });
    expect(r.status).toBe(200);
    expect(r.headers.get('inference-header-content-length')).toBeNull();
    expect(maxDiff(((await r.json()) as Json).outputs[0].data, expected)).toBeLessThan(1e-5);
  });

  it('answers wrong names, datatypes, shapes and sizes with 400 and a string error', async () => {
    const req = (over: Json) => JSON.stringify({ inputs: [{ name: 'images', shape: [1, 3, 64, 64], datatype: 'FP32', data: new Array(3 * 64 * 64).fill(0.1), ...over }] });
    const cases: [string, string, Record<string, string>?][] = [
      ['wrong input name', req({ name: 'pixels' })],
      ['UINT8 for an FP32 input', req({ datatype: 'UINT8', data: new Array(3 * 64 * 64).fill(1) })],
      ['INT64 for an FP32 input', req({ datatype: 'INT64', data: new Array(3 * 64 * 64).fill(1) })],
      ['unknown datatype', req({ datatype: 'FLOAT' })],
      ['wrong sample shape', req({ shape: [1, 3, 32, 32], data: new Array(3 * 32 * 32).fill(0) })],
      ['data shorter than shape', req({ data: [1, 2, 3] })],
      ['strings in data', req({ data: new Array(3 * 64 * 64).fill('x') })],
      ['unknown output', JSON.stringify({ ...JSON.parse(req({})), outputs: [{ name: 'nope' }] })],
      ['two inputs', JSON.stringify({ inputs: [JSON.parse(req({})).inputs[0], JSON.parse(req({})).inputs[0]] })],
      ['no inputs', JSON.stringify({ inputs: [] })],
    ];
    const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'images', shape: [1, 3, 64, 64], datatype: 'FP32', parameters: { binary_data_size: 100 } }] }));
    const binaryCases: [string, Buffer, Record<string, string>][] = [
      ['binary size not matching the shape', Buffer.concat([head, Buffer.alloc(100)]), { 'inference-header-content-length': String(head.length) }],
      ['header length past the body', Buffer.concat([head, Buffer.alloc(100)]), { 'inference-header-content-length': String(head.length + 1000) }],
    ];
    for (const [what, body] of cases) {
      const r = await post(v2(`/models/${name}/infer`), body, { 'content-type': 'application/json' });
      expect(r.status, what).toBe(400);
      expect(typeof r.json.error, what).toBe('string');
      expect(r.json.error.length, what).toBeGreaterThan(10);
    }
    for (const [what, body, headers] of binaryCases) {
      const r = await post(v2(`/models/${name}/infer`), body, { 'content-type': 'application/octet-stream', ...headers });
      expect(r.status, what).toBe(400);
      expect(typeof r.json.error, what).toBe('string');
    }
  });

  it('lists the model in the repository index', async () => {
    const r = await fetch(v2('/repository/index'), { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual([{ name, version: '1', state: 'READY', reason: '' }]);
  });
});
