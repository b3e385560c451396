#!/usr/bin/env node
// The ByteTrack-style tracker against a plain IoU-greedy tracker (no motion model, no second association) on
// synthetic sequences with crossings and occlusions, fed the same detections from a cvopt-trained detector, scored
// with CLEAR-MOT and IDF1 against the sequences' ground truth; then the tracker's own cost per frame at 100 objects.
// Build first: npx tsc -b
// Usage: node bench/track.mjs [--model DET.onnx] [--sequences 3] [--frames 200] [--objects 10] [--seed 1]
//        [--min-visibility 0] [--train-epochs 22] [--imgsz 256]
// Without --model it trains the quickstart's yolov8p on frames of 8 other synthetic sequences first (minutes on
// 2 cores) and exports it; pass the exported model.onnx with --model next time.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Rng } from '@cvopt/core';
import { synthTrack } from '@cvopt/datasets';
import { exportModel, runPredict, trainModel } from '@cvopt/platform';
import { ByteTracker, IouTracker, motMetrics, parseMot } from '@cvopt/vision';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string' },
    sequences: { type: 'string', default: '3' },
    frames: { type: 'string', default: '200' },
    objects: { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
    'min-visibility': { type: 'string', default: '0' },
    'train-epochs': { type: 'string', default: '22' },
    imgsz: { type: 'string', default: '256' },
    out: { type: 'string' },
  },
});
const work = a.out ?? mkdtempSync(join(tmpdir(), 'cvopt-bench-track-'));
mkdirSync(work, { recursive: true });
const ctx = { signal: new AbortController().signal, workdir: work, log: () => {}, progress: () => {} };

async function trainDetector() {
  // Training frames come from sequences with other seeds than the ones scored (1000+).
  const root = join(work, 'train-data');
  mkdirSync(join(root, 'images/train'), { recursive: true });
  mkdirSync(join(root, 'labels/train'), { recursive: true });
  for (let s = 1000; s < 1008; s++) {
    const r = await synthTrack({ out: join(work, `train-seq-${s}`), frames: 80, seed: s, objects: 6 + (s % 5) * 2, datasetEvery: 2 });
    for (const d of ['images', 'labels']) for (const f of readdirSync(join(r.root, d, 'train'))) cpSync(join(r.root, d, 'train', f), join(root, d, 'train', `s${s}_${f}`));
  }
  writeFileSync(join(root, 'data.yaml'), 'train: images/train\nval: images/train\nnc: 3\nnames:\n  0: circle\n  1: square\n  2: triangle\n');
  console.log(`training yolov8p for ${a['train-epochs']} epochs at ${a.imgsz} px on 320 frames of 8 training sequences…`);
  const t = await trainModel({ model: 'yolov8p', data: join(root, 'data.yaml'), out: join(work, 'train'), epochs: Number(a['train-epochs']), imgsz: Number(a.imgsz), batch: 16, seed: 0, device: 'cpu' });
  const e = await exportModel({ checkpoint: t.best, out: join(work, 'model', 'model.onnx'), dynamic: true });
  console.log(`detector: ${e.onnx} (train mAP50 ${t.metrics.map50?.toFixed(3)})`);
  return e.onnx;
}

