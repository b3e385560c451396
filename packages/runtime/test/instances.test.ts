import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureModels, jpeg, post, startApp, type Running } from './helpers.js';

/** Threads of this process whose nice value is `nice` (Linux /proc; nice is per thread there). */
function threadsAtNice(nice: number): number {
  return readdirSync('/proc/self/task').filter((tid) => {
    const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]) === nice;
  }).length;
}

describe('engine instances, decode slots and reused buffers (real ONNX Runtime, real HTTP)', () => {
  let one: Running;
  let two: Running;
  const images: Buffer[] = [];
  beforeAll(async () => {
    const before = threadsAtNice(7);
    one = await startApp(fixtureModels().detDynamic, { batchMax: 4, engineNice: 7, engineNiceMode: 'always' });
    const afterOne = threadsAtNice(7);
    two = await startApp(fixtureModels().detDynamic, { batchMax: 4, concurrency: 2, engineNice: 7, engineNiceMode: 'always' });
    // Each instance's inference thread runs at the nice asked for (with intra-op 1 ONNX Runtime starts no pool
    // threads; the first session of the process may also start one environment thread, which inherits it too).
    expect(afterOne - before).toBeGreaterThanOrEqual(1);
    expect(threadsAtNice(7) - afterOne).toBe(2);
    for (let seed = 1; seed <= 4; seed++) images.push(await jpeg(80 + seed * 9, 60 + seed * 5, seed));
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
  });

  const predict = async (s: Running, img: Buffer) => {
    const r = await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' });
    expect(r.status).toBe(200);
    return r.json.detections;
  };

  it('answers the same for an image whatever buffers, batch or instance it went through', async () => {
    // First answers, one at a time: fresh buffers.
    const first = [];
    for (const img of images) first.push(await predict(one, img));
    expect(new Set(first.map((d) => JSON.stringify(d))).size).toBe(images.length); // the images differ
    // Again, interleaved and concurrent: buffers now come back from earlier runs (inputs and outputs), batches form.
    for (let round = 0; round < 3; round++) {
      const again = await Promise.all([...images, ...images].map((img) => predict(one, img)));
      expect(again).toEqual([...first, ...first]);
      const viaTwo = await Promise.all([...images, ...images].map((img) => predict(two, img)));
      expect(viaTwo).toEqual([...first, ...first]);
    }
  });

  it('runs two instances at once: both take work under concurrent load', async () => {
    const metrics = async () => (await (await fetch(`${two.url}/metrics`)).text()).split('\n');
    const batches = async () => Number((await metrics()).find((l) => l.startsWith('cvopt_engine_duration_seconds_count'))?.split(' ')[1] ?? 0);
    const b0 = await batches();
    await Promise.all(Array.from({ length: 24 }, (_, i) => predict(two, images[i % images.length]!)));
    expect(await batches()).toBeGreaterThan(b0);
    expect(two.host.current.engine.describe().id).toBe(one.host.current.engine.describe().id);
    // Decode slots: two instances × batch 4 × 3 (running, sent ahead, decoding the next) = 24, all given back.
    expect(two.host.current.prep.slots).toBe(24);
    expect(two.host.current.prep.inUse).toBe(0);
    expect(two.host.current.prep.maxObserved).toBeGreaterThan(1);
  });
});
