#!/usr/bin/env node
// What the @cvopt/engines ONNX Runtime adapter costs over a bare onnxruntime-node loop: the same model, the same
// session options, the same input, measured interleaved (A B B A within each round) so machine drift hits
// both equally. Prints p50/p95 of each and the adapter/bare ratio (target ≤ 1.03), then the adapter's own cost
// per call in microseconds on a trivial model, which stays readable when machine load swamps the ratio.
//
//   npx tsc -b packages/engines packages/onnx && node bench/engine-overhead.mjs [--model PATH] [--rounds 10] [--per-round 3] [--threads 1]
import { parseArgs } from 'node:util';
import { modelArg } from './common.mjs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelManifestSchema } from '../packages/core/dist/index.js';
import { createOrtEngine, engineVersions, ortSessionOptions } from '../packages/engines/dist/index.js';
import { encodeModel, model as onnxModel, node, valueInfo } from '../packages/onnx/dist/index.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    rounds: { type: 'string', default: '10' },
    'per-round': { type: 'string', default: '3' },
    threads: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '3' },
  },
});
const model = modelArg(values);
const rounds = Number(values.rounds);
const perRound = Number(values['per-round']);
const opts = { provider: 'cpu', intraOpNumThreads: Number(values.threads), graphOptimizationLevel: 'all', executionMode: 'sequential' };

const manifest = ModelManifestSchema.parse({
  name: 'overhead',
  task: 'detect',
  input: { name: 'images', shape: [1, 3, 640, 640], layout: 'NCHW', dtype: 'float32' },
  preprocess: { resize: 'letterbox', size: [640, 640], scale: 1 / 255, channelOrder: 'RGB' },
  output: { name: 'output0', format: 'yolov8', shape: [1, 84, 8400] },
  classNames: ['x'],
  opset: 20,
});
const dims = [1, 3, 640, 640];
const input = new Float32Array(3 * 640 * 640);
// A deterministic, image-like ramp: all-zero input can take faster paths in quantised kernels.
for (let i = 0; i < input.length; i++) input[i] = ((i * 2654435761) >>> 24) / 255;

const engine = await createOrtEngine(model, manifest, opts);
const bare = await ort.InferenceSession.create(model, ortSessionOptions(opts));
const feeds = { images: new ort.Tensor('float32', input, dims) };

const runAdapter = () => engine.run(input, dims);
const runBare = () => bare.run(feeds);

async function time(fn, n, into) {
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    into.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
}

for (let i = 0; i < Number(values.warmup); i++) {
  await runAdapter();
  await runBare();
}
const a = [];
const b = [];
const pairRatios = [];
// ABBA within each round: a linear drift in machine load cancels out of every round, not only on average.
for (let r = 0; r < rounds; r++) {
  const ra = [];
  const rb = [];
  for (let i = 0; i < perRound; i++) {
    await time(runAdapter, 1, ra);
    await time(runBare, 1, rb);
    await time(runBare, 1, rb);
    await time(runAdapter, 1, ra);
  }
  a.push(...ra);
  b.push(...rb);
  pairRatios.push(ra.reduce((s, x) => s + x, 0) / rb.reduce((s, x) => s + x, 0));
}
await engine.close();
await bare.release();

const pct = (xs, p) => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
// The adapter's own cost per call, seen where ORT's work is almost nothing: y = x + x on [1,3,8,8]. Many calls,
// alternated in blocks, so the absolute difference in microseconds is readable even on a busy machine.
const tinyDir = mkdtempSync(join(tmpdir(), 'cvopt-overhead-'));
const tinyPath = join(tinyDir, 'add.onnx');
const FLOAT = 1;
writeFileSync(
  tinyPath,
  encodeModel(
    onnxModel({
      nodes: [node('Add', ['images', 'images'], ['output0'])],
      inputs: [valueInfo('images', FLOAT, [1, 3, 8, 8])],
      outputs: [valueInfo('output0', FLOAT, [1, 3, 8, 8])],
    }),
  ),
);
const tinyManifest = { ...manifest, input: { ...manifest.input, shape: [1, 3, 8, 8] }, output: { ...manifest.output, shape: [1, 3, 8, 8] } };
const tinyEngine = await createOrtEngine(tinyPath, tinyManifest, opts);
const tinyBare = await ort.InferenceSession.create(tinyPath, ortSessionOptions(opts));
const tinyInput = new Float32Array(192).fill(0.5);
const tinyDims = [1, 3, 8, 8];
const tinyFeeds = { images: new ort.Tensor('float32', tinyInput, tinyDims) };
const block = 500;
let ta = 0;
let tb = 0;
for (let r = 0; r < 20; r++) {
  const order = r % 2 ? ['b', 'a'] : ['a', 'b'];
  for (const which of order) {
    const t0 = process.hrtime.bigint();
    if (which === 'a') for (let i = 0; i < block; i++) await tinyEngine.run(tinyInput, tinyDims);
    else for (let i = 0; i < block; i++) await tinyBare.run(tinyFeeds);
    const dt = Number(process.hrtime.bigint() - t0) / 1e3;
    if (which === 'a') ta += dt;
    else tb += dt;
  }
}
await tinyEngine.close();
await tinyBare.release();
const perA = ta / (20 * block);
const perB = tb / (20 * block);

const row = (name, xs) => `${name.padEnd(8)} n=${xs.length}  p50 ${pct(xs, 50).toFixed(2)} ms  p95 ${pct(xs, 95).toFixed(2)} ms  mean ${(xs.reduce((s, x) => s + x, 0) / xs.length).toFixed(2)} ms`;
console.log(`model ${model}`);
console.log(`options ${JSON.stringify(opts)}  versions ${JSON.stringify(engineVersions())}`);
console.log(row('adapter', a));
console.log(row('bare', b));
console.log(
  `per call on a trivial model (${20 * block} calls each): adapter ${perA.toFixed(1)} µs, bare ${perB.toFixed(1)} µs, difference ${(perA - perB).toFixed(1)} µs = ${((100 * (perA - perB)) / 1000 / pct(b, 50)).toFixed(4)} % of the bare p50 above`,
);
console.log(`ratio adapter/bare  p50 ${(pct(a, 50) / pct(b, 50)).toFixed(4)}  p95 ${(pct(a, 95) / pct(b, 95)).toFixed(4)}  median of per-round ratios ${pct(pairRatios, 50).toFixed(4)}  (target ≤ 1.03)`);
