#!/usr/bin/env node
// One engine's run time back to back (how `cvopt bench` times it) against the same runs with an idle gap before
// each (how a service at one user sees it: the request's HTTP, decode and answer sit between two runs), with ONNX
// Runtime's intra-op threads spinning (its own default, `cvopt bench --spinning`) and not (what the runtime runs and
// `cvopt bench` now times). After a gap a run starts with the model out of the core's cache (and, on several
// threads, the pool asleep); for a model whose run takes a few milliseconds that is a large share of it.
//
//   npx tsc -b && node bench/engine-idle.mjs [--model cvopt-quickstart/artifact/model.onnx] [--gaps 0,2,10] [--runs 300] [--threads 0]
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createOrtEngine, readManifest } from '@cvopt/engines';
import { summarize } from './load/stats.mjs';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'cvopt-quickstart/artifact/model.onnx' },
    gaps: { type: 'string', default: '0,2,10' },
    runs: { type: 'string', default: '300' },
    threads: { type: 'string', default: '0' },
  },
});
if (!existsSync(a.model)) {
  console.log(`no model at ${a.model}: run \`npm run quickstart\` first, or pass --model PATH`);
  process.exit(1);
}
const manifest = readManifest(a.model);
const [h, w] = manifest.preprocess.size;
const dims = [1, 3, h, w];
const x = new Float32Array(3 * h * w).fill(0.5);
const runs = Number(a.runs);
console.log(`model ${a.model} (${h}x${w}), ${runs} runs each, intra-op threads ${Number(a.threads) || 'ONNX Runtime default'}`);
console.log('spinning | gap ms | p50 ms | p95 ms');
for (const spinning of [true, false]) {
  const engine = await createOrtEngine(a.model, manifest, { engine: 'ort-cpu', spinning, ...(Number(a.threads) > 0 ? { intraOpNumThreads: Number(a.threads) } : {}) });
  for (let i = 0; i < 50; i++) await engine.run(x, dims);
  for (const gap of a.gaps.split(',').map(Number)) {
    const t = [];
    for (let i = 0; i < runs; i++) {
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      const t0 = performance.now();
      await engine.run(x, dims);
      t.push(performance.now() - t0);
    }
    const s = summarize(t);
    console.log(`${String(spinning).padEnd(8)} | ${String(gap).padStart(6)} | ${s.p50.toFixed(2).padStart(6)} | ${s.p95.toFixed(2).padStart(6)}`);
  }
  await engine.close();
}
