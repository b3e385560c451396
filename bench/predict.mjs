#!/usr/bin/env node
// Video fps of `cvopt predict` end to end (decode → preprocess → inference → postprocess [→ annotate → encode])
// against the engine alone on the very same frames (decoded and preprocessed beforehand, so only engine.run is
// timed), at the same batch, with the same engine options. Each round times predict between two engine-alone passes
// and divides by their mean, so load that drifts on a shared machine hits both sides alike; reported: the best of
// each, and the median over rounds of those ratios.
// Build first: npx tsc -b
// Usage: node bench/predict.mjs [--model M]... [--quickstart DIR] [--no-quickstart] [--video FILE]
//        [--frames N | --seconds 3] [--rounds 3] [--batch 1] [--threads 0]
// Default models: the shared YOLOv8n (CVOPT_TEST_DATA) and the quickstart's model: --quickstart DIR, else
// ./cvopt-quickstart (what `npm run quickstart` writes), else one built by the quickstart handler with its defaults,
// cached under $CVOPT_CACHE_DIR/quickstart/<key of its inputs>/ (minutes once; instant after).
// The quickstart's model is its packaged winner (artifact/, run on the artifact's engine), else model/model.onnx.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, homedir, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { testDataDir } from '@cvopt/core';
import { createOrtEngine } from '@cvopt/engines';
import { preprocess, probeVideo, readPreparedFrames, readVideoFrames } from '@cvopt/vision';
import { PLATFORM_HANDLERS, QUICKSTART_DEFAULTS, openPredictEngine, resolvePredictModel, runLocal, runPredict } from '@cvopt/platform';
import { stealNote, stealShare } from './common.mjs';

