import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureModels, jpeg, post, startApp, type Running } from './helpers.js';
import { sleep } from './raw-http.js';

/** A 1-bit BMP of `w`×`h` with a pattern (what took 650 ms to decode on the HTTP thread). */
function bmp1(w: number, h: number): Buffer {
  const row = Math.ceil(w / 32) * 4;
  const head = Buffer.alloc(14 + 40 + 8);
  head.write('BM', 0, 'latin1');
  head.writeUInt32LE(head.length + row * h, 2);
  head.writeUInt32LE(head.length, 10);
  head.writeUInt32LE(40, 14);
  head.writeInt32LE(w, 18);
  head.writeInt32LE(h, 22);
  head.writeUInt16LE(1, 26);
  head.writeUInt16LE(1, 28);
  head.writeUInt32LE(2, 46);
  head.writeUInt32LE(0x00ffffff, 14 + 40 + 4);
  const px = Buffer.alloc(row * h);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37) & 0xff;
  return Buffer.concat([head, px]);
}

/**
 * Issue 13 item 6: BMP decoding, megabytes of KServe JSON and multipart bodies of many parts must not stall the
 * HTTP thread. Checked by order, not by time: a health probe sent while the heavy request is being worked on is
 * answered before it.
 */
describe('heavy bodies stay off the HTTP thread', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startApp(fixtureModels().detStatic, { bodyLimitBytes: 32 * 2 ** 20, sloMs: 60_000 });
  });
  afterAll(async () => s?.close());

  async function probeBefore(heavy: () => Promise<{ status: number }>): Promise<{ order: string[]; status: number }> {
    const order: string[] = [];
    const h = heavy().then((r) => {
      order.push('heavy');
      return r.status;
    });
    await sleep(40); // the heavy body is uploaded and being worked on
    const probe = fetch(`${s.url}/healthz`).then(() => order.push('probe'));
    const [status] = await Promise.all([h, probe]);
    return { order, status };
  }

  it('decodes a 36-megapixel 1-bit BMP in the worker while /healthz answers', async () => {
    const r = await probeBefore(() => post(`${s.url}/v1/predict`, bmp1(6000, 6000), { 'content-type': 'image/bmp' }));
    expect(r.status).toBe(200);
    expect(r.order).toEqual(['probe', 'heavy']);
  });

  it('parses 15 MB of KServe JSON in the worker, answering a wrong shape with 400', async () => {
    const data = Array.from({ length: 2_000_000 }, (_, i) => (i % 1000) / 7);
    const body = JSON.stringify({ inputs: [{ name: 'images', shape: [1, 3, 64, 64], datatype: 'FP32', data }] });
    expect(body.length).toBeGreaterThan(14e6);
    const r = await probeBefore(() => post(`${s.url}/v2/models/tiny-det-static/infer`, body, { 'content-type': 'application/json' }));
    expect(r.status).toBe(400);
    expect(r.order).toEqual(['probe', 'heavy']);
  });

  it('stops reading a multipart body at multipartMaxParts', async () => {
    const parts = Array.from({ length: 300_000 }, (_, i) => `--b\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nx\r\n`).join('');
    const r = await post(`${s.url}/v1/predict`, `${parts}--b--\r\n`, { 'content-type': 'multipart/form-data; boundary=b' });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(/more than 16 parts/);
    expect((await post(`${s.url}/v1/predict`, await jpeg(), { 'content-type': 'image/jpeg' })).status).toBe(200);
  });
});
