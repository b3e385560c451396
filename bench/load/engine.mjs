// The engine alone, no HTTP: the baseline the service is judged against. It runs through the same engine
// instances the service uses (worker threads, each with its own ONNX Runtime session), with the service's
// instance count, intra-op threads and spinning setting.
import { join } from 'node:path';
import { createOrtEngine, readManifest } from '@cvopt/engines';
import { postprocessDetections, postprocessClassification, preprocess } from '@cvopt/vision';
import { effectiveIntraOpThreads } from '../../packages/runtime/dist/config.js';
import { createEnginePool } from '../../packages/runtime/dist/worker-engine.js';
import { summarize } from './stats.mjs';

async function timed(seconds, minRuns, fn) {
  const lat = [];
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000 || lat.length < minRuns) {
    const t = performance.now();
    await fn();
    lat.push(performance.now() - t);
  }
  return { lat, elapsedS: (performance.now() - t0) / 1000 };
}

/** Back-to-back runs on every instance at once for `seconds`: items per second. */
async function saturate(engine, instances, seconds, make) {
  let items = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: instances }, async () => {
      while (performance.now() < end) {
        const { data, dims } = make();
        await engine.runOwned(data, dims);
        items += dims[0];
      }
    }),
  );
  return items / ((performance.now() - t0) / 1000);
}

/**
 * Single-image runs timed the way `cvopt bench` times them: one ONNX Runtime session on this thread, no worker hop,
 * back to back on the same tensor, with the given threads and spinning (bench's default is the service's).
 * `slice(seconds)` times one stretch and gives its mean and p50; the session stays open between slices.
 */
async function openBenchStyle(modelPath, manifest, tensor, dims, intra, spinning) {
  const engine = await createOrtEngine(modelPath, manifest, { intraOpNumThreads: intra, spinning });
  for (let i = 0; i < 5; i++) await engine.run(tensor, dims);
  return {
    async slice(seconds) {
      const { p50, mean } = summarize((await timed(seconds, 20, () => engine.run(tensor, dims))).lat);
      return { p50, mean };
    },
    close: () => engine.close(),
  };
}

async function benchStyle(modelPath, manifest, tensor, dims, intra, spinning, seconds) {
  const b = await openBenchStyle(modelPath, manifest, tensor, dims, intra, spinning);
  try {
    return await b.slice(seconds);
  } finally {
    await b.close();
  }
}

/** openBenchStyle for an artifact and an image, with the service's rule for the threads (see rawEngine). */
export async function benchStyleFor(artifactDir, image, { instances = 1, threads = 0, spinning = false } = {}) {
  const modelPath = join(artifactDir, 'model.onnx');
  const manifest = readManifest(modelPath);
  const p = await preprocess(image, manifest.preprocess);
  return openBenchStyle(modelPath, manifest, p.tensor, p.dims, effectiveIntraOpThreads({ intraOpThreads: threads, concurrency: instances }), spinning);
}

/**
 * Latency at batch 1 (p50, one request at a time), saturated throughput (every instance busy back to back, at
 * batch 1 and at maxBatch when the batch axis is dynamic; the best of the two), and the latency of the whole
 * pipeline (decode + preprocess + run + postprocess) without HTTP; and `bench`, the single-image run as `cvopt bench`
 * times it (benchStyle), which the service's own engine time at one user is held to.
 */
export async function rawEngine(artifactDir, image, { seconds = 5, maxBatch = 8, instances = 1, threads = 0, spinning = false } = {}) {
  const modelPath = join(artifactDir, 'model.onnx');
  const manifest = readManifest(modelPath);
  // The service's own rule (0: ONNX Runtime's choice for one instance, the cores shared out among several).
  const intra = effectiveIntraOpThreads({ intraOpThreads: threads, concurrency: instances });
  const engine = await createEnginePool(modelPath, manifest, { intraOpNumThreads: intra, maxBatch, spinning }, instances);
  try {
    const info = engine.describe();
    const p = await preprocess(image, manifest.preprocess);
    const per = p.tensor.length;
    for (let i = 0; i < 3; i++) await engine.run(p.tensor, p.dims);
    const single = await timed(seconds, 5, () => engine.run(p.tensor, p.dims));
    const s1 = summarize(single.lat);
    const fill = (n) => {
      const buf = engine.takeInput(per * n);
      for (let b = 0; b < n; b++) buf.set(p.tensor, b * per);
      return { data: buf, dims: [n, ...p.dims.slice(1)] };
    };
    let best = { batch: 1, throughput: await saturate(engine, instances, seconds, () => fill(1)) };
    if (info.dynamicBatch && maxBatch > 1) {
      await engine.runOwned(fill(maxBatch).data, [maxBatch, ...p.dims.slice(1)]);
      const tp = await saturate(engine, instances, seconds, () => fill(maxBatch));
      if (tp > best.throughput) best = { batch: maxBatch, throughput: tp };
    }
    const post = (out, meta) =>
      manifest.task === 'classify' ? postprocessClassification(out.data, out.dims, manifest, 5) : postprocessDetections(out.data, out.dims, manifest, meta, {});
    const pipeline = await timed(Math.min(3, seconds), 5, async () => {
      const q = await preprocess(image, manifest.preprocess, { out: engine.takeInput(per) });
      post(await engine.runOwned(q.tensor, q.dims), q.meta);
    });
    const bench = await benchStyle(modelPath, manifest, p.tensor, p.dims, intra, spinning, Math.min(3, seconds));
    return { bench, p50: s1.p50, p95: s1.p95, n: s1.n, saturatedRps: best.throughput, saturatedBatch: best.batch, pipelineP50: summarize(pipeline.lat).p50, dynamicBatch: info.dynamicBatch, instances, threads: intra };
  } finally {
    await engine.close();
  }
}