const model = a.model ?? (await trainDetector());
const minVisibility = Number(a['min-visibility']);
const totals = { byte: [], iou: [] };
console.log(`bench/track: ${a.sequences} sequences × ${a.frames} frames, ${a.objects} objects, 2 occluding bars, detector ${model}`);
console.log(`${'sequence'.padEnd(10)} ${'tracker'.padEnd(10)} ${'MOTA'.padStart(6)} ${'IDF1'.padStart(6)} ${'IDSW'.padStart(5)} ${'Frag'.padStart(5)} ${'FP'.padStart(5)} ${'FN'.padStart(5)} ${'ids'.padStart(4)}`);
for (let k = 0; k < Number(a.sequences); k++) {
  const seq = await synthTrack({ out: join(work, `seq-${k}`), frames: Number(a.frames), objects: Number(a.objects), seed: Number(a.seed) + k });
  // One detector pass, both trackers fed the same detections (down to the low-score ones ByteTrack's second stage uses).
  const r = await runPredict({ model, source: seq.video, conf: 0.1, saveJson: true, out: join(work, `det-${k}`), existOk: true }, ctx);
  const byFrame = new Map();
  for (const d of JSON.parse(readFileSync(r.json, 'utf8'))) {
    const [x, y, w, h] = d.bbox;
    if (!byFrame.has(d.frame)) byFrame.set(d.frame, []);
    byFrame.get(d.frame).push({ box: [x, y, x + w, y + h], score: d.score, classId: d.category_id });
  }
  const gt = parseMot(readFileSync(seq.gt, 'utf8'));
  for (const [name, tracker] of [['byte', new ByteTracker()], ['iou', new IouTracker()]]) {
    const rows = [];
    for (let f = 1; f <= seq.frames; f++) {
      for (const t of tracker.update(byFrame.get(f) ?? [])) rows.push({ frame: f, id: t.trackId, box: t.box, conf: t.score, classId: t.classId, visibility: -1 });
    }
    const m = motMetrics(gt, rows, { minVisibility });
    totals[name].push(m);
    console.log(`${`seq ${Number(a.seed) + k}`.padEnd(10)} ${(name === 'byte' ? 'ByteTrack' : 'IoU-greedy').padEnd(10)} ${(m.mota * 100).toFixed(1).padStart(6)} ${(m.idf1 * 100).toFixed(1).padStart(6)} ${String(m.idsw).padStart(5)} ${String(m.frag).padStart(5)} ${String(m.fp).padStart(5)} ${String(m.fn).padStart(5)} ${String(m.hypIds).padStart(4)}`);
  }
}
const sum = (ms, f) => ms.reduce((s, m) => s + m[f], 0);
for (const [name, ms] of Object.entries(totals)) {
  const gtN = sum(ms, 'gt');
  const mota = 1 - (sum(ms, 'fn') + sum(ms, 'fp') + sum(ms, 'idsw')) / gtN;
  const idtp = sum(ms, 'idtp');
  const idf1 = (2 * idtp) / (2 * idtp + sum(ms, 'idfp') + sum(ms, 'idfn'));
  console.log(`${'all'.padEnd(10)} ${(name === 'byte' ? 'ByteTrack' : 'IoU-greedy').padEnd(10)} ${(mota * 100).toFixed(1).padStart(6)} ${(idf1 * 100).toFixed(1).padStart(6)} ${String(sum(ms, 'idsw')).padStart(5)} ${String(sum(ms, 'frag')).padStart(5)} ${String(sum(ms, 'fp')).padStart(5)} ${String(sum(ms, 'fn')).padStart(5)}`);
}

// Tracker cost alone: 100 objects moving at constant velocity with jitter, detections with random scores, 300 frames.
function overhead(make, n = 100, frames = 300) {
  const rng = new Rng(5);
  const objs = Array.from({ length: n }, () => ({ x: rng.uniform(0, 1880), y: rng.uniform(0, 1040), vx: rng.uniform(-4, 4), vy: rng.uniform(-4, 4), s: rng.uniform(20, 60) }));
  const seqDets = [];
  for (let f = 0; f < frames; f++) {
    const dets = [];
    for (const o of objs) {
      o.x = (o.x + o.vx + 1920) % 1920;
      o.y = (o.y + o.vy + 1080) % 1080;
      if (rng.float() < 0.05) continue; // missed detections
      const j = () => rng.normal(0, 1);
      dets.push({ box: [o.x + j(), o.y + j(), o.x + o.s + j(), o.y + o.s + j()], score: rng.uniform(0.05, 1), classId: 0 });
    }
    seqDets.push(dets);
  }
  // Wall time per frame is at the mercy of the scheduler on a shared machine (a 0.2 ms call that straddles a time
  // slice reads as 20 ms), so the cost is also read as this process's CPU time over all frames.
  const times = [];
  let cpuUs = 0;
  // The first pass warms the JIT up and is not counted.
  for (let rep = 0; rep < 4; rep++) {
    const t = make();
    const c0 = process.cpuUsage();
    for (const dets of seqDets) {
      const t0 = performance.now();
      t.update(dets);
      if (rep > 0) times.push(performance.now() - t0);
    }
    const c = process.cpuUsage(c0);
    if (rep > 0) cpuUs += c.user + c.system;
  }
  times.sort((x, y) => x - y);
  return { cpu: cpuUs / 1000 / times.length, p50: times[Math.floor(times.length / 2)], p95: times[Math.floor(times.length * 0.95)] };
}
for (const [name, make] of [['ByteTrack', () => new ByteTracker()], ['IoU-greedy', () => new IouTracker()]]) {
  const o = overhead(make);
  console.log(`tracker cost at 100 objects, ${name}: ${o.cpu.toFixed(3)} ms CPU per frame (mean); wall p50 ${o.p50.toFixed(3)} ms, p95 ${o.p95.toFixed(3)} ms`);
}
