import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { buildApp, ModelHost, RuntimeMetrics, parseRuntimeConfig, rateLimiterFor, resolveModelSource } from '../src/index.js';
import { fixtureModels, jpeg, post } from './helpers.js';
import { rawRequest, sleep } from './raw-http.js';

/** Issue 13 item 9: the client's mistakes are 4xx in the catalogue's shape; clients leaving are info, not errors. */
describe('client mistakes and disconnects', () => {
  let url: string;
  const lines: { level: number; msg: string; text: string }[] = [];
  let close: () => Promise<void>;
  beforeAll(async () => {
    const config = parseRuntimeConfig({ intraOpThreads: 1, sloMs: 30_000 });
    const host = new ModelHost(resolveModelSource(fixtureModels().detStatic), { config });
    await host.load();
    const log = pino(
      { level: 'debug' },
      {
        write: (line: string) => {
          const j = JSON.parse(line) as { level: number; msg: string };
          lines.push({ level: j.level, msg: j.msg, text: line });
        },
      },
    );
    const metrics = new RuntimeMetrics();
    const app = await buildApp({ config, host, metrics, log, limiter: rateLimiterFor(config) });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
    close = async () => {
      await app.close();
      await host.close();
      metrics.close();
    };
  });
  afterAll(async () => close?.());

  it('answers malformed and hostile JSON with 400 in the catalogue’s shape', async () => {
    for (const body of ['{"image": ', '{"__proto__": {"x": 1}, "image": "aGVsbG8="}', '[]', 'null']) {
      const r = await post(`${url}/v1/predict`, body, { 'content-type': 'application/json' });
      expect(r.status, body).toBe(400);
      expect(r.json.error.code, body).toBe('INVALID_ARGUMENT');
      expect(r.json.error.message).toBeTruthy();
    }
    const deep = `{"inputs":[{"name":"images","shape":[1,3,64,64],"datatype":"FP32","data":${'['.repeat(50_000)}${']'.repeat(50_000)}}]}`;
    for (const body of [deep, '{"inputs":[{"name":"images","shape":[1,1,1,1],"datatype":"FP32","data":[1e999]}]}', '{"inputs":[{"name":"images","shape":[1,1,1,1],"datatype":"FP32","data":[1e39]}]}', '{"inputs": [']) {
      const r = await post(`${url}/v2/models/tiny-det-static/infer`, body, { 'content-type': 'application/json' });
      expect(r.status, body.slice(0, 60)).toBe(400);
      expect(typeof r.json.error).toBe('string');
    }
  });

  it('serves extreme-aspect images', async () => {
    const mk = (w: number, h: number) => sharp({ create: { width: w, height: h, channels: 3, background: { r: 1, g: 2, b: 3 } } });
    for (const [w, h] of [
      [65_000, 1],
      [1, 65_000],
      [300_000, 2],
    ] as const) {
      const r = await post(`${url}/v1/predict`, await mk(w, h).png().toBuffer(), { 'content-type': 'image/png' });
      expect(r.status, `${w}×${h}`).toBe(200);
      expect(r.json.image).toEqual({ width: w, height: h });
    }
  });

  it('logs a client that leaves mid-upload at info level, without a stack, and keeps serving', async () => {
    const before = lines.length;
    const img = await jpeg(400, 300);
    await rawRequest(`${url}`, `POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: ${img.length}\r\n\r\n`, async (s) => {
      s.write(img.subarray(0, 1000));
      await sleep(100);
      s.destroy();
    });
    await sleep(200);
    const mine = lines.slice(before);
    expect(mine.filter((l) => l.level >= 50)).toEqual([]);
    expect(mine.filter((l) => l.msg === 'client went away').map((l) => l.level)).toEqual([30]);
    expect(mine.some((l) => /"stack"/.test(l.text))).toBe(false);
    expect((await post(`${url}/v1/predict`, img, { 'content-type': 'image/jpeg' })).status).toBe(200);
  });
});
