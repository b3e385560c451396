import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preprocess } from '@cvopt/vision';
import { fixtureModels, jpeg, post, startApp, type Json, type Running } from './helpers.js';

const KEYS = { viewer: 'viewer-key-0123456789', engineer: 'engineer-key-0123456789', admin: 'admin-key-0123456789' };

describe('roles on every route (real HTTP)', () => {
  let s: Running;
  let img: Buffer;
  beforeAll(async () => {
    s = await startApp(fixtureModels().detStatic, {
      auth: { keys: Object.entries(KEYS).map(([role, key]) => ({ name: role, key, role: role as 'viewer' })) },
    });
    img = await jpeg();
  });
  afterAll(async () => s?.close());

  const tensor = () => ({ inputs: [{ name: 'images', shape: [1, 3, 64, 64], datatype: 'FP32', data: new Array(3 * 64 * 64).fill(0.5) }] });
  const routes: { name: string; call: (h: Record<string, string>) => Promise<Response>; allowed: string[] }[] = [
    { name: 'POST /v1/predict', call: (h) => fetch(`${s.url}/v1/predict`, { method: 'POST', body: img, headers: { ...h, 'content-type': 'image/jpeg' } }), allowed: ['viewer', 'engineer', 'admin'] },
    { name: 'POST /v2/models/{name}/infer', call: (h) => fetch(`${s.url}/v2/models/tiny-det-static/infer`, { method: 'POST', body: JSON.stringify(tensor()), headers: { ...h, 'content-type': 'application/json' } }), allowed: ['viewer', 'engineer', 'admin'] },
    { name: 'GET /v2/models/{name}/ready', call: (h) => fetch(`${s.url}/v2/models/tiny-det-static/ready`, { headers: h }), allowed: ['viewer', 'engineer', 'admin'] },
    { name: 'GET /v1/model', call: (h) => fetch(`${s.url}/v1/model`, { headers: h }), allowed: ['engineer', 'admin'] },
    { name: 'GET /v2/models/{name}', call: (h) => fetch(`${s.url}/v2/models/tiny-det-static`, { headers: h }), allowed: ['engineer', 'admin'] },
    { name: 'GET /metrics', call: (h) => fetch(`${s.url}/metrics`, { headers: h }), allowed: ['engineer', 'admin'] },
    { name: 'GET /v1/config', call: (h) => fetch(`${s.url}/v1/config`, { headers: h }), allowed: ['admin'] },
    { name: 'POST /v1/admin/reload', call: (h) => fetch(`${s.url}/v1/admin/reload`, { method: 'POST', headers: h }), allowed: ['admin'] },
  ];

  for (const r of routes) {
    it(`${r.name}: allowed for ${r.allowed.join(', ')}; 403 for other roles; 401 without or with a bad key`, async () => {
      for (const role of ['viewer', 'engineer', 'admin'] as const) {
        // Both header styles are accepted.
        const headers = role === 'engineer' ? { 'x-api-key': KEYS[role] } : { authorization: `Bearer ${KEYS[role]}` };
        const res = await r.call(headers);
        const text = await res.text();
        const body = (text.startsWith('{') ? JSON.parse(text) : text) as Json;
        if (r.allowed.includes(role)) expect(res.status, `${role}: ${JSON.stringify(body)}`).toBe(200);
        else {
          expect(res.status, role).toBe(403);
          expect(res.headers.get('x-cvopt-error-code')).toBe('FORBIDDEN');
          // The Open Inference Protocol's errors are strings; the product API's are catalogue objects.
          if (r.name.includes('/v2/')) expect(typeof body.error).toBe('string');
          else expect(body.error.code).toBe('FORBIDDEN');
        }
      }
      for (const headers of [{}, { authorization: 'Bearer not-a-real-key-at-all' }]) {
        const res = await r.call(headers);
        expect(res.status).toBe(401);
        expect(res.headers.get('x-cvopt-error-code')).toBe('UNAUTHENTICATED');
        expect(((await res.json()) as Json).error).toBeTruthy();
      }
    });
  }

  it('leaves the probes and the OpenAPI document public', async () => {
    for (const p of ['/healthz', '/readyz', '/openapi.json', '/v2/health/live', '/v2/health/ready']) expect((await fetch(`${s.url}${p}`)).status, p).toBe(200);
  });

  it('redacts keys in /v1/config', async () => {
    const c = (await (await fetch(`${s.url}/v1/config`, { headers: { 'x-api-key': KEYS.admin } })).json()) as Json;
    expect(JSON.stringify(c)).not.toContain(KEYS.viewer);
    expect(c.auth.keys).toHaveLength(3);
  });
});

