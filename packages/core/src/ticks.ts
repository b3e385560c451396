/**
 * Round axis ticks (steps of 1, 2 or 5 × 10^k) from the last tick at or below `lo` to the first at or above `hi`,
 * so every chart cvopt draws (SVG reports, the terminal dashboard) has readable ticks and covers all its points.
 */
export function niceTicks(lo: number, hi: number, count = 4): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi <= lo) hi = lo + (Math.abs(lo) || 1);
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((m) => m >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.floor(lo / step + 1e-9) * step; out.length < 100; t += step) {
    out.push(Number(t.toPrecision(12)));
    if (t >= hi - step * 1e-9) break;
  }
  return out;
}

/** A tick label: no trailing zeros, no float noise. */
export function tickLabel(v: number): string {
  return String(Number(v.toPrecision(6)));
}
