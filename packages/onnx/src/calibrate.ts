import * as ort from 'onnxruntime-node';
import { CvoptError, intraOpThreadsFor } from '@cvopt/core';
import { encodeOnnx } from './io.js';
import type { ModelProto } from './model.js';
import { withExtraOutputs, type Range } from './qdq.js';

/**
 * Activation ranges from real inputs: the tensors to observe become extra graph outputs of a temporary copy,
 * which ONNX Runtime runs over the calibration samples.
 */

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['minmax', 'percentile', 'entropy'];

export interface Sample {
  /** Input name to tensor; float32 NCHW. */
  feeds: Record<string, { data: Float32Array; dims: readonly number[] }>;
}

export interface CalibrateOptions {
  method?: CalibrationMethod;
  /** For percentile: the share of |x| kept inside the range, in percent (default 99.99). */
  percentile?: number;
  /** Histogram bins for percentile and entropy (default 2048). */
  bins?: number;
  intraOpNumThreads?: number;
  onProgress?: (done: number, total: number, pass: string) => void;
}

async function* run(model: ModelProto, tensors: readonly string[], samples: readonly Sample[], opts: CalibrateOptions, pass: string): AsyncGenerator<Map<string, Float32Array>> {
  const bytes = encodeOnnx(withExtraOutputs(model, tensors));
  const so: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'basic', logSeverityLevel: 3 };
  const intra = intraOpThreadsFor(opts.intraOpNumThreads);
  if (intra) so.intraOpNumThreads = intra;
  const session = await ort.InferenceSession.create(bytes, so);
  try {
    let i = 0;
    for (const s of samples) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(s.feeds)) feeds[k] = new ort.Tensor('float32', v.data, v.dims as number[]);
      const out = await session.run(feeds);
      const m = new Map<string, Float32Array>();
      for (const t of tensors) {
        const o = out[t];
        // Integer tensors (shape arithmetic) are not activations: they get no range and stay unquantized.
        if (o && o.type === 'float32') m.set(t, o.data as Float32Array);
      }
      yield m;
      opts.onProgress?.(++i, samples.length, pass);
    }
  } finally {
    await session.release();
  }
}

/** Per-tensor ranges by the chosen method. Every sample is run once for minmax, twice for histogram methods. */
export async function calibrate(model: ModelProto, tensors: readonly string[], samples: readonly Sample[], opts: CalibrateOptions = {}): Promise<Map<string, Range>> {
  if (samples.length === 0) throw new CvoptError('INVALID_ARGUMENT', 'calibration needs at least one sample', { where: { field: '--calib' }, hint: 'point --data at a dataset with images' });
  const method = opts.method ?? 'minmax';
  const minmax = new Map<string, Range>();
  for await (const outs of run(model, tensors, samples, opts, 'ranges')) {
    for (const [t, d] of outs) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < d.length; i++) {
        const v = d[i] as number;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const r = minmax.get(t);
      if (r) {
        r.min = Math.min(r.min, lo);
        r.max = Math.max(r.max, hi);
      } else minmax.set(t, { min: lo, max: hi });
    }
  }
  if (method === 'minmax') return minmax;

  const bins = opts.bins ?? 2048;
  const hists = new Map<string, Float64Array>();
  for await (const outs of run(model, tensors, samples, opts, 'histograms')) {
    for (const [t, d] of outs) {
      const r = minmax.get(t) as Range;
      const absmax = Math.max(Math.abs(r.min), Math.abs(r.max));
      if (!(absmax > 0)) continue;
      let h = hists.get(t);
      if (!h) hists.set(t, (h = new Float64Array(bins)));
      const k = bins / absmax;
      for (let i = 0; i < d.length; i++) {
        const b = Math.min(bins - 1, Math.floor(Math.abs(d[i] as number) * k));
        h[b] = (h[b] as number) + 1;
      }
    }
  }
  const out = new Map<string, Range>();
  for (const [t, r] of minmax) {
    const h = hists.get(t);
    const absmax = Math.max(Math.abs(r.min), Math.abs(r.max));
    if (!h) {
      out.set(t, r);
      continue;
    }
    const width = absmax / bins;
    const threshold = method === 'percentile' ? percentileThreshold(h, opts.percentile ?? 99.99) * width : entropyThreshold(h, r.min >= 0 ? 255 : 127) * width;
    out.set(t, { min: Math.max(r.min, -threshold), max: Math.min(r.max, threshold) });
  }
  return out;
}

/** The bin edge below which `pct` percent of |x| falls. */
export function percentileThreshold(h: Float64Array, pct: number): number {
  const total = h.reduce((a, b) => a + b, 0);
  const target = (total * pct) / 100;
  let cum = 0;
  for (let i = 0; i < h.length; i++) {
    cum += h[i] as number;
    if (cum >= target) return i + 1;
  }
  return h.length;
}

/**
 * The clipping threshold (in bins) that minimises KL(P‖Q) between the clipped reference distribution and its
 * `levels`-level quantized version, as in TensorRT's entropy calibrator.
 */
export function entropyThreshold(h: Float64Array, levels: number): number {
  const n = h.length;
  if (n <= levels) return n;
  let best = n;
  let bestKl = Infinity;
  const step = Math.max(1, Math.floor((n - levels) / 128));
  const p = new Float64Array(n);
  const q = new Float64Array(n);
  const suffix = new Float64Array(n + 1);
  for (let i = n - 1; i >= 0; i--) suffix[i] = (suffix[i + 1] as number) + (h[i] as number);
  for (let i = levels; i <= n; i += step) {
    for (let j = 0; j < i; j++) p[j] = h[j] as number;
    p[i - 1] = (p[i - 1] as number) + (suffix[i] as number);
    // Merge the i bins into `levels` groups, then spread each group's mass over its non-empty bins.
    q.fill(0, 0, i);
    const per = i / levels;
    for (let g = 0; g < levels; g++) {
      const start = Math.floor(g * per);
      const end = g === levels - 1 ? i : Math.floor((g + 1) * per);
      let sum = 0;
      let nz = 0;
      for (let j = start; j < end; j++) {
        sum += h[j] as number;
        if ((h[j] as number) > 0) nz++;
      }
      if (nz === 0) continue;
      for (let j = start; j < end; j++) if ((h[j] as number) > 0) q[j] = sum / nz;
    }
    let ps = 0;
    let qs = 0;
    for (let j = 0; j < i; j++) {
      ps += p[j] as number;
      qs += q[j] as number;
    }
    if (ps === 0 || qs === 0) continue;
    let kl = 0;
    for (let j = 0; j < i; j++) {
      const pj = (p[j] as number) / ps;
      if (pj === 0) continue;
      const qj = Math.max((q[j] as number) / qs, 1e-12);
      kl += pj * Math.log(pj / qj);
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  return best;
}
