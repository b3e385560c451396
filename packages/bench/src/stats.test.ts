import { describe, expect, it } from 'vitest';
import { isUnstable, latencyStats, percentile } from './stats.js';

describe('latency statistics', () => {
  it('interpolates percentiles like numpy', () => {
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(percentile(s, 50)).toBeCloseTo(5.5);
    expect(percentile(s, 95)).toBeCloseTo(9.55);
    expect(percentile(s, 0)).toBe(1);
    expect(percentile(s, 100)).toBe(10);
  });
  it('summarises samples regardless of order', () => {
    const st = latencyStats([5, 1, 3, 2, 4]);
    expect(st).toMatchObject({ n: 5, min: 1, p50: 3, max: 5, mean: 3 });
    expect(st.std).toBeCloseTo(1.581, 3);
  });
  it('flags a heavy tail and a wide spread', () => {
    expect(isUnstable(latencyStats(Array.from({ length: 100 }, (_, i) => (i >= 98 ? 50 : 10))))).toMatch(/p99\/p50/);
    expect(isUnstable(latencyStats(Array.from({ length: 100 }, () => 10)))).toBeUndefined();
  });
});
