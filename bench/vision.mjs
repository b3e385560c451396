// Vision hot paths: image → tensor, YOLOv8 decode + NMS, full mAP evaluation, video decode.
//
//   npx tsc -b packages/vision && node bench/vision.mjs
//
// Prints wall and CPU-time percentiles. Needs the shared test data (CVOPT_TEST_DATA or ../shared/data) for the real JPEG, coco128-val labels and
// video; without it, (a) falls back to a synthetic JPEG and (c)/(d) are skipped.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Rng, testDataDir } from '@cvopt/core';
import { evaluateDetections, postprocessDetections, preprocess, readVideoFrames } from '@cvopt/vision';

const dataDir = testDataDir();
const rng = new Rng(2024);

// Wall time is what a caller waits; CPU time (user + system of this process, all threads) is what the work
// costs, and stays meaningful on a shared, overloaded machine where wall time mostly measures waiting.
function stats({ wall, cpu }) {
  const q = (xs, p) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(p * s.length))];
  };
  return `wall p50 ${q(wall, 0.5).toFixed(2)} p95 ${q(wall, 0.95).toFixed(2)} min ${q(wall, 0).toFixed(2)} ms | cpu p50 ${q(cpu, 0.5).toFixed(2)} p95 ${q(cpu, 0.95).toFixed(2)} ms (n=${wall.length})`;
}

async function time(fn, n, warmup = Math.ceil(n / 10)) {
  for (let i = 0; i < warmup; i++) await fn();
  const wall = [];
  const cpu = [];
  for (let i = 0; i < n; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wall, cpu };
}

const yoloPre = { resize: 'letterbox', size: [640, 640], padValue: 114, scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'RGB', padPosition: 'center', stride: 32 };

