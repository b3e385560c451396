import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureModels, jpeg, post, startApp, type Json, type Running } from './helpers.js';

/**
 * Issue 16 (main-thread work): /v1/predict's base64 JSON and KServe's JSON outputs are decoded / encoded in the
 * offload worker above offloadMinBytes and inline below it; both paths must answer exactly alike.
 */
describe('JSON bodies and outputs, inline and in the offload worker (real HTTP, real engine)', () => {
  let inline: Running;
  let offloaded: Running;
  beforeAll(async () => {
    inline = await startApp(fixtureModels().detDynamic, { offloadMinBytes: 1 << 30 });
    offloaded = await startApp(fixtureModels().detDynamic, { offloadMinBytes: 0 });
  });
  afterAll(async () => {
    await inline?.close();
    await offloaded?.close();
  });

  const strip = (j: Json) => ({ ...j, timeMs: 0 });

  it('answers a base64 JSON image as the raw image, on both paths', async () => {
    const img = await jpeg(320, 240, 3);
    const raw = await post(`${inline.url}/v1/predict`, img, { 'content-type': 'image/jpeg' });
    expect(raw.status).toBe(200);
    for (const s of [inline, offloaded]) {
      for (const image of [img.toString('base64'), `data:image/jpeg;base64,${img.toString('base64')}`]) {
        const r = await post(`${s.url}/v1/predict`, JSON.stringify({ image }), { 'content-type': 'application/json' });
        expect(r.status).toBe(200);
        expect(strip(r.json)).toEqual(strip(raw.json));
      }
      for (const body of ['{"image": ', '{"__proto__": {"x": 1}, "image": "aGVsbG8="}', '[]', 'null', '{"image": "%%%"}', '{"image": 3}']) {
        const r = await post(`${s.url}/v1/predict`, body, { 'content-type': 'application/json' });
        expect(r.status, body).toBe(400);
        expect(r.json.error.code, body).toBe('INVALID_ARGUMENT');
      }
    }
  });

  it('writes KServe JSON outputs identically inline and in the worker, binary outputs too', async () => {
    const dims = [2, 3, 64, 64];
    const n = dims.reduce((a, b) => a * b, 1);
    const data = Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) / 1000);
    const body = (binary: boolean) => JSON.stringify({ id: 'r1', inputs: [{ name: 'images', shape: dims, datatype: 'FP32', data }], parameters: { binary_data_output: binary, trace: 'x' } });
    const a = await post(`${inline.url}/v2/models/tiny-det-dynamic/infer`, body(false), { 'content-type': 'application/json' });
    const b = await post(`${offloaded.url}/v2/models/tiny-det-dynamic/infer`, body(false), { 'content-type': 'application/json' });
    expect(a.status).toBe(200);
    expect(b.json).toEqual(a.json);
    expect(a.json).toMatchObject({ id: 'r1', parameters: { trace: 'x' }, outputs: [{ name: 'output0', datatype: 'FP32' }] });
    expect(a.json.outputs[0].data.length).toBe(a.json.outputs[0].shape.reduce((x: number, y: number) => x * y, 1));
    const bin = await fetch(`${offloaded.url}/v2/models/tiny-det-dynamic/infer`, { method: 'POST', body: body(true), headers: { 'content-type': 'application/json' } });
    expect(bin.status).toBe(200);
    const headerLength = Number(bin.headers.get('inference-header-content-length'));
    const bytes = Buffer.from(await bin.arrayBuffer());
    const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + headerLength, bytes.byteOffset + bytes.length));
    expect(Array.from(values)).toEqual(a.json.outputs[0].data.map((v: number) => Math.fround(v)));
  });
});
