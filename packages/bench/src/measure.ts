import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CvoptError, usableCpus, type AccuracyFigures, type ClassScore, type Detection, type LatencyStats, type ModelManifest } from '@cvopt/core';
import { SERVED_SPINNING, createOrtEngine, type Engine } from '@cvopt/engines';
import { runPytorchBench } from '@cvopt/trainer-client';
import { AccuracyMeter, type AccuracyResult } from '@cvopt/onnx';
import { postprocessClassification, postprocessDetections, preprocess, readVideoFrames, type LetterboxMeta, type PreprocessResult, type VideoFrame } from '@cvopt/vision';
import { isUnstable, latencyStats } from './stats.js';
import type { ChildResult, MeasureSettings, ReadyTarget } from './types.js';

/** Confidence floor for video, where only shown detections matter (accuracy follows the settings' protocol). */
const VIDEO_CONF = 0.25;
const NMS_IOU = 0.7;

type Figures = Extract<ChildResult, { ok: true }>['figures'];
type Output = { data: Float32Array; dims: number[] };

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** A deterministic mid-grey input when no dataset image is available. */
function greyInput(manifest: ModelManifest): PreprocessResult {
  const [h, w] = manifest.preprocess.size;
  const p = manifest.preprocess;
  const tensor = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) tensor.fill((114 * p.scale - (p.mean[c] ?? 0)) / (p.std[c] ?? 1), c * h * w, (c + 1) * h * w);
  return { tensor, dims: [1, 3, h, w], meta: { scale: 1, padX: 0, padY: 0, origWidth: w, origHeight: h } } as PreprocessResult;
}

function decode(manifest: ModelManifest, out: Output, meta: LetterboxMeta, conf: number, batchIndex = 0): Detection[] | ClassScore[] {
  if (manifest.task === 'detect') return postprocessDetections(out.data, out.dims, manifest, meta, { confThreshold: conf, iouThreshold: NMS_IOU }, batchIndex);
  return postprocessClassification(out.data, out.dims, manifest, 5, batchIndex);
}

/** Accuracy figures for the report from the one evaluator's result. */
function figures(r: AccuracyResult | undefined): AccuracyFigures | undefined {
  if (!r || r.images === 0) return undefined;
  if (r.task === 'detect') return { map50: round(r.map50 ?? 0, 4), map5095: round(r.map5095 ?? 0, 4), images: r.images, ...(r.protocol ? { protocol: r.protocol } : {}) };
  return { top1: round(r.top1 ?? 0, 4), top5: round(r.top5 ?? 0, 4), images: r.images };
}

/** Single-image latency, repeated while unstable; the flag says what happened. */
async function latencyLoop(runOnce: () => Promise<unknown>, s: MeasureSettings): Promise<{ stats: LatencyStats; flags: string[] }> {
  let best: { stats: LatencyStats; unstable?: string } | undefined;
  for (let attempt = 0; attempt <= s.repeatsIfUnstable; attempt++) {
    for (let i = 0; i < s.warmup; i++) await runOnce();
    const samples: number[] = [];
    const start = performance.now();
    while (samples.length < s.iters || performance.now() - start < s.minTimeMs) {
      const t0 = performance.now();
      await runOnce();
      samples.push(performance.now() - t0);
    }
    const stats = latencyStats(samples);
    const unstable = isUnstable(stats);
    const tail = (x: { stats: LatencyStats }) => x.stats.p99 / x.stats.p50;
    if (!best || tail({ stats }) < tail(best)) best = unstable ? { stats, unstable } : { stats };
    if (!unstable) {
      return { stats, flags: attempt ? [`latency stable on try ${attempt + 1} of ${s.repeatsIfUnstable + 1}`] : [] };
    }
  }
  const b = best as { stats: LatencyStats; unstable?: string };
  return { stats: b.stats, flags: [`${b.unstable ?? 'unstable'} after ${s.repeatsIfUnstable + 1} tries (most stable kept)`] };
}

function cpuPercent(before: NodeJS.CpuUsage, wallMs: number): number {
  const d = process.cpuUsage(before);
  return round(((d.user + d.system) / 1000 / Math.max(wallMs, 1e-6)) * 100, 1);
}

function peakRssMb(): number {
  return round(process.resourceUsage().maxRSS / 1024, 1);
}

/** Preprocess the labelled images once (timed), so every engine sees identical tensors. */
async function prepareImages(manifest: ModelManifest, s: MeasureSettings): Promise<{ pre: PreprocessResult[]; preMs: number[] }> {
  const pre: PreprocessResult[] = [];
  const preMs: number[] = [];
  for (const img of s.images) {
    const t0 = performance.now();
    pre.push(await preprocess(img.image, manifest.preprocess));
    preMs.push(performance.now() - t0);
  }
  return { pre, preMs };
}

function tile(x: Float32Array, b: number): Float32Array {
  const out = new Float32Array(x.length * b);
  for (let i = 0; i < b; i++) out.set(x, i * x.length);
  return out;
}

