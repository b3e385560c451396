import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fixtureModels, jpeg, post, startApp } from './helpers.js';
import { rawRequest, sleep, trickle } from './raw-http.js';

/** Threads of this process whose nice value is `nice` (Linux /proc; nice is per thread there). */
function threadsAtNice(nice: number): number {
  return readdirSync('/proc/self/task').filter((tid) => {
    try {
      const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]) === nice;
    } catch {
      return false; // the thread ended meanwhile
    }
  }).length;
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  for (const t0 = performance.now(); performance.now() - t0 < ms; await sleep(20)) if (cond()) return true;
  return cond();
}

/** Issue 16 item 3: engineNice applies while the service is loaded, not to a single user's requests. */
describe('engine nice under load only (real ONNX Runtime, real HTTP)', () => {
  it('runs the inference threads at the process priority when calm, at engineNice while loaded, and back', async () => {
    const s = await startApp(fixtureModels().detDynamic, { engineNice: 9, intraOpThreads: 2, upload: { minBytesPerSecond: 0, timeoutMs: 30_000 } });
    try {
      const engine = s.host.current.engine;
      if (!engine.niceFollowsLoad) {
        // No right to lower a nice value here (no CAP_SYS_NICE, RLIMIT_NICE 0): the static behaviour holds instead.
        expect(threadsAtNice(9)).toBeGreaterThanOrEqual(1);
        return;
      }
      const img = await jpeg();
      // One user: nothing at nice 9, before or after a request.
      expect(threadsAtNice(9)).toBe(0);
      expect((await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' })).status).toBe(200);
      expect(threadsAtNice(9)).toBe(0);
      // Four admitted requests at once (uploads still arriving) on one instance: loaded.
      let stop = false;
      const head = `POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000\r\n\r\n`;
      const holders = Array.from({ length: 4 }, () =>
        rawRequest(s.url, head, async (sock) => {
          await trickle(sock, 10, 1, 50);
          while (!stop && !sock.destroyed) await sleep(50);
          sock.destroy();
        }, 30_000),
      );
      // The inference thread and ONNX Runtime's intra-op thread(s) go to nice 9.
      expect(await until(() => threadsAtNice(9) >= 2, 3000)).toBe(true);
      expect((await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' })).status).toBe(200);
      stop = true;
      await Promise.all(holders);
      // Calm for a second: back to the process's priority.
      expect(await until(() => threadsAtNice(9) === 0, 5000)).toBe(true);
      expect((await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' })).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});