const root = resolve(import.meta.dirname, '..');
const data = testDataDir(root);
const { values: a } = parseArgs({
  options: {
    model: { type: 'string', multiple: true },
    quickstart: { type: 'string' },
    'no-quickstart': { type: 'boolean', default: false },
    video: { type: 'string' },
    frames: { type: 'string' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    batch: { type: 'string', default: '1' },
    threads: { type: 'string', default: '0' },
  },
});
const video = a.video ?? (data ? join(data, 'video/car-detection.mp4') : undefined);
if (!video) {
  console.log('skipped: no shared test data (set CVOPT_TEST_DATA) and no --video given');
  process.exit(0);
}
const threads = Number(a.threads);
const batch = Number(a.batch);
const tmp = mkdtempSync(join(tmpdir(), 'cvopt-bench-predict-'));
const ctx = { signal: new AbortController().signal, workdir: tmp, log: () => {}, progress: () => {} };

/** The quickstart output's model: its packaged winner when there is one, else the exported FP32 model. */
function quickstartModelIn(dir) {
  for (const p of [join(dir, 'artifact'), join(dir, 'model', 'model.onnx')]) if (existsSync(p.endsWith('.onnx') ? p : join(p, 'model.onnx'))) return p;
  return undefined;
}

/** --quickstart DIR, ./cvopt-quickstart, or the cached build of the quickstart's defaults (built now if absent). */
async function quickstartModel() {
  if (a.quickstart) {
    const m = quickstartModelIn(a.quickstart);
    if (!m) throw new Error(`--quickstart ${a.quickstart}: no artifact/model.onnx or model/model.onnx there (is it a \`cvopt quickstart --out\` folder?)`);
    return m;
  }
  const local = quickstartModelIn(join(root, 'cvopt-quickstart'));
  if (local) return local;
  // Keyed on what decides the model: the quickstart's defaults and this cvopt's version.
  const version = JSON.parse(readFileSync(join(root, 'packages/platform/package.json'), 'utf8')).version;
  const key = createHash('sha256').update(JSON.stringify({ ...QUICKSTART_DEFAULTS, version })).digest('hex').slice(0, 16);
  const dir = join(process.env.CVOPT_CACHE_DIR ?? join(homedir(), '.cache', 'cvopt'), 'quickstart', key);
  const done = join(dir, 'quickstart.json');
  if (!existsSync(done)) {
    rmSync(dir, { recursive: true, force: true }); // a build cut short leaves no half-trained model behind
    console.log(`no quickstart output found: running the quickstart handler with its defaults into ${dir} (minutes, once)`);
    const r = await runLocal(PLATFORM_HANDLERS.quickstart, { out: dir }, {
      onProgress: (p) => {
        if (p.stage === 'step') console.log(`  [${p.step}/${p.total}] ${p.message}`);
      },
    });
    writeFileSync(done, JSON.stringify(r, null, 2));
  }
  return quickstartModelIn(dir);
}

const models = [...(a.model ?? (data ? [join(data, 'models/yolov8n_int8.onnx')] : []))];
if (!a['no-quickstart']) models.push(await quickstartModel());

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const fileOf = (r) => `${r.modelPath} (${(statSync(r.modelPath).size / 1e6).toFixed(2)} MB, ${r.engine}, input ${r.manifest.preprocess.size.join('x')})`;

/** The engine alone, one session reused: `pass()` times engine.run over the prepared batches after a warm-up. */
async function engineAlone(r, frames, t) {
  const engine = await createOrtEngine(r.modelPath, r.manifest, { engine: r.engine, spinning: false, ...(t ? { intraOpNumThreads: t } : {}) });
  if (batch > 1 && !engine.describe().dynamicBatch) {
    await engine.close();
    return undefined;
  }
  const singles = [];
  for await (const f of readVideoFrames(video, { maxFrames: frames })) singles.push(await preprocess(f.image, r.manifest.preprocess));
  // Batches as predict makes them: `batch` frames in one tensor, the last one partial.
  const [, c, h, w] = singles[0].dims;
  const batches = [];
  for (let i = 0; i < singles.length; i += batch) {
    const group = singles.slice(i, i + batch);
    const tensor = new Float32Array(group.length * c * h * w);
    group.forEach((s, k) => tensor.set(s.tensor, k * c * h * w));
    batches.push({ tensor, dims: [group.length, c, h, w] });
  }
  await engine.run(batches[0].tensor, batches[0].dims);
  return {
    n: singles.length,
    async pass() {
      const t0 = performance.now();
      for (const b of batches) await engine.run(b.tensor, b.dims);
      return singles.length / ((performance.now() - t0) / 1000);
    },
    close: () => engine.close(),
  };
}

/**
 * CPU of the decode side alone (the decode thread: ffmpeg's output read and letterboxed; the consumer only takes
 * the tensors), per frame in steady state (from the 10th frame: thread start-up and the first, unoptimised frames left
 * out), from process.cpuUsage: ffmpeg is another process and not counted. Best of three passes.
 */
async function decodeCpu(r, frames) {
  let best = Infinity;
  for (let k = 0; k < 3 && frames > 20; k++) {
    let c0;
    let n = 0;
    for await (const f of readPreparedFrames(video, { spec: r.manifest.preprocess, maxFrames: frames })) {
      f.release(); // as predict does once the frame's run is over: its buffer packs a later frame
      if (f.index === 9) c0 = process.cpuUsage();
      else if (c0) n++;
    }
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1000 / n);
  }
  return best === Infinity ? 'n/a' : `${best.toFixed(2)} ms`;
}

/** The intra-op threads predict picks for this model when not told (openPredictEngine, as runPredict calls it). */
async function chosenThreads(r) {
  const choice = await openPredictEngine(r.modelPath, r.manifest, r.engine, { spinning: false });
  await choice.engine.close();
  return choice.threads;
}

// Steady state, as the engine-alone figure is taken after a warm-up run: from the first frame's result to the last
// (session creation, ffprobe and ONNX Runtime's first, slow run are left out; the whole-run figure is printed too).
async function endToEnd(model, frames, save, t) {
  let first;
  let last;
  const timed = { ...ctx, progress: (p) => {
    last = performance.now();
    if (p.step === 1) first = last;
  } };
  const r = await runPredict({ model, source: video, maxFrames: frames, save, batch, out: join(tmp, 'run'), ...(t ? { intraOpNumThreads: t } : {}) }, timed);
  return { fps: (r.frames - 1) / ((last - first) / 1000), whole: r.fps, n: r.frames, speed: r.speed };
}