/** Batch sizes this engine can run: the requested ones for a dynamic batch, the model's own otherwise. */
function allowedBatches(engine: Engine, requested: number[]): number[] {
  const info = engine.describe();
  if (!info.dynamicBatch) return [typeof info.inputDims[0] === 'number' ? info.inputDims[0] : 1];
  return requested.filter((b) => b <= (info.maxBatch ?? Infinity));
}

/** Measure an ONNX Runtime engine in this process (the caller is the per-engine child). */
export async function measureOrt(target: Extract<ReadyTarget, { runtime: 'onnxruntime' }>, s: MeasureSettings): Promise<Figures> {
  const manifest = target.manifest;
  const engine = await createOrtEngine(target.model, manifest, {
    engine: target.engine,
    ...(s.threads ? { intraOpNumThreads: s.threads } : {}),
    spinning: s.spinning ?? SERVED_SPINNING,
    maxBatch: Math.max(1, ...s.batchSizes),
  });
  try {
    const flags = [...(target.notes ?? [])];
    const { pre, preMs } = await prepareImages(manifest, s);
    const sample = pre[0] ?? greyInput(manifest);
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    const lat = await latencyLoop(() => engine.run(sample.tensor, sample.dims), s);
    flags.push(...lat.flags);

    const throughput: Figures['throughput'] = [];
    for (const b of allowedBatches(engine, s.batchSizes)) {
      const x = tile(sample.tensor, b);
      const dims = [b, ...sample.dims.slice(1)];
      const k = Math.max(3, Math.ceil(s.iters / b));
      await engine.run(x, dims);
      const t0 = performance.now();
      for (let i = 0; i < k; i++) await engine.run(x, dims);
      throughput.push({ batch: b, imagesPerSec: round((b * k * 1000) / (performance.now() - t0), 2) });
    }
    const cpu = cpuPercent(cpu0, performance.now() - wall0);

    const postMs: number[] = [];
    const meter = new AccuracyMeter(manifest, s.protocol);
    for (const [i, p] of pre.entries()) {
      const out = await engine.run(p.tensor, p.dims);
      const t0 = performance.now();
      meter.add(out, p.meta, s.images[i]!);
      postMs.push(performance.now() - t0);
    }
    const accuracy = figures(meter.result());
    const video = s.video ? await videoFps(engine, manifest, s.video) : undefined;
    return {
      latencyMs: lat.stats,
      ...(preMs.length ? { preprocessMs: round(mean(preMs)), postprocessMs: round(mean(postMs)) } : {}),
      throughput,
      ...(video ? { video } : {}),
      resources: { cpuPercent: cpu, peakRssMb: peakRssMb() },
      ...(accuracy ? { accuracy } : {}),
      flags,
    };
  } finally {
    await engine.close();
  }
}

/** A frame read with `forModel` (ffmpeg scaled it to the model's size), as predict and the service prepare it. */
const prepareFrame = (f: VideoFrame, manifest: ModelManifest) => preprocess(f.image, manifest.preprocess, { source: f.source });

/**
 * End-to-end video FPS: decode (ffmpeg) → preprocess → infer → NMS, sequentially and pipelined. Pipelined starts
 * decoding and preprocessing frame k+1 before awaiting the inference of frame k; ONNX Runtime runs off the main
 * thread, so the two overlap.
 */
async function videoFps(engine: Engine, manifest: ModelManifest, v: { file: string; maxFrames: number }): Promise<Figures['video']> {
  const post = (out: Output, meta: LetterboxMeta) => decode(manifest, out, meta, VIDEO_CONF);
  let frames = 0;
  let t0 = performance.now();
  const read = { maxFrames: v.maxFrames, forModel: { spec: manifest.preprocess } };
  for await (const f of readVideoFrames(v.file, read)) {
    const p = await prepareFrame(f, manifest);
    post(await engine.run(p.tensor, p.dims), p.meta);
    frames++;
  }
  const sequentialFps = (frames * 1000) / (performance.now() - t0);

  const it = readVideoFrames(v.file, read)[Symbol.asyncIterator]();
  const next = async (): Promise<PreprocessResult | undefined> => {
    const r = await it.next();
    return r.done ? undefined : prepareFrame(r.value, manifest);
  };
  let piped = 0;
  t0 = performance.now();
  let cur = await next();
  while (cur) {
    const upcoming = next();
    post(await engine.run(cur.tensor, cur.dims), cur.meta);
    piped++;
    cur = await upcoming;
  }
  const pipelinedFps = (piped * 1000) / (performance.now() - t0);
  return { file: v.file, frames, sequentialFps: round(sequentialFps, 2), pipelinedFps: round(pipelinedFps, 2) };
}