describe('backpressure over real sockets', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startApp(fixtureModels().detStatic, { queueMax: 2, concurrency: 1, batchMax: 1, rateLimit: { perSecond: 0 } });
  });
  afterAll(async () => s?.close());

  it('refuses beyond the queue bound with 429 QUEUE_FULL and Retry-After; everything else succeeds', async () => {
    const img = await jpeg(320, 240);
    const res = await Promise.all(Array.from({ length: 40 }, () => post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' })));
    const by = (st: number) => res.filter((r) => r.status === st);
    expect(by(200).length).toBeGreaterThan(0);
    expect(by(429).length).toBeGreaterThan(0);
    expect(by(200).length + by(429).length).toBe(40);
    for (const r of by(429)) {
      expect(r.json.error.code).toBe('QUEUE_FULL');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/cvopt_rejections_total\{reason="QUEUE_FULL"\} \d+/);
  });

  it('refuses a deadline it cannot meet with 429 DEADLINE_EXCEEDED, header or query', async () => {
    const img = await jpeg();
    for (const r of [
      await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg', 'x-deadline-ms': '0.0001' }),
      await post(`${s.url}/v1/predict?deadline_ms=0.0001`, img, { 'content-type': 'image/jpeg' }),
    ]) {
      expect(r.status).toBe(429);
      expect(r.json.error.code).toBe('DEADLINE_EXCEEDED');
      expect(r.headers.get('retry-after')).not.toBeNull();
    }
    expect((await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg', 'x-deadline-ms': '5000' })).status).toBe(200);
  });
});

describe('rate limit per key', () => {
  it('answers 429 RATE_LIMITED with Retry-After past the burst', async () => {
    const s = await startApp(fixtureModels().detStatic, { rateLimit: { perSecond: 0.5, burst: 2 } });
    try {
      const img = await jpeg();
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push(await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' }));
      expect(codes.map((c) => c.status)).toEqual([200, 200, 429]);
      expect(codes[2]!.json.error.code).toBe('RATE_LIMITED');
      expect(Number(codes[2]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    } finally {
      await s.close();
    }
  });
});

describe('dynamic batching', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startApp(fixtureModels().detDynamic, { batchMax: 4, batchDelayMs: 30 });
  });
  afterAll(async () => s?.close());

  it('gives batched results equal to single results', async () => {
    const m = s.host.current;
    const images = await Promise.all([1, 2, 3, 4].map((seed) => jpeg(90 + seed * 7, 70, seed)));
    const tensors = await Promise.all(images.map(async (b) => (await preprocess(b, m.manifest.preprocess)).tensor));
    const singles = [];
    for (const t of tensors) singles.push(await m.engine.run(t, [1, ...m.sampleDims]));
    const batched = await Promise.all(tensors.map((t) => s.host.run(t, { deadlineMs: 10_000 })));
    batched.forEach((b, i) => {
      expect(b.dims).toEqual(singles[i]!.dims);
      const a = singles[i]!.data;
      let maxDiff = 0;
      for (let k = 0; k < a.length; k++) maxDiff = Math.max(maxDiff, Math.abs((a[k] as number) - (b.data[k] as number)));
      expect(maxDiff).toBeLessThan(1e-4);
    });

    // Over HTTP: concurrent answers equal the sequential ones, and the executions really were batched.
    const seq = [];
    for (const img of images) seq.push((await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' })).json.detections);
    const par = await Promise.all(images.map((img) => post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' })));
    expect(par.map((r) => r.json.detections)).toEqual(seq);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    const count = (le: string) => Number(metrics.split('\n').find((l) => l.startsWith(`cvopt_batch_size_bucket{le="${le}"}`))?.split(' ')[1]);
    expect(count('+Inf') - count('1')).toBeGreaterThan(0);
  });

  it('serves the Open Inference Protocol: metadata and raw tensors equal to the engine output', async () => {
    const m = s.host.current;
    const meta = (await (await fetch(`${s.url}/v2/models/tiny-det-dynamic`)).json()) as Json;
    expect(meta.inputs[0]).toEqual({ name: 'images', datatype: 'FP32', shape: [-1, 3, 64, 64] });
    expect(meta.outputs[0].name).toBe('output0');
    const data = Array.from({ length: 2 * 3 * 64 * 64 }, (_, i) => (i % 97) / 97);
    const r = await post(`${s.url}/v2/models/tiny-det-dynamic/infer`, JSON.stringify({ id: 'q1', inputs: [{ name: 'images', shape: [2, 3, 64, 64], datatype: 'FP32', data }] }), {
      'content-type': 'application/json',
    });
    expect(r.status).toBe(200);
    expect(r.json.id).toBe('q1');
    const out = r.json.outputs[0];
    expect(out.shape).toEqual([2, 7, 64]);
    const direct = await m.engine.run(Float32Array.from(data), [2, 3, 64, 64]);
    expect(out.data.length).toBe(direct.data.length);
    for (let k = 0; k < direct.data.length; k += 37) expect(out.data[k]).toBeCloseTo(direct.data[k] as number, 4);
    const bad = await post(`${s.url}/v2/models/tiny-det-dynamic/infer`, JSON.stringify({ inputs: [{ name: 'images', shape: [1, 3, 32, 32], datatype: 'FP32', data: [1] }] }), {
      'content-type': 'application/json',
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('x-cvopt-error-code')).toBe('TENSOR_SHAPE');
    expect(typeof bad.json.error).toBe('string');
    expect((await fetch(`${s.url}/v2/models/nope`)).status).toBe(404);
  });

  it('reloads the model atomically while serving', async () => {
    const img = await jpeg();
    const during = Array.from({ length: 10 }, () => post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' }));
    const res = await fetch(`${s.url}/v1/admin/reload`, { method: 'POST' });
    const reload = { status: res.status, json: (await res.json()) as Json };
    expect(reload.status).toBe(200);
    expect(reload.json.generation).toBe(2);
    expect((await Promise.all(during)).map((r) => r.status)).toEqual(new Array(10).fill(200));
    expect((await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' })).status).toBe(200);
  });
});
