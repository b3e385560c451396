import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureModels, jpeg, post, startApp, type Json, type Running } from './helpers.js';
import { rawRequest, sleep, trickle } from './raw-http.js';

/** One keep-alive connection driven by hand: `send` writes a request, `next` resolves with the next answer. */
async function connection(url: string) {
  const u = new URL(url);
  const sock = net.connect(Number(u.port), u.hostname);
  await new Promise((r) => sock.once('connect', r));
  let buf = Buffer.alloc(0);
  let waiter: (() => void) | undefined;
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    waiter?.();
  });
  const parse = (): { status: number; json: Json } | undefined => {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const head = buf.subarray(0, end).toString('latin1');
    const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
    if (buf.length < end + 4 + len) return undefined;
    const body = buf.subarray(end + 4, end + 4 + len).toString('utf8');
    buf = buf.subarray(end + 4 + len);
    return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]), json: JSON.parse(body) };
  };
  return {
    send: (path: string, img: Buffer, headers = '') =>
      sock.write(Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: ${img.length}\r\n${headers}\r\n`, 'latin1'), img])),
    next: async () => {
      for (;;) {
        const r = parse();
        if (r) return r;
        await new Promise<void>((res) => (waiter = res));
      }
    },
    close: () => sock.destroy(),
  };
}

/** Issue 16 item 2: admission judges a request's wait against what is left of its client's latency budget. */
describe('admission against the latency budget (real HTTP, real engine)', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startApp(fixtureModels().detStatic, { queueMax: 64, refusalPauseMs: 800, upload: { minBytesPerSecond: 0, timeoutMs: 30_000 } });
  });
  afterAll(async () => s?.close());

  it('refuses from the headers when queued work × drain rate would pass the deadline, admits when it fits', async () => {
    const img = await jpeg();
    for (let i = 0; i < 5; i++) expect((await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' })).status).toBe(200);
    // Twelve admitted uploads that never finish: work admitted ahead of every new request.
    let stop = false;
    const head = `POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000\r\n\r\n`;
    const holders = Array.from({ length: 12 }, () =>
      rawRequest(s.url, head, async (sock) => {
        await trickle(sock, 10, 1, 50);
        while (!stop && !sock.destroyed) await sleep(50);
        sock.destroy();
      }, 30_000),
    );
    const sch = s.host.current.scheduler;
    for (let i = 0; i < 100 && sch.waiting < 12; i++) await sleep(20);
    expect(sch.waiting).toBe(12);
    // The estimate admission uses, from the scheduler's measurements: preparation + the wait ahead + one run.
    const expected = sch.prepMs + sch.estimatedWaitMs() + sch.serviceMs;
    expect(sch.estimatedWaitMs()).toBeCloseTo(12 * sch.drainMs, 6);
    const tight = Math.max(1, Math.floor(expected / 2));
    const refused = await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg', 'x-deadline-ms': String(tight) });
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe('DEADLINE_EXCEEDED');
    expect(refused.json.error.details.queueDepth).toBe(12);
    expect(Math.abs(refused.json.error.details.estimatedMs - expected)).toBeLessThanOrEqual(1);
    // Three times the estimate, over the admission target, fits: admitted and served.
    const roomy = Math.ceil((3 * expected) / 0.85) + 5;
    expect((await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg', 'x-deadline-ms': String(roomy) })).status).toBe(200);
    stop = true;
    await Promise.all(holders);
  });

  it('charges a request that waited behind a refusal pause with that wait', async () => {
    const img = await jpeg();
    const c = await connection(s.url);
    try {
      // A refusal pauses the connection for 800 ms; the client resends at once, so its request waits that long.
      c.send('/v1/predict?deadline_ms=0.0001', img);
      expect((await c.next()).status).toBe(429);
      c.send('/v1/predict', img, 'X-Deadline-Ms: 600\r\n');
      const charged = await c.next();
      expect(charged.status).toBe(429);
      expect(charged.json.error.code).toBe('DEADLINE_EXCEEDED');
      // 600 ms less the ≈ 800 ms already waited leaves nothing: the budget admission judged was 1 ms.
      expect(charged.json.error.details.deadlineMs).toBe(1);
      // A request sent after the pause is over waited for nothing and keeps its whole budget.
      await sleep(1200);
      c.send('/v1/predict', img, 'X-Deadline-Ms: 600\r\n');
      expect((await c.next()).status).toBe(200);
    } finally {
      c.close();
    }
  });

  it('paces clients that resend the moment a refusal arrives to one refusal a pause, each connection', async () => {
    // 30 connections resend at once on every answer, every request refused (a deadline nobody can meet). Whether
    // the next request waits in the kernel (the pause held) or was read first and waits in the gate, each
    // connection gets at most one answer per 800 ms pause: 2.5 s allow 4 (the first is answered at once).
    const img = await jpeg();
    const conns = await Promise.all(Array.from({ length: 30 }, () => connection(s.url)));
    const t0 = performance.now();
    try {
      const counts = await Promise.all(
        conns.map(async (c) => {
          const gaps: number[] = [];
          let last = performance.now();
          let n = 0;
          while (performance.now() - t0 < 2500) {
            c.send('/v1/predict?deadline_ms=0.0001', img);
            const r = await c.next();
            expect(r.status).toBe(429);
            const now = performance.now();
            if (n > 0) gaps.push(now - last);
            last = now;
            n++;
          }
          return { n, gaps };
        }),
      );
      for (const { n, gaps } of counts) {
        expect(n).toBeLessThanOrEqual(5);
        for (const g of gaps) expect(g).toBeGreaterThan(700);
      }
      // The service answered its own health check at once meanwhile.
      const t = performance.now();
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
      expect(performance.now() - t).toBeLessThan(500);
    } finally {
      for (const c of conns) c.close();
    }
  });
});
