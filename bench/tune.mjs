#!/usr/bin/env node
// `cvopt tune` end to end with each of the five strategies at the default 5 generations, on a synthetic detection
// set: the real trainer, ONNX export and ONNX Runtime latency for every trial. Prints the time each strategy took
// and its best fitness next to the default individual's.
//
//   npx tsc -b packages/platform && node bench/tune.mjs [--images 120] [--imgsz 96] [--epochs 3] [--batch 16] [--population 4]
//        [--generations 5] [--target-latency-ms 3] [--out DIR]
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { synthDetection } from '@cvopt/datasets';
import { STRATEGY_NAMES } from '@cvopt/optimizer';
import { tune } from '@cvopt/platform';

const { values: a } = parseArgs({
  options: {
    images: { type: 'string', default: '120' },
    imgsz: { type: 'string', default: '96' },
    epochs: { type: 'string', default: '3' },
    population: { type: 'string', default: '4' },
    batch: { type: 'string', default: '16' },
    generations: { type: 'string', default: '5' },
    'target-latency-ms': { type: 'string', default: '3' },
    out: { type: 'string' },
  },
});
const root = resolve(a.out ?? mkdtempSync(join(tmpdir(), 'cvopt-bench-tune-')));
const imgsz = Number(a.imgsz);
const ds = await synthDetection({ out: join(root, 'data'), images: Number(a.images), imgsz, seed: 1 });
console.log(`machine: ${cpus()[0]?.model.trim()} x${cpus().length}; data: ${ds.train} train / ${ds.val} val images at ${imgsz} px; ` +
  `yolov8p, ${a.epochs} epochs per trial, population ${a.population}, ${a.generations} generations; out ${root}`);
const rows = [];
for (const strategy of STRATEGY_NAMES) {
  const t0 = performance.now();
  const r = await tune({
    model: 'yolov8p', data: ds.dataYaml, strategy, out: join(root, strategy), cacheDir: join(root, 'trial-cache'),
    generations: Number(a.generations), population: Number(a.population), epochs: Number(a.epochs), imgsz, batch: Number(a.batch),
    seed: 0, latencyRuns: 10, targetLatencyMs: Number(a['target-latency-ms']), maxParallel: 1,
    ...(strategy === 'constrained' ? { constraints: { maxLatencyMs: Number(a['target-latency-ms']) * 2 } } : {}),
  });
  const s = (performance.now() - t0) / 1000;
  const row = { strategy, seconds: s.toFixed(0), trials: r.trials.length, trained: r.trained, best: r.best.fitness?.toFixed(4), default: r.default?.fitness?.toFixed(4), bestMap50: r.best.metrics?.map50?.toFixed(4), bestP95Ms: r.best.p95Ms?.toFixed(2) };
  rows.push(row);
  console.log(`${strategy}: ${s.toFixed(0)} s, ${r.trials.length} trials (${r.trained} trained), best fitness ${row.best} (mAP50 ${row.bestMap50}, p95 ${row.bestP95Ms} ms) vs default ${row.default}`);
}
console.log('\n| strategy | seconds | trials | trained | best fitness | default fitness | best mAP50 | best p95 ms |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.strategy} | ${r.seconds} | ${r.trials} | ${r.trained} | ${r.best} | ${r.default} | ${r.bestMap50} | ${r.bestP95Ms} |`);
