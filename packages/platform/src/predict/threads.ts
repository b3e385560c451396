import { ENGINES, usableCpus, type EngineId, type ModelManifest } from '@cvopt/core';
import { createOrtEngine, type Engine } from '@cvopt/engines';

/**
 * Intra-op threads for `predict` on a CPU engine when the user did not choose (`--threads`). A small model runs
 * about as fast on one thread as on every core — the threads' synchronisation eats what they add — while the
 * decode side of a video (ffmpeg, the pipe, the letterbox) needs a core of its own: on the 2-core machine of the
 * README the quickstart's 160-px model ran 320–354 fps alone on one thread against 323–327 on two, and `predict`
 * on car-detection.mp4 reached 241–257 fps with one thread against 219–247 with two. A model whose run takes
 * longer than PROBE_MAX_MS gains from every core (YOLOv8n INT8: about 80 ms on two, twice that on one) and is
 * left to ONNX Runtime's choice without timing it.
 */
export const PROBE_MAX_MS = 15;

/** One thread when its median run is within this factor of every core's. */
export const ONE_THREAD_TOLERANCE = 1.1;

export interface ThreadChoice {
  engine: Engine;
  /** 1, or 0 for ONNX Runtime's own choice (one thread per physical core). */
  threads: number;
  note?: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** The decision alone, on timed runs (ms) of every core and of one thread. */
export function oneThreadSuffices(allCores: number[], oneThread: number[], tolerance = ONE_THREAD_TOLERANCE): boolean {
  return median(oneThread) <= median(allCores) * tolerance;
}

async function timed(engine: Engine, x: Float32Array, dims: number[], n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await engine.run(x, dims);
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * Opens the engine `predict` runs on: with the caller's threads when given; otherwise on every core, and, for a
 * CPU engine whose run is short, also on one thread, timed against each other on a grey input (interleaved, so
 * drifting load hits both) and the faster-or-equal one kept.
 */
export async function openPredictEngine(
  modelPath: string,
  manifest: ModelManifest,
  engineId: EngineId,
  o: { spinning: boolean; threads?: number; probeMaxMs?: number; tolerance?: number },
): Promise<ThreadChoice> {
  const base = { engine: engineId, spinning: o.spinning };
  if (o.threads) return { engine: await createOrtEngine(modelPath, manifest, { ...base, intraOpNumThreads: o.threads }), threads: o.threads };
  const all = await createOrtEngine(modelPath, manifest, base);
  if (ENGINES[engineId].gpu || usableCpus() < 2) return { engine: all, threads: 0 };
  const [h, w] = manifest.preprocess.size;
  const dims = [1, 3, h, w];
  const x = new Float32Array(3 * h * w).fill(0.5);
  try {
    await timed(all, x, dims, 2);
    const first = await timed(all, x, dims, 3);
    if (median(first) > (o.probeMaxMs ?? PROBE_MAX_MS)) return { engine: all, threads: 0 };
    const one = await createOrtEngine(modelPath, manifest, { ...base, intraOpNumThreads: 1 });
    try {
      await timed(one, x, dims, 2);
      const a: number[] = [];
      const b: number[] = [];
      for (let k = 0; k < 5; k++) {
        a.push(...(await timed(all, x, dims, 2)));
        b.push(...(await timed(one, x, dims, 2)));
      }
      if (!oneThreadSuffices(a, b, o.tolerance)) {
        await one.close();
        return { engine: all, threads: 0 };
      }
      await all.close();
      return {
        engine: one,
        threads: 1,
        note: `ONNX Runtime on 1 intra-op thread: this model ran ${median(b).toFixed(1)} ms on one against ${median(a).toFixed(1)} ms on every core, so the other cores are left to decoding (--threads N to choose)`,
      };
    } catch (e) {
      await one.close();
      throw e;
    }
  } catch (e) {
    await all.close();
    throw e;
  }
}