// (a) decode + letterbox + pack, 640×480 JPEG → 1×3×640×640
{
  const real = dataDir && join(dataDir, 'coco128-val/images/val2017/000000001000.jpg');
  let jpeg;
  if (real && existsSync(real)) jpeg = readFileSync(real);
  else {
    const raw = Buffer.alloc(640 * 480 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = rng.int(0, 255);
    jpeg = await sharp(raw, { raw: { width: 640, height: 480, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  }
  const meta = await sharp(jpeg).metadata();
  console.log(`(a) preprocess ${meta.width}x${meta.height} JPEG (${(jpeg.length / 1024).toFixed(0)} KiB${real ? ', coco128 000000001000.jpg' : ', synthetic'}) → 1x3x640x640`);
  console.log(`    fresh tensor: ${stats(await time(() => preprocess(jpeg, yoloPre), 200))}`);
  const out = new Float32Array(3 * 640 * 640);
  console.log(`    into a reused buffer: ${stats(await time(() => preprocess(jpeg, yoloPre, { out }), 200))}`);
  console.log(`    sharp decode alone (reference): ${stats(await time(() => sharp(jpeg).raw().toBuffer(), 200))}`);
  // Already-decoded frames (video, datasets) take the JS resampling path.
  const frame = { data: new Uint8Array(await sharp(jpeg).resize(768, 432, { fit: 'fill' }).raw().toBuffer()), width: 768, height: 432 };
  console.log(`    RgbImage 768x432 (a video frame) → 640x640: ${stats(await time(() => preprocess(frame, yoloPre), 200))}`);
  const big = await sharp(jpeg).resize(1920, 1440).jpeg({ quality: 90 }).toBuffer();
  console.log(`    same image at 1920x1440 (shrink-on-load): ${stats(await time(() => preprocess(big, yoloPre), 60))}`);
}

// (b) YOLOv8 decode + NMS on [1, 84, 8400] with a realistic score distribution
{
  const N = 8400;
  const nc = 80;
  const out = new Float32Array((4 + nc) * N);
  // Background anchors: small sigmoid scores, most under 0.01.
  for (let c = 0; c < nc; c++) for (let n = 0; n < N; n++) out[(4 + c) * N + n] = rng.float() ** 6 * 0.05;
  for (let n = 0; n < N; n++) {
    out[n] = rng.uniform(0, 640);
    out[N + n] = rng.uniform(0, 640);
    out[2 * N + n] = rng.uniform(8, 200);
    out[3 * N + n] = rng.uniform(8, 200);
  }
  // 12 objects, each lit up on ~25 neighbouring anchors with jittered boxes and scores 0.3–0.9.
  for (let o = 0; o < 12; o++) {
    const cx = rng.uniform(60, 580);
    const cy = rng.uniform(60, 580);
    const w = rng.uniform(20, 200);
    const h = rng.uniform(20, 200);
    const cls = rng.int(0, nc - 1);
    for (let k = 0; k < 25; k++) {
      const n = rng.int(0, N - 1);
      out[n] = cx + rng.normal(0, 3);
      out[N + n] = cy + rng.normal(0, 3);
      out[2 * N + n] = w * (1 + rng.normal(0, 0.05));
      out[3 * N + n] = h * (1 + rng.normal(0, 0.05));
      out[(4 + cls) * N + n] = rng.uniform(0.3, 0.9);
    }
  }
  const manifest = { classNames: Array.from({ length: nc }, (_, i) => `c${i}`), preprocess: yoloPre, output: { name: 'output0', format: 'yolov8', shape: [1, 84, N], scoresActivated: true } };
  const meta = { scale: 1, padX: 0, padY: 80, origWidth: 640, origHeight: 480 };
  let kept = 0;
  const ms = await time(() => {
    kept = postprocessDetections(out, [1, 84, N], manifest, meta, { confThreshold: 0.25, iouThreshold: 0.7 }).length;
  }, 300);
  console.log(`(b) YOLOv8 decode + NMS [1,84,8400], conf 0.25 (${kept} kept): ${stats(ms)}`);
  const ms2 = await time(() => {
    kept = postprocessDetections(out, [1, 84, N], manifest, meta, { confThreshold: 0.001, iouThreshold: 0.7, maxDetections: 300 }).length;
  }, 100);
  console.log(`    eval setting conf 0.001 (${kept} kept): ${stats(ms2)}`);
}

// (c) full mAP evaluation of coco128-val: GT from the labels, detections = jittered GT + false positives
if (dataDir && existsSync(join(dataDir, 'coco128-val/labels/val2017'))) {
  const labelDir = join(dataDir, 'coco128-val/labels/val2017');
  const imageDir = join(dataDir, 'coco128-val/images/val2017');
  const images = [];
  let nGt = 0;
  let nDet = 0;
  for (const f of readdirSync(imageDir).sort()) {
    const m = await sharp(join(imageDir, f)).metadata();
    const W = m.width;
    const H = m.height;
    const lf = join(labelDir, f.replace(/\.\w+$/, '.txt'));
    const gts = existsSync(lf)
      ? readFileSync(lf, 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => {
            const [c, cx, cy, w, h] = l.trim().split(/\s+/).map(Number);
            return { classId: c, box: [(cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H] };
          })
      : [];
    const dets = [];
    for (const g of gts) {
      if (rng.bool(0.1)) continue;
      const bw = g.box[2] - g.box[0];
      const bh = g.box[3] - g.box[1];
      const j = (s) => rng.normal(0, 0.06 * s);
      dets.push({ box: [g.box[0] + j(bw), g.box[1] + j(bh), g.box[2] + j(bw), g.box[3] + j(bh)], score: rng.uniform(0.3, 0.95), classId: rng.bool(0.05) ? rng.int(0, 79) : g.classId });
    }
    while (dets.length < 300) {
      const x = rng.uniform(0, W - 20);
      const y = rng.uniform(0, H - 20);
      dets.push({ box: [x, y, x + rng.uniform(10, W / 3), y + rng.uniform(10, H / 3)], score: rng.float() ** 3 * 0.5, classId: rng.int(0, 79) });
    }
    nGt += gts.length;
    nDet += dets.length;
    images.push({ imageId: f, gts, dets });
  }
  let m;
  const ms = await time(() => {
    m = evaluateDetections(images, { numClasses: 80 });
  }, 15, 2);
  console.log(`(c) evaluateDetections coco128-val: ${images.length} images, ${nGt} GT, ${nDet} dets → mAP50 ${m.map50.toFixed(4)} mAP50-95 ${m.map5095.toFixed(4)}`);
  console.log(`    ${stats(ms)}`);
} else console.log('(c) skipped: coco128-val not found');

// (d) video decode throughput
if (dataDir && existsSync(join(dataDir, 'video/car-detection.mp4'))) {
  const t0 = performance.now();
  let n = 0;
  for await (const _ of readVideoFrames(join(dataDir, 'video/car-detection.mp4'))) n++;
  const s = (performance.now() - t0) / 1000;
  console.log(`(d) readVideoFrames car-detection.mp4 768x432: ${n} frames in ${s.toFixed(2)} s = ${(n / s).toFixed(0)} frames/s`);
} else console.log('(d) skipped: video not found');
