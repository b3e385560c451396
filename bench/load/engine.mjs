// The engine alone, no HTTP: the baseline the service is judged against.
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createOrtEngine, readManifest } from '@cvopt/engines';
import { postprocessDetections, postprocessClassification, preprocess } from '@cvopt/vision';
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

/**
 * Latency at batch 1 (p50), saturated throughput (back-to-back runs at batch 1, and at maxBatch when the
 * batch axis is dynamic; the best of the two), and the latency of the whole pipeline (decode + preprocess +
 * run + postprocess) without HTTP, all with the service's thread settings.
 */
export async function rawEngine(artifactDir, image, { seconds = 5, maxBatch = 8, threads = cpus().length } = {}) {
  const modelPath = join(artifactDir, 'model.onnx');
  const manifest = readManifest(modelPath);
  const engine = await createOrtEngine(modelPath, manifest, { intraOpNumThreads: threads, maxBatch });
  try {
    const info = engine.describe();
    const p = await preprocess(image, manifest.preprocess);
    for (let i = 0; i < 3; i++) await engine.run(p.tensor, p.dims);
    const single = await timed(seconds, 5, () => engine.run(p.tensor, p.dims));
    const s1 = summarize(single.lat);
    let best = { batch: 1, throughput: single.lat.length / single.elapsedS };
    if (info.dynamicBatch && maxBatch > 1) {
      const per = p.tensor.length;
      const big = new Float32Array(per * maxBatch);
      for (let b = 0; b < maxBatch; b++) big.set(p.tensor, b * per);
      const dims = [maxBatch, ...p.dims.slice(1)];
      await engine.run(big, dims);
      const batched = await timed(seconds, 3, () => engine.run(big, dims));
      const tp = (batched.lat.length * maxBatch) / batched.elapsedS;
      if (tp > best.throughput) best = { batch: maxBatch, throughput: tp };
    }
    const post = (out, meta) =>
      manifest.task === 'classify' ? postprocessClassification(out.data, out.dims, manifest, 5) : postprocessDetections(out.data, out.dims, manifest, meta, {});
    const pipeline = await timed(Math.min(3, seconds), 5, async () => {
      const q = await preprocess(image, manifest.preprocess);
      post(await engine.run(q.tensor, q.dims), q.meta);
    });
    return { p50: s1.p50, p95: s1.p95, n: s1.n, saturatedRps: best.throughput, saturatedBatch: best.batch, pipelineP50: summarize(pipeline.lat).p50, dynamicBatch: info.dynamicBatch, threads };
  } finally {
    await engine.close();
  }
}
