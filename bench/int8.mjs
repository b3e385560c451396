#!/usr/bin/env node
// INT8 (static QDQ) vs FP32 on ONNX Runtime CPU, side by side in one run: latency of both on the same input,
// interleaved so machine noise hits both alike, and the accuracy change after the guard.
// Build first: npx tsc -b packages/onnx
// Default model: the real pretrained YOLOv8n of ../shared/data, rebuilt in PyTorch from its int8 ONNX and exported
// to FP32 at 640 (the same path `cvopt bench` takes for ort-cpu); `--model yolox` picks the real YOLOX-nano.
// Usage: node bench/int8.mjs [--model yolov8n|yolox|M.onnx] [--data data.yaml] [--method percentile|minmax|entropy] [--calib 64]
//        [--eval N] [--max-drop 0.01] [--runs 50] [--threads 0] [--activations uint8|int8] [--full-range]
//        [--int8 FILE]   (time FILE, e.g. what `cvopt quantize` wrote, against --model without quantizing again)
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { testDataDir } from '@cvopt/core';
import { quantizeOnnx } from '@cvopt/onnx';
import { realYolov8nFp32 } from './load/targets.mjs';

const data = testDataDir(resolve(import.meta.dirname, '..'));
const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: data ? 'yolov8n' : undefined },
    data: { type: 'string', default: data ? join(data, 'coco128-val/data.yaml') : undefined },
    method: { type: 'string', default: 'percentile' },
    calib: { type: 'string', default: '64' },
    eval: { type: 'string' },
    'max-drop': { type: 'string', default: '0.01' },
    runs: { type: 'string', default: '50' },
    threads: { type: 'string', default: '0' },
    activations: { type: 'string', default: 'uint8' },
    'full-range': { type: 'boolean', default: false },
    out: { type: 'string' },
    int8: { type: 'string' },
  },
});
if (!a.model || !a.data) {
  console.log('skipped: no shared test data (set CVOPT_TEST_DATA) and no --model/--data given');
  process.exit(0);
}
const threads = Number(a.threads);
if (a.model === 'yolox') a.model = join(data, 'models/yolox_nano.onnx');
else if (a.model === 'yolov8n') a.model = join(await realYolov8nFp32(data), 'model.onnx');
const out = a.int8 ?? a.out ?? join(mkdtempSync(join(tmpdir(), 'cvopt-int8-')), 'model.int8.onnx');
const t0 = performance.now();
// --int8 FILE: time a model `cvopt quantize` already wrote against the FP32 one, without quantizing again.
const report = a.int8 ? undefined : await quantizeOnnx(a.model, out, {
  data: a.data,
  method: a.method,
  calib: Number(a.calib),
  ...(a.eval ? { evalImages: Number(a.eval) } : {}),
  maxDrop: Number(a['max-drop']),
  activations: a.activations,
  ...(a['full-range'] ? { reduceRange: false } : {}),
  ...(threads ? { intraOpNumThreads: threads } : {}),
  onProgress: (stage, d, t) => {
    if (d === t || d % 32 === 0) process.stderr.write(`  ${stage} ${d}/${t}\n`);
  },
});
const quantS = (performance.now() - t0) / 1000;

async function session(path) {
  const so = { graphOptimizationLevel: 'all', executionMode: 'sequential' };
  if (threads) so.intraOpNumThreads = threads;
  return ort.InferenceSession.create(path, so);
}
const fp32 = await session(a.model);
const int8 = await session(out);
const name = fp32.inputNames[0];
const meta = fp32.inputMetadata?.[0];
const dims = (meta?.shape ?? [1, 3, 416, 416]).map((d) => (typeof d === 'number' ? d : 1));
const x = new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((p, q) => p * q, 1) }, (_, i) => (i * 7919) % 255), dims);
const runs = Number(a.runs);
const time = async (s) => {
  const t = performance.now();
  await s.run({ [name]: x });
  return performance.now() - t;
};
for (let i = 0; i < 5; i++) {
  await time(fp32);
  await time(int8);
}
const lf = [];
const li = [];
for (let i = 0; i < runs; i++) {
  lf.push(await time(fp32));
  li.push(await time(int8));
}
const stat = (xs) => {
  const s = [...xs].sort((p, q) => p - q);
  return { p50: s[Math.floor(s.length / 2)], mean: xs.reduce((p, q) => p + q, 0) / xs.length, min: s[0] };
};
const f = stat(lf);
const q = stat(li);
const pct = (v) => (v === undefined ? '-' : (v * 100).toFixed(2));
console.log(`machine: ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, onnxruntime-node ${ort.env.versions.common}, threads ${threads || 'default'}`);
console.log(`model: ${a.model}`);
if (report) console.log(`quantize: ${report.method}, activations ${report.activations}, ${report.calibrationImages} calibration images, ${report.evaluationImages} evaluation images, ${report.quantizedNodes} nodes quantized, ${report.excludedNodes.length} kept in FP32, ${quantS.toFixed(0)} s`);
console.log(`latency ms (n=${runs}, interleaved)   p50      mean     min`);
console.log(`  fp32                          ${f.p50.toFixed(2).padStart(7)}  ${f.mean.toFixed(2).padStart(7)}  ${f.min.toFixed(2).padStart(7)}`);
console.log(`  int8                          ${q.p50.toFixed(2).padStart(7)}  ${q.mean.toFixed(2).padStart(7)}  ${q.min.toFixed(2).padStart(7)}`);
console.log(`speed-up (p50): ${(f.p50 / q.p50).toFixed(2)}x   (mean): ${(f.mean / q.mean).toFixed(2)}x`);
// Accuracy and the guard come from quantizing; with --int8 FILE only the timing above is new.
if (report) {
  console.log(`${report.metric}: fp32 ${pct(report.fp32.map50 ?? report.fp32.top1)}  int8 ${pct(report.quantized.map50 ?? report.quantized.top1)}  drop ${report.drop.toFixed(4)}` + (report.withinBound === undefined ? '' : ` (bound ${a['max-drop']}: ${report.withinBound ? 'met' : 'NOT met'})`));
  console.log(`mAP50-95: fp32 ${pct(report.fp32.map5095)}  int8 ${pct(report.quantized.map5095)}`);
  console.log(`guard rounds: ${report.guard.map((g) => `${g.excluded.length} in fp32 -> drop ${g.drop.toFixed(4)}`).join('; ')}`);
  const worst = [...report.perClass].sort((p, r) => p.delta - r.delta).slice(0, 5);
  console.log(`largest per-class AP50 drops: ${worst.map((c) => `${c.name} ${(c.delta * 100).toFixed(1)} (${c.gts} gt)`).join(', ')}`);
}
console.log(`output: ${out}`);
