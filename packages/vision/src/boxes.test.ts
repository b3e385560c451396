import { describe, expect, it } from 'vitest';
import { matchDetections } from './boxes.js';

describe('matchDetections', () => {
  it('matches one-to-one by IoU and counts class agreement', () => {
    const ref = [
      { box: [0, 0, 10, 10] as [number, number, number, number], score: 0.9, classId: 1 },
      { box: [20, 20, 30, 30] as [number, number, number, number], score: 0.8, classId: 2 },
    ];
    const got = [
      { box: [0, 0, 10, 11] as [number, number, number, number], score: 0.9, classId: 1 },
      { box: [20, 20, 30, 30] as [number, number, number, number], score: 0.7, classId: 3 },
      { box: [50, 50, 60, 60] as [number, number, number, number], score: 0.7, classId: 3 },
    ];
    const m = matchDetections(ref, got);
    expect(m.matched).toBe(2);
    expect(m.sameClass).toBe(1);
    expect(m.iouSum).toBeCloseTo(100 / 110 + 1, 10);
    expect(matchDetections(ref, []).matched).toBe(0);
  });
});
