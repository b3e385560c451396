#!/usr/bin/env node
// What the benchmark harness adds to the latency it reports for ort-cpu: the harness (its own child process,
// @cvopt/engines adapter, warm-up, timed loop) against a bare onnxruntime-node loop in this process on the same
// model, session options and preprocessed image. Blocks are interleaved A B B A per round so machine drift hits
// both alike; prints the median of each side's per-block p50 and p95 and the harness/bare ratio (target ≤ 1.05).
//
//   npx tsc -b packages/bench && node bench/harness-overhead.mjs [--model PATH] [--rounds 2] [--iters 20] [--threads 1]
import { parseArgs } from 'node:util';
import { modelArg } from './common.mjs';
import * as ort from 'onnxruntime-node';
import { latencyStats, runEngineChild } from '../packages/bench/dist/index.js';
import { ortSessionOptions } from '../packages/engines/dist/index.js';
import { inferManifest } from '../packages/onnx/dist/index.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    rounds: { type: 'string', default: '2' },
    iters: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1' },
  },
});
const model = modelArg(values);
const rounds = Number(values.rounds);
const iters = Number(values.iters);
const warmup = Number(values.warmup);
const threads = Number(values.threads);

const manifest = inferManifest(model);
const bare = await ort.InferenceSession.create(model, ortSessionOptions({ provider: 'cpu', intraOpNumThreads: threads }));
// The harness child given no dataset images feeds a mid-grey frame (pad value 114); the bare loop feeds the same.
const [h, w] = manifest.preprocess.size;
const grey = new Float32Array(3 * h * w);
for (let c = 0; c < 3; c++) grey.fill((114 * manifest.preprocess.scale - (manifest.preprocess.mean[c] ?? 0)) / (manifest.preprocess.std[c] ?? 1), c * h * w, (c + 1) * h * w);
const feeds = { [manifest.input.name]: new ort.Tensor('float32', grey, [1, 3, h, w]) };

async function bareBlock() {
  for (let i = 0; i < warmup; i++) await bare.run(feeds);
  const t = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await bare.run(feeds);
    t.push(performance.now() - t0);
  }
  return latencyStats(t);
}

const target = { engine: 'ort-cpu', status: 'ready', runtime: 'onnxruntime', provider: 'cpu', model, manifest, describe: 'ort-cpu: harness-overhead' };
const settings = { warmup, iters, minTimeMs: 0, batchSizes: [1], threads, images: [], repeatsIfUnstable: 0 };
async function harnessBlock() {
  const r = await runEngineChild(target, settings, { timeS: 600, rssMb: 4096 });
  if (r.status !== 'ok') throw new Error(`harness run ${r.status}: ${JSON.stringify(r)}`);
  return r.figures.latencyMs;
}
const H = [];
const B = [];
for (let r = 0; r < rounds; r++) {
  H.push(await harnessBlock());
  B.push(await bareBlock());
  B.push(await bareBlock());
  H.push(await harnessBlock());
  process.stderr.write(`round ${r + 1}/${rounds}: harness p50 ${H.at(-2).p50}/${H.at(-1).p50} ms, bare p50 ${B.at(-2).p50}/${B.at(-1).p50} ms\n`);
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const hp50 = med(H.map((s) => s.p50));
const bp50 = med(B.map((s) => s.p50));
const hp95 = med(H.map((s) => s.p95));
const bp95 = med(B.map((s) => s.p95));
console.log(`model ${model}, ${threads} thread(s), ${rounds} rounds × (2 harness + 2 bare blocks of ${iters} runs)`);
console.log(`harness (child process, adapter): p50 ${hp50.toFixed(2)} ms  p95 ${hp95.toFixed(2)} ms`);
console.log(`bare onnxruntime-node loop:       p50 ${bp50.toFixed(2)} ms  p95 ${bp95.toFixed(2)} ms`);
console.log(`ratio harness/bare: p50 ${(hp50 / bp50).toFixed(3)}  p95 ${(hp95 / bp95).toFixed(3)}  (target p50 ≤ 1.05)`);
await bare.release();
