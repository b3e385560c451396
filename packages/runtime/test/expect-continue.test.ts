import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureModels, jpeg, startApp, type Running } from './helpers.js';

/** A POST with `Expect: 100-continue`: the body goes only if the server sends 100 first. */
function postExpecting(url: string, body: Buffer, headers: Record<string, string>): Promise<{ status: number; sentBody: boolean; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    let sentBody = false;
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', headers: { ...headers, expect: '100-continue', 'content-length': body.length } });
    req.on('continue', () => {
      sentBody = true;
      req.end(body);
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        if (!sentBody) req.destroy();
        resolve({ status: res.statusCode ?? 0, sentBody, text });
      });
    });
    req.on('error', (e) => (sentBody ? reject(e) : undefined));
    req.flushHeaders();
  });
}

describe('Expect: 100-continue', () => {
  let s: Running;
  const KEY = 'viewer-key-0123456789';
  beforeAll(async () => {
    s = await startApp(fixtureModels().detStatic, { auth: { keys: [{ name: 'v', key: KEY, role: 'viewer' }] } });
  });
  afterAll(async () => s?.close());

  it('asks for the body only after admission, so a refused client never uploads it', async () => {
    const img = await jpeg(200, 150);
    const ok = await postExpecting(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg', authorization: `Bearer ${KEY}` });
    expect(ok.status).toBe(200);
    expect(ok.sentBody).toBe(true);
    expect(JSON.parse(ok.text).detections).toBeDefined();

    const refused = await postExpecting(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' });
    expect(refused.status).toBe(401);
    expect(refused.sentBody).toBe(false);

    const late = await postExpecting(`${s.url}/v1/predict?deadline_ms=0.0001`, img, { 'content-type': 'image/jpeg', authorization: `Bearer ${KEY}` });
    expect(late.status).toBe(429);
    expect(late.sentBody).toBe(false);
    expect(JSON.parse(late.text).error.code).toBe('DEADLINE_EXCEEDED');

    // The service is unharmed: a plain request still succeeds.
    const r = await fetch(`${s.url}/v1/predict`, { method: 'POST', body: img, headers: { 'content-type': 'image/jpeg', authorization: `Bearer ${KEY}` } });
    expect(r.status).toBe(200);
  });
});
