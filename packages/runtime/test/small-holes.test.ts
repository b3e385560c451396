import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureModels, jpeg, post, startApp, type Json, type Running } from './helpers.js';
import { rawRequest, sleep } from './raw-http.js';

const KEYS = { admin: 'Zq7vP3xW9mK2tL8nR4sJ', viewer: 'Hd5uY1cB6gF0oE3wQ9kT' };

/** Issue 13 item 13 (the service's share), each with the attack itself over real HTTP. */
describe('the smaller holes', () => {
  let s: Running;
  let dir: string;
  const auth = { authorization: `Bearer ${KEYS.admin}` };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cvopt-holes-'));
    cpSync(fixtureModels().detDynamic, dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as Json;
    m.provenance = { ...m.provenance, source: '/home/secret-user/runs/train7/best.pt', trainingRun: '/home/secret-user/runs/train7' };
    writeFileSync(join(dir, 'model.json'), JSON.stringify(m));
    s = await startApp(dir, {
      queueMax: 3,
      bodyLimitBytes: 1_000_000,
      auth: { keys: [{ name: 'root', key: KEYS.admin, role: 'admin' }, { name: 'v', key: KEYS.viewer, role: 'viewer' }] },
    });
  });
  afterAll(async () => s?.close());

  it('Expect: 100-continue with a length over the limit gets 413 and never 100', async () => {
    const r = await rawRequest(s.url, `POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.viewer}\r\nContent-Type: image/jpeg\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n`, () => undefined, 3000);
    expect(r.status).toBe(413);
    expect(r.headers).not.toContain('100 Continue');
    expect(JSON.parse(r.body).error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('shows admins no character of any key, and nobody a server path', async () => {
    const config = await (await fetch(`${s.url}/v1/config`, { headers: auth })).text();
    for (const key of Object.values(KEYS)) for (let i = 0; i + 4 <= key.length; i += 4) expect(config).not.toContain(key.slice(i, i + 4));
    const model = await (await fetch(`${s.url}/v1/model`, { headers: auth })).text();
    expect(model).not.toContain('secret-user');
    expect(model).not.toContain(dir);
    expect(model).not.toContain(tmpdir());
    expect(JSON.parse(model).manifest.provenance.source).toBe('best.pt');
  });

  it('answers malformed HTTP and unknown routes in the catalogue’s shape', async () => {
    const bad = await rawRequest(s.url, 'GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n', () => undefined, 3000);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error.code).toBe('INVALID_ARGUMENT');
    const nf = await fetch(`${s.url}/nope`);
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as Json).error.code).toBe('NOT_FOUND');
  });

  it('makes one KServe request of N samples take N queue places', async () => {
    const tensor = (n: number) => JSON.stringify({ inputs: [{ name: 'images', shape: [n, 3, 64, 64], datatype: 'FP32', data: new Array(n * 3 * 64 * 64).fill(0.5) }] });
    const h = { 'content-type': 'application/json', authorization: `Bearer ${KEYS.viewer}` };
    const big = await post(`${s.url}/v2/models/tiny-det-dynamic/infer`, tensor(5), h);
    expect(big.status).toBe(429); // five places, the queue holds three
    expect(big.headers.get('x-cvopt-error-code')).toBe('QUEUE_FULL');
    const ok = await post(`${s.url}/v2/models/tiny-det-dynamic/infer`, tensor(3), h);
    expect(ok.status).toBe(200);
    expect(ok.json.outputs[0].shape[0]).toBe(3);
    expect(s.host.current.scheduler.admitted).toBe(0);
  });

  it('flips /readyz when an engine worker thread dies, restarts it, and serves again', async () => {
    const img = await jpeg();
    const h = { 'content-type': 'image/jpeg', authorization: `Bearer ${KEYS.viewer}` };
    const gen = s.host.current.generation;
    await s.host.current.engine.terminate();
    const states: number[] = [];
    for (let i = 0; i < 200; i++) {
      const st = (await fetch(`${s.url}/readyz`)).status;
      states.push(st);
      if (st === 200 && states.includes(503)) break;
      await sleep(25);
    }
    expect(states[0]).toBe(503);
    expect(states.at(-1)).toBe(200);
    expect(s.host.restarts).toBe(1);
    expect(s.host.current.generation).toBe(gen + 1);
    expect((await post(`${s.url}/v1/predict`, img, h)).status).toBe(200);
    const metrics = await (await fetch(`${s.url}/metrics`, { headers: auth })).text();
    expect(metrics).toMatch(/cvopt_engine_restarts 1/);
  });
});
