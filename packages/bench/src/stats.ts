import type { LatencyStats } from '@cvopt/core';

/** Percentile by linear interpolation between closest ranks (numpy's default), on a sorted copy. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (rank - lo);
}

export function latencyStats(samplesMs: readonly number[]): LatencyStats {
  const s = [...samplesMs].sort((a, b) => a - b);
  const n = s.length;
  const mean = n ? s.reduce((x, y) => x + y, 0) / n : Number.NaN;
  const variance = n > 1 ? s.reduce((acc, x) => acc + (x - mean) ** 2, 0) / (n - 1) : 0;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return {
    n,
    min: r(s[0] ?? Number.NaN),
    p50: r(percentile(s, 50)),
    p90: r(percentile(s, 90)),
    p95: r(percentile(s, 95)),
    p99: r(percentile(s, 99)),
    mean: r(mean),
    std: r(Math.sqrt(variance)),
    max: r(s[n - 1] ?? Number.NaN),
  };
}

/**
 * A measurement is unstable when its tail is far from its median: p99/p50 above `maxTailRatio` or a coefficient
 * of variation above `maxCv`. The harness repeats unstable runs and flags them when they stay unstable.
 */
export function isUnstable(s: LatencyStats, opts: { maxTailRatio?: number; maxCv?: number } = {}): string | undefined {
  const tail = s.p99 / s.p50;
  const cv = s.std / s.mean;
  const maxTail = opts.maxTailRatio ?? 2.0;
  const maxCv = opts.maxCv ?? 0.25;
  if (tail > maxTail) return `unstable: p99/p50 = ${tail.toFixed(2)} > ${maxTail}`;
  if (cv > maxCv) return `unstable: coefficient of variation ${cv.toFixed(2)} > ${maxCv}`;
  return undefined;
}
