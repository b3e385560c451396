#!/usr/bin/env node
// Video fps of `cvopt predict` end to end (decode → preprocess → inference → postprocess [→ annotate → encode])
// against the engine alone on the very same frames (decoded and preprocessed beforehand, so only engine.run is
// timed), in one run, rounds interleaved so machine noise hits both alike. Reported: the best round of each, and the
// median over rounds of each round's own ratio (engine and predict measured back to back), which a shared machine's
// load swings disturb least.
// Build first: npx tsc -b
// Usage: node bench/predict.mjs [--model M.onnx]... [--video FILE] [--frames 120] [--rounds 2] [--threads 0]
// Default models: YOLOv8n (shared data) on car-detection.mp4; add the quickstart model with --model DIR/model.onnx.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { testDataDir } from '@cvopt/core';
import { createOrtEngine } from '@cvopt/engines';
import { preprocess, readVideoFrames } from '@cvopt/vision';
import { resolvePredictModel, runPredict } from '@cvopt/platform';

const data = testDataDir(resolve(import.meta.dirname, '..'));
const { values: a } = parseArgs({
  options: {
    model: { type: 'string', multiple: true },
    video: { type: 'string' },
    frames: { type: 'string', default: '120' },
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string', default: '0' },
  },
});
const models = a.model ?? (data ? [join(data, 'models/yolov8n_int8.onnx')] : []);
const video = a.video ?? (data ? join(data, 'video/car-detection.mp4') : undefined);
if (!models.length || !video) {
  console.log('skipped: no shared test data (set CVOPT_TEST_DATA) and no --model/--video given');
  process.exit(0);
}
const frames = Number(a.frames);
const threads = Number(a.threads);
const tmp = mkdtempSync(join(tmpdir(), 'cvopt-bench-predict-'));
const ctx = { signal: new AbortController().signal, workdir: tmp, log: () => {}, progress: () => {} };

async function engineAlone(model) {
  const r = await resolvePredictModel(model);
  // The same engine options predict uses (idle threads do not spin), so the two differ only by the pipeline around it.
  const engine = await createOrtEngine(r.modelPath, r.manifest, { spinning: false, ...(threads ? { intraOpNumThreads: threads } : {}) });
  const tensors = [];
  for await (const f of readVideoFrames(video, { maxFrames: frames })) tensors.push(await preprocess(f.image, r.manifest.preprocess));
  await engine.run(tensors[0].tensor, tensors[0].dims); // warm-up, as predict's first frame is not excluded either way
  const t0 = performance.now();
  for (const t of tensors) await engine.run(t.tensor, t.dims);
  const s = (performance.now() - t0) / 1000;
  await engine.close();
  return { fps: tensors.length / s, n: tensors.length, size: r.manifest.preprocess.size.join('x') };
}

// Steady state, as the engine-alone figure is taken after a warm-up run: from the first frame's result to the last
// (session creation, ffprobe and ONNX Runtime's first, slow run are left out; the whole-run figure is printed too).
async function endToEnd(model, save) {
  let first;
  let last;
  const timed = { ...ctx, progress: (p) => {
    last = performance.now();
    if (p.step === 1) first = last;
  } };
  const r = await runPredict({ model, source: video, maxFrames: frames, save, out: join(tmp, 'run'), ...(threads ? { intraOpNumThreads: threads } : {}) }, timed);
  return { fps: (r.frames - 1) / ((last - first) / 1000), whole: r.fps, n: r.frames, speed: r.speed };
}

console.log(`bench/predict: ${video}, first ${frames} frames, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ONNX Runtime threads ${threads || 'default'}, ${a.rounds} rounds`);
const rows = [];
for (const model of models) {
  const best = { engine: 0, e2e: 0, save: 0 };
  const ratios = [];
  const saveRatios = [];
  let size = '';
  let speed;
  for (let k = 0; k < Number(a.rounds); k++) {
    const e = await engineAlone(model);
    size = e.size;
    best.engine = Math.max(best.engine, e.fps);
    const p = await endToEnd(model, false);
    if (p.fps > best.e2e) {
      best.e2e = p.fps;
      speed = p.speed;
    }
    const sv = await endToEnd(model, true);
    best.save = Math.max(best.save, sv.fps);
    ratios.push(p.fps / e.fps);
    saveRatios.push(sv.fps / e.fps);
    console.log(`  round ${k + 1} ${model.slice(-40)}: engine ${e.fps.toFixed(1)} fps, predict ${p.fps.toFixed(1)} fps (${(p.fps / e.fps).toFixed(2)}; whole run ${p.whole.toFixed(1)}), +save ${sv.fps.toFixed(1)} fps (${(sv.fps / e.fps).toFixed(2)})`);
  }
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  rows.push({ model, size, ...best, speed, ratio: median(ratios), saveRatio: median(saveRatios) });
}
const pad = (s, n) => String(s).padStart(n);
console.log(`${'model'.padEnd(46)} ${pad('input', 8)} ${pad('engine fps', 11)} ${pad('predict fps', 12)} ${pad('+save fps', 10)} ${pad('ratio (median of rounds)', 25)} ${pad('+save ratio', 12)}`);
for (const r of rows) {
  console.log(`${r.model.slice(-46).padEnd(46)} ${pad(r.size, 8)} ${pad(r.engine.toFixed(1), 11)} ${pad(r.e2e.toFixed(1), 12)} ${pad(r.save.toFixed(1), 10)} ${pad(r.ratio.toFixed(2), 25)} ${pad(r.saveRatio.toFixed(2), 12)}`);
  console.log(`  predict stage times per frame (overlapping): ${r.speed.preprocess.toFixed(1)} ms decode+preprocess, ${r.speed.inference.toFixed(1)} ms inference, ${r.speed.postprocess.toFixed(1)} ms postprocess`);
}
rmSync(tmp, { recursive: true, force: true });
