import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureModels, jpeg, post, startApp, type Running } from './helpers.js';
import { rawRequest, sleep, trickle } from './raw-http.js';

const MB = 1024 * 1024;

/** Write `total` bytes as fast as the socket takes them, until done or the socket is gone. */
async function flood(s: net.Socket, total: number, chunked = false): Promise<void> {
  const data = Buffer.alloc(64 * 1024, 0x41);
  // Chunked framing: size in hex, the data, CRLF.
  const chunk = chunked ? Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]) : data;
  for (let sent = 0; sent < total && !s.destroyed; sent += chunk.length) {
    if (!s.write(chunk)) await new Promise((r) => (s.once('drain', r), s.once('close', r)));
  }
}

/** Issue 16 item 1: a refusal must not cost the reading of the upload it refuses. */
describe('refusals of large bodies close the connection (real sockets)', () => {
  let s: Running;
  const served = new Set<net.Socket>();
  beforeAll(async () => {
    // One queue place, and uploads that may trickle for as long as the test needs: one slow upload fills the queue.
    s = await startApp(fixtureModels().detStatic, { queueMax: 1, upload: { minBytesPerSecond: 0, timeoutMs: 30_000 } });
    s.app.server.on('connection', (sock: net.Socket) => served.add(sock));
  });
  afterAll(async () => s?.close());

  const head = (length: number | 'chunked') =>
    `POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n${length === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`}\r\n\r\n`;

  it('answers 429 without reading a 5 MB body, closes, keeps small refusals alive and serves others', async () => {
    let stopHolder = false;
    const holder = rawRequest(s.url, head(100_000), async (sock) => {
      await trickle(sock, 50, 1, 100);
      while (!stopHolder && !sock.destroyed) await sleep(50);
      sock.destroy();
    }, 30_000);
    // Wait until the holder is admitted and the queue is full.
    for (let i = 0; i < 100 && s.host.current.scheduler.waiting < 1; i++) await sleep(20);
    expect(s.host.current.scheduler.waiting).toBe(1);

    const before = new Set(served);
    const big = await rawRequest(s.url, head(5 * MB), (sock) => flood(sock, 5 * MB));
    expect(big.status).toBe(429);
    expect(big.headers).toMatch(/connection: close/i);
    expect(big.headers).toMatch(/retry-after: \d+/i);
    expect(big.body).toContain('QUEUE_FULL');
    expect(big.ms).toBeLessThan(5000);
    const bigSocket = [...served].find((x) => !before.has(x)) as net.Socket;
    for (let i = 0; i < 50 && !bigSocket.destroyed; i++) await sleep(20);
    expect(bigSocket.destroyed).toBe(true);
    // What the server read of the 5 MB: the headers and at most a few socket reads, not the body.
    expect(bigSocket.bytesRead).toBeLessThan(MB);

    // A chunked body has no length to skip cheaply: closed as well.
    const chunked = await rawRequest(s.url, head('chunked'), (sock) => flood(sock, 2 * MB, true));
    expect(chunked.status).toBe(429);
    expect(chunked.headers).toMatch(/connection: close/i);

    // A small body is drained instead, so its keep-alive connection survives the refusal.
    const small = await rawRequest(s.url, head(10_000), (sock) => void sock.write(Buffer.alloc(10_000, 0x41)));
    expect(small.status).toBe(429);
    expect(small.headers).toMatch(/connection: keep-alive/i);

    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/cvopt_refusal_unread_closes_total\{status="429"\} 2/);

    // Once the queue place is free the service serves as before.
    stopHolder = true;
    await holder;
    for (let i = 0; i < 100 && s.host.current.scheduler.admitted > 0; i++) await sleep(20);
    const ok = await post(`${s.url}/v1/predict`, await jpeg(), { 'content-type': 'image/jpeg' });
    expect(ok.status).toBe(200);
  });
});
