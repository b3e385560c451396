#!/usr/bin/env node
// Engine hand-over under a busy event loop: the service's model (loadModel, the real worker-thread engine and
// scheduler) kept saturated by a closed loop of pre-decoded requests, while the main thread is busy `--busy` ms
// out of every `--busy` + `--idle` ms, standing in for the HTTP parsing, JSON and decode callbacks a loaded
// server runs there. Without prefetch an instance that finishes a batch idles until the main thread gets round to
// the result and sends more; with it (`enginePrefetch`, the default) the next batch is already in its inbox.
// Sides alternate A B B A per round so machine drift hits both alike; prints req/s per block, the medians and
// the ratio. No HTTP and no decoding: this isolates the hand-over, the load test measures the whole service.
//
//   npx tsc -b packages/runtime && node bench/prefetch.mjs [--model DIR] [--seconds 4] [--rounds 2]
//        [--busy 3] [--idle 3] [--threads 1] [--depth 32]
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel, parseRuntimeConfig, resolveModelSource } from '../packages/runtime/dist/index.js';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: join(ROOT, 'cvopt-quickstart/model') },
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '2' },
    busy: { type: 'string', default: '3' },
    idle: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1' },
    depth: { type: 'string', default: '32' },
  },
});
if (!existsSync(values.model)) {
  console.error(`${values.model} does not exist: run \`npm run quickstart\` first, or pass --model DIR (model.onnx + model.json)`);
  process.exit(2);
}
const seconds = Number(values.seconds);
const busyMs = Number(values.busy);
const idleMs = Number(values.idle);
const depth = Number(values.depth);

async function block(prefetch) {
  const config = parseRuntimeConfig({ concurrency: 1, intraOpThreads: Number(values.threads), enginePrefetch: prefetch, queueMax: depth * 2 });
  const model = await loadModel(resolveModelSource(values.model), { config });
  const len = model.sampleDims.reduce((a, b) => a * b, 1);
  const template = new Float32Array(len).fill(0.5);
  let stop = false;
  let done = 0;
  // The busy event loop: spin busyMs, yield idleMs, until the block ends.
  const spin = () => {
    if (stop) return;
    const t = performance.now();
    while (performance.now() - t < busyMs);
    setTimeout(spin, idleMs);
  };
  const user = async () => {
    while (!stop) {
      const x = model.engine.takeInput(len);
      x.set(template);
      await model.scheduler.submit(x, { deadlineMs: 600_000 });
      done++;
    }
  };
  const t0 = performance.now();
  spin();
  const users = Array.from({ length: depth }, user);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stop = true;
  const n = done;
  const wall = (performance.now() - t0) / 1000;
  await Promise.all(users);
  await model.engine.close();
  return n / wall;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const res = { on: [], off: [] };
console.log(`model ${values.model}; 1 instance × ${values.threads} thread(s); main thread busy ${busyMs} ms of every ${busyMs + idleMs} ms; ${depth} requests kept in flight; ${seconds} s blocks`);
for (let r = 0; r < Number(values.rounds); r++) {
  for (const side of ['on', 'off', 'off', 'on']) {
    const rate = await block(side === 'on');
    res[side].push(rate);
    console.log(`  round ${r + 1} prefetch ${side.padEnd(3)} ${rate.toFixed(1)} req/s`);
  }
}
const on = median(res.on);
const off = median(res.off);
console.log(`median req/s: prefetch on ${on.toFixed(1)}, off ${off.toFixed(1)}; on/off ${(on / off).toFixed(3)}`);