const info = await probeVideo(video);
const steal0 = stealShare();
console.log(`bench/predict: ${video} (${info.width}x${info.height}, ${info.frames} frames), ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}, ONNX Runtime threads ${threads || 'default'}, batch ${batch}, ${a.rounds} rounds`);
const rows = [];
for (const model of models) {
  const r = await resolvePredictModel(model);
  // The intra-op threads: --threads, else what predict itself chooses for this model (one thread when one is as
  // fast, ONNX Runtime's choice otherwise), made by predict's own chooser; every pass below, predict's and the
  // engine alone's, then runs with it.
  const t = threads || (await chosenThreads(r));
  // Enough frames for about --seconds of engine time (estimated on 10 frames), within the video.
  let frames = Number(a.frames ?? 0);
  if (!frames) {
    const probe = await engineAlone(r, 10, t);
    if (!probe) {
      console.log(`model ${model}: skipped, its batch is fixed (--batch ${batch} needs a dynamic-batch model)`);
      continue;
    }
    const fps = await probe.pass();
    await probe.close();
    frames = Math.max(30, Math.min(info.frames, Math.round(fps * Number(a.seconds))));
  }
  console.log(`model ${model}: ${fileOf(r)}, first ${frames} frames, ONNX Runtime intra-op threads ${t || 'default'}${threads ? ' (--threads)' : ' (predict\'s choice)'}; decode side alone: ${await decodeCpu(r, frames)} CPU a frame in this process (ffmpeg not counted)`);
  const e = await engineAlone(r, frames, t);
  if (!e) {
    console.log(`model ${model}: skipped, its batch is fixed (--batch ${batch} needs a dynamic-batch model)`);
    continue;
  }
  const best = { engine: 0, e2e: 0, save: 0 };
  const ratios = [];
  const saveRatios = [];
  let speed;
  let before = await e.pass();
  for (let k = 0; k < Number(a.rounds); k++) {
    const p = await endToEnd(model, frames, false, t);
    const mid = await e.pass();
    const sv = await endToEnd(model, frames, true, t);
    const after = await e.pass();
    best.engine = Math.max(best.engine, before, mid, after);
    if (p.fps > best.e2e) {
      best.e2e = p.fps;
      speed = p.speed;
    }
    best.save = Math.max(best.save, sv.fps);
    const ratio = p.fps / ((before + mid) / 2);
    const saveRatio = sv.fps / ((mid + after) / 2);
    ratios.push(ratio);
    saveRatios.push(saveRatio);
    console.log(`  round ${k + 1}: engine ${before.toFixed(1)} | predict ${p.fps.toFixed(1)} fps (${ratio.toFixed(2)}; whole run ${p.whole.toFixed(1)}; waited ${p.speed.waiting.toFixed(2)} ms/frame for frames) | engine ${mid.toFixed(1)} | +save ${sv.fps.toFixed(1)} fps (${saveRatio.toFixed(2)}) | engine ${after.toFixed(1)}`);
    before = after;
  }
  await e.close();
  rows.push({ model, size: r.manifest.preprocess.size.join('x'), frames, ...best, speed, ratio: median(ratios), saveRatio: median(saveRatios) });
}
const pad = (s, n) => String(s).padStart(n);
console.log(`${'model'.padEnd(46)} ${pad('input', 8)} ${pad('frames', 6)} ${pad('engine fps', 11)} ${pad('predict fps', 12)} ${pad('+save fps', 10)} ${pad('ratio (median of rounds)', 25)} ${pad('+save ratio', 12)}`);
for (const r of rows) {
  console.log(`${r.model.slice(-46).padEnd(46)} ${pad(r.size, 8)} ${pad(r.frames, 6)} ${pad(r.engine.toFixed(1), 11)} ${pad(r.e2e.toFixed(1), 12)} ${pad(r.save.toFixed(1), 10)} ${pad(r.ratio.toFixed(2), 25)} ${pad(r.saveRatio.toFixed(2), 12)}`);
  console.log(`  predict stage times per frame (overlapping): ${r.speed.preprocess.toFixed(1)} ms decode+preprocess, ${r.speed.inference.toFixed(1)} ms inference, ${r.speed.postprocess.toFixed(1)} ms postprocess; inference waited ${r.speed.waiting.toFixed(2)} ms a frame for decoded frames`);
}
console.log(`load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}${stealNote(steal0)}`);
rmSync(tmp, { recursive: true, force: true });
