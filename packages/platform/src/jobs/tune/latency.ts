import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { latencyStats } from '@cvopt/bench';
import { SERVED_SPINNING, createOrtEngine, readManifest } from '@cvopt/engines';
import { engineModel } from '../../models/variants.js';
import type { RunConfig } from './types.js';

/**
 * A trial's latency on the target engine: the p95 (bench's percentile, the one definition) of timed single-image
 * runs after warm-up, on the model the engine id runs (each trial's INT8 QDQ conversion for ort-cpu-int8, cached in
 * the trial's folder).
 */

const WARMUP_RUNS = 3;

export async function measureP95(onnx: string, cfg: RunConfig, runs: number, signal?: AbortSignal): Promise<number> {
  const fp32 = { onnx, manifest: readManifest(onnx) };
  const variant = await engineModel(cfg.engine, fp32, { cacheDir: join(dirname(onnx), 'engine-models'), data: cfg.data });
  if (!existsSync(variant.onnx)) throw new Error(`missing ${variant.onnx}`);
  // Timed as the service will run it (no spinning threads), the latency the trial's fitness is charged for.
  const engine = await createOrtEngine(variant.onnx, variant.manifest, { engine: cfg.engine, spinning: SERVED_SPINNING });
  try {
    const manifest = variant.manifest;
    const dims = manifest.input.shape.map((d) => (typeof d === 'number' ? d : 1));
    const input = new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.5);
    const opts = signal ? { signal } : {};
    for (let i = 0; i < WARMUP_RUNS; i++) await engine.run(input, dims, opts);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await engine.run(input, dims, opts);
      times.push(performance.now() - t0);
    }
    return latencyStats(times).p95;
  } finally {
    await engine.close();
  }
}

/** Serialises latency measurements so parallel trainings never share the CPU with a timing run of another trial. */
export class Lock {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
