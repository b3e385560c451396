import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bombPng, fixtureModels, jpeg, png, post, startApp, type Running } from './helpers.js';

describe('POST /v1/predict over real HTTP with a real ONNX model', () => {
  let det: Running;
  let cls: Running;
  beforeAll(async () => {
    const m = fixtureModels();
    det = await startApp(m.detDynamic, { maxImagePixels: 1_000_000, bodyLimitBytes: 256 * 1024 });
    cls = await startApp(m.clsDynamic);
  });
  afterAll(async () => {
    await det?.close();
    await cls?.close();
  });

  it('answers a raw JPEG with detections in original pixels and class names', async () => {
    const r = await post(`${det.url}/v1/predict`, await jpeg(96, 72), { 'content-type': 'image/jpeg' });
    expect(r.status).toBe(200);
    expect(r.json.task).toBe('detect');
    expect(r.json.image).toEqual({ width: 96, height: 72 });
    expect(r.json.detections.length).toBeGreaterThan(0);
    for (const d of r.json.detections) {
      expect(['cat', 'dog', 'bird']).toContain(d.className);
      expect(d.box[0]).toBeGreaterThanOrEqual(0);
      expect(d.box[2]).toBeLessThanOrEqual(96);
      expect(d.box[3]).toBeLessThanOrEqual(72);
      expect(d.score).toBeGreaterThanOrEqual(0.25);
    }
  });

  it('gives the same answer for raw, multipart and base64 JSON bodies', async () => {
    const img = await png(80, 60);
    const raw = await post(`${det.url}/v1/predict`, img, { 'content-type': 'image/png' });
    const form = new FormData();
    form.append('image', new Blob([img], { type: 'image/png' }), 'x.png');
    const mp = await fetch(`${det.url}/v1/predict`, { method: 'POST', body: form });
    const json = await post(`${det.url}/v1/predict`, JSON.stringify({ image: img.toString('base64') }), { 'content-type': 'application/json' });
    expect(raw.status).toBe(200);
    expect(mp.status).toBe(200);
    expect(json.status).toBe(200);
    const strip = (x: { detections: unknown }) => x.detections;
    expect(strip((await mp.json()) as { detections: unknown })).toEqual(strip(raw.json));
    expect(strip(json.json)).toEqual(strip(raw.json));
  });

  it('answers a classifier with top-k class names', async () => {
    const r = await post(`${cls.url}/v1/predict`, await jpeg(40, 40), { 'content-type': 'image/jpeg' });
    expect(r.status).toBe(200);
    expect(r.json.task).toBe('classify');
    expect(r.json.top).toHaveLength(3);
    expect(r.json.top[0].score).toBeGreaterThanOrEqual(r.json.top[1].score);
  });

  it('refuses bad images with 4xx and a reason, then serves the next good one', async () => {
    const url = `${det.url}/v1/predict`;
    const corrupt = await post(url, Buffer.from('\xff\xd8\xff\xe0 definitely not a jpeg body', 'latin1'), { 'content-type': 'image/jpeg' });
    expect(corrupt.status).toBe(400);
    expect(corrupt.json.error.code).toBe('IMAGE_INVALID');
    expect(corrupt.json.error.message.length).toBeGreaterThan(10);

    const wrongType = await post(url, 'hello', { 'content-type': 'text/plain' });
    expect(wrongType.status).toBe(415);
    expect(wrongType.json.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');

    const videoHere = await post(url, Buffer.alloc(10), { 'content-type': 'video/mp4' });
    expect(videoHere.status).toBe(415);

    const tooLarge = await post(url, Buffer.alloc(300 * 1024, 1), { 'content-type': 'image/png' });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.json.error.code).toBe('PAYLOAD_TOO_LARGE');

    const bomb = await post(url, bombPng(50_000, 50_000), { 'content-type': 'image/png' });
    expect(bomb.status).toBe(413);
    expect(bomb.json.error.code).toBe('IMAGE_TOO_LARGE');

    const badJson = await post(url, JSON.stringify({ picture: 'x' }), { 'content-type': 'application/json' });
    expect(badJson.status).toBe(400);
    expect(badJson.json.error.where.field).toBe('body.image');

    const badDeadline = await post(`${url}?deadline_ms=-5`, await jpeg(), { 'content-type': 'image/jpeg' });
    expect(badDeadline.status).toBe(400);

    const good = await post(url, await jpeg(), { 'content-type': 'image/jpeg' });
    expect(good.status).toBe(200);
  });

  it('serves health, readiness, metrics, model info and a complete OpenAPI document', async () => {
    expect((await fetch(`${det.url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${det.url}/readyz`)).json()).toEqual({ ready: true, state: 'ready' });
    const model = (await (await fetch(`${det.url}/v1/model`)).json()) as { manifest: { name: string }; engine: { dynamicBatch: boolean }; scheduling: { maxBatch: number } };
    expect(model.manifest.name).toBe('tiny-det-dynamic');
    expect(model.engine.dynamicBatch).toBe(true);
    expect(model.scheduling.maxBatch).toBe(8);
    const metrics = await (await fetch(`${det.url}/metrics`)).text();
    expect(metrics).toMatch(/cvopt_http_requests_total\{route="\/v1\/predict",method="POST",status="200"\} \d+/);
    expect(metrics).toMatch(/cvopt_limit\{name="queue_max"\} 128/);
    expect(metrics).toContain('cvopt_event_loop_lag_seconds');
    expect(metrics).toContain('cvopt_batch_size_bucket');
    const doc = (await (await fetch(`${det.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe('3.1.0');
    for (const p of ['/v1/predict', '/v1/predict/video', '/v1/model', '/healthz', '/readyz', '/metrics', '/v2/models/{name}/infer', '/v1/admin/reload']) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
  });
});