/** Children's CPU time (utime+stime of waited-for children) from /proc/self/stat, in ms. */
function childrenCpuMs(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // after the command: state(0) … cutime is field 16 of the full line, i.e. index 13 here; cstime 14
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * Measure the PyTorch engine: the worker times its own forward passes (batch 1 for latency, every batch size for
 * throughput) and returns raw outputs for the preprocessed dataset images and video frames, which are decoded
 * here exactly as for ONNX Runtime. Video FPS is composed from measured stage times, since inference runs in
 * another process: sequential = 1 / (decode+preprocess + inference + NMS), pipelined = 1 / max(decode+preprocess,
 * inference + NMS).
 */
export async function measurePytorch(target: Extract<ReadyTarget, { runtime: 'pytorch' }>, s: MeasureSettings): Promise<Figures> {
  const manifest = target.manifest;
  const flags = [...(target.notes ?? [])];
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-bench-pt-'));
  try {
    const { pre, preMs } = await prepareImages(manifest, s);
    const frames: PreprocessResult[] = [];
    let decodePreMs = 0;
    if (s.video) {
      const t0 = performance.now();
      for await (const f of readVideoFrames(s.video.file, { maxFrames: s.video.maxFrames, forModel: { spec: manifest.preprocess } })) frames.push(await prepareFrame(f, manifest));
      decodePreMs = (performance.now() - t0) / Math.max(1, frames.length);
    }
    const all = [...pre, ...frames];
    const inputs = join(dir, 'inputs.bin');
    if (all.length) {
      const buf = new Float32Array(all.reduce((n, p) => n + p.tensor.length, 0));
      let off = 0;
      for (const p of all) {
        buf.set(p.tensor, off);
        off += p.tensor.length;
      }
      writeFileSync(inputs, new Uint8Array(buf.buffer));
    }
    const [h] = manifest.preprocess.size;
    const cpuBefore = childrenCpuMs();
    const wall0 = performance.now();
    const r = await runPytorchBench(
      {
        checkpoint: target.checkpoint,
        device: target.device,
        imgsz: h,
        batch_sizes: [...new Set([1, ...s.batchSizes])],
        warmup: s.warmup,
        iters: s.iters,
        ...(s.minTimeMs ? { min_time_s: s.minTimeMs / 1000 } : {}),
        // PyTorch's own default can be a single thread where ONNX Runtime takes every core: give it the usable CPUs.
        threads: s.threads || usableCpus(),
        ...(all.length ? { inputs, outputs: join(dir, 'outputs.bin') } : {}),
      },
      { python: { executable: target.python.python, trainerDir: target.python.trainerDir } },
    );
    const wallMs = performance.now() - wall0;
    const cpuPct = round(((childrenCpuMs() - cpuBefore) / wallMs) * 100, 1);
    flags.push(`pytorch ${r.torch} on ${r.device}, ${r.threads} threads; CPU % over the whole worker run (model load included)`);
    const one = r.runs.find((x) => x.batch === 1);
    if (!one || one.latenciesMs.length === 0) throw new CvoptError('ENGINE_FAILED', 'the PyTorch worker returned no batch-1 latencies');
    const stats = latencyStats(one.latenciesMs);
    const unstable = isUnstable(stats);
    if (unstable) flags.push(`${unstable} (not repeated: one worker run)`);
    const throughput = r.runs.filter((x) => s.batchSizes.includes(x.batch)).map((x) => ({ batch: x.batch, imagesPerSec: round((x.batch * 1000) / mean(x.latenciesMs), 2) }));

    const meter = new AccuracyMeter(manifest, s.protocol);
    const postMs: number[] = [];
    let video: Figures['video'];
    if (r.outputs) {
      const flat = readFileSync(r.outputs.file);
      const data = new Float32Array(flat.byteLength / 4);
      new Uint8Array(data.buffer).set(flat);
      const [n, ...rest] = r.outputs.shape as [number, ...number[]];
      const per = rest.reduce((a, b) => a * b, 1);
      if (n !== all.length) throw new CvoptError('ENGINE_FAILED', `the PyTorch worker returned ${n} outputs for ${all.length} inputs`);
      const outOf = (i: number): Output => ({ data: data.subarray(i * per, (i + 1) * per), dims: [1, ...rest] });
      pre.forEach((p, i) => {
        const t0 = performance.now();
        meter.add(outOf(i), p.meta, s.images[i]!);
        postMs.push(performance.now() - t0);
      });
      if (s.video && frames.length) {
        const t0 = performance.now();
        frames.forEach((p, i) => decode(manifest, outOf(pre.length + i), p.meta, VIDEO_CONF));
        const nmsMs = (performance.now() - t0) / frames.length;
        const inferMs = stats.mean;
        video = {
          file: s.video.file,
          frames: frames.length,
          sequentialFps: round(1000 / (decodePreMs + inferMs + nmsMs), 2),
          pipelinedFps: round(1000 / Math.max(decodePreMs, inferMs + nmsMs), 2),
        };
        flags.push('video FPS composed from measured stage times (decode+preprocess in Node, inference in the Python worker)');
      }
    }
    const accuracy = figures(meter.result());
    return {
      latencyMs: stats,
      ...(preMs.length ? { preprocessMs: round(mean(preMs)), postprocessMs: round(mean(postMs)) } : {}),
      throughput,
      ...(video ? { video } : {}),
      resources: { cpuPercent: cpuPct, peakRssMb: peakRssMb() },
      ...(accuracy ? { accuracy } : {}),
      flags,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
