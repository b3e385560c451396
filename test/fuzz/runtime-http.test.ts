import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng, testDataDir } from '@cvopt/core';
import { fixtureModels, jpeg, post, startApp, type Running } from '../../packages/runtime/test/helpers.js';
import { mutate } from './mutate.js';

const data = testDataDir();
if (!data) console.warn('skipping the HTTP fuzz test: shared test data not found (set CVOPT_TEST_DATA)');

/** 24-bit BMP of an RGB image (sharp writes no BMP). */
function bmp(rgb: Buffer, w: number, h: number): Buffer {
  const row = Math.ceil((w * 3) / 4) * 4;
  const head = Buffer.alloc(54);
  head.write('BM', 0, 'latin1');
  head.writeUInt32LE(54 + row * h, 2);
  head.writeUInt32LE(54, 10);
  head.writeUInt32LE(40, 14);
  head.writeInt32LE(w, 18);
  head.writeInt32LE(h, 22);
  head.writeUInt16LE(1, 26);
  head.writeUInt16LE(24, 28);
  const px = Buffer.alloc(row * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) px[(h - 1 - y) * row + x * 3 + c] = rgb[(y * w + x) * 3 + (2 - c)]!;
  return Buffer.concat([head, px]);
}

/**
 * Issue 13's fuzz run over HTTP: seeded mutations of real JPEG, PNG, BMP and MP4 files (and of valid KServe JSON
 * and binary requests) sent to the predict, video and KServe routes. Every answer must be a success or a 4xx/429
 * refusal — zero 5xx, no crash, no request left hanging — and the service must be healthy afterwards.
 */
describe.skipIf(!data)('HTTP fuzz with mutated real files', () => {
  let s: Running;
  const seeds: { route: string; type: string; bytes: Buffer; headers?: Record<string, string> }[] = [];
  beforeAll(async () => {
    s = await startApp(fixtureModels().detDynamic, { queueMax: 256, sloMs: 60_000, video: { maxFrames: 8, maxSeconds: 60, maxConcurrent: 4 }, perClient: { maxUploads: 64 } });
    const dir = join(data!, 'coco128-val/images/val2017');
    for (const f of readdirSync(dir).sort().slice(0, 2)) {
      const jpg = readFileSync(join(dir, f));
      seeds.push({ route: '/v1/predict', type: 'image/jpeg', bytes: jpg });
      const small = sharp(jpg).resize(96, 72);
      seeds.push({ route: '/v1/predict', type: 'image/png', bytes: await small.clone().png().toBuffer() });
      const { data: rgb, info } = await small.clone().removeAlpha().raw().toBuffer({ resolveWithObject: true });
      seeds.push({ route: '/v1/predict', type: 'image/bmp', bytes: bmp(rgb, info.width, info.height) });
    }
    const clip = join(mkdtempSync(join(tmpdir(), 'cvopt-fuzz-')), 'clip.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-t', '1', '-i', join(data!, 'video/bottle-detection.mp4'), '-c', 'copy', clip]);
    seeds.push({ route: '/v1/predict/video', type: 'video/mp4', bytes: readFileSync(clip) });
    const tensor = Array.from({ length: 3 * 64 * 64 }, (_, i) => (i % 251) / 251);
    seeds.push({ route: '/v2/models/tiny-det-dynamic/infer', type: 'application/json', bytes: Buffer.from(JSON.stringify({ id: 'f', inputs: [{ name: 'images', shape: [1, 3, 64, 64], datatype: 'FP32', data: tensor }] })) });
    const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'images', shape: [1, 3, 64, 64], datatype: 'FP32', parameters: { binary_data_size: tensor.length * 4 } }], outputs: [{ name: 'output0', parameters: { binary_data: true } }] }));
    seeds.push({
      route: '/v2/models/tiny-det-dynamic/infer',
      type: 'application/octet-stream',
      bytes: Buffer.concat([head, Buffer.from(Float32Array.from(tensor).buffer)]),
      headers: { 'inference-header-content-length': String(head.length) },
    });
  }, 120_000);
  afterAll(async () => s?.close());

  it('answers every mutant with a success or a 4xx, never a 5xx or a hang, and stays healthy', async () => {
    const rng = new Rng(1313);
    const budgetMs = 60_000;
    const t0 = performance.now();
    const counts: Record<string, number> = {};
    const failures: string[] = [];
    let cases = 0;
    const one = async () => {
      const seed = seeds[rng.int(0, seeds.length - 1)]!;
      const video = seed.route.endsWith('/video');
      // Videos cost an ffmpeg run each: fewer of them.
      if (video && rng.float() < 0.85) return;
      const m = mutate(seed.bytes, rng);
      const type = rng.float() < 0.05 ? seeds[rng.int(0, seeds.length - 1)]!.type : seed.type;
      const ctl = AbortSignal.timeout(30_000);
      try {
        const r = await fetch(`${s.url}${seed.route}`, { method: 'POST', body: m.bytes, headers: { 'content-type': type, ...(seed.headers ?? {}) }, signal: ctl });
        await r.arrayBuffer();
        counts[r.status] = (counts[r.status] ?? 0) + 1;
        if (r.status >= 500) failures.push(`${r.status} ${seed.route} ${seed.type} ${m.how}`);
      } catch (e) {
        failures.push(`${(e as Error).name} ${seed.route} ${seed.type} ${m.how}`);
      }
      cases++;
    };
    while (cases < 1000 && performance.now() - t0 < budgetMs) await Promise.all(Array.from({ length: 8 }, one));
    console.log(`fuzz: ${cases} cases in ${Math.round(performance.now() - t0)} ms, statuses ${JSON.stringify(counts)}`);
    expect(failures).toEqual([]);
    expect(cases).toBeGreaterThan(300);
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    expect((await post(`${s.url}/v1/predict`, await jpeg(), { 'content-type': 'image/jpeg' })).status).toBe(200);
    expect(s.host.current.scheduler.admitted).toBe(0);
  }, 120_000);
});
