import { describe, expect, it } from 'vitest';
import { CvoptError } from '@cvopt/core';
import { classificationMetrics, postprocessClassification, softmax, topK } from './index.js';

describe('classification', () => {
  it('softmax is normalised and stable for large logits', () => {
    const p = softmax([1000, 1001, 1002]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(p[2]! / p[1]!).toBeCloseTo(Math.E, 4);
    expect(Number.isFinite(p[0]!)).toBe(true);
  });

  it('topK returns the k best in descending order, ties by lower class id', () => {
    expect(topK([0.1, 0.5, 0.2, 0.5, 0.05], 3)).toEqual([
      { classId: 1, score: 0.5 },
      { classId: 3, score: 0.5 },
      { classId: 2, score: 0.2 },
    ]);
    expect(topK([0.3, 0.7], 5).map((c) => c.classId)).toEqual([1, 0]);
    expect(topK([0.3], 0)).toEqual([]);
  });

  const manifest = (format: 'logits' | 'probabilities') => ({ classNames: ['a', 'b', 'c', 'd'], output: { name: 'out', format, shape: [2, 4], scoresActivated: true } });

  it('applies softmax to logits only and reads the requested batch item', () => {
    const out = new Float32Array([0, 0, 0, 0, 2, 0, 1, 0]);
    const top = postprocessClassification(out, [2, 4], manifest('logits'), 2, 1);
    expect(top.map((c) => c.classId)).toEqual([0, 2]);
    expect(top[0]!.score).toBeCloseTo(Math.exp(2) / (Math.exp(2) + Math.E + 2), 6);
    const probs = postprocessClassification(out, [2, 4], manifest('probabilities'), 1, 1);
    expect(probs).toEqual([{ classId: 0, score: 2 }]);
    expect(() => postprocessClassification(out, [2, 5], manifest('logits'))).toThrow(CvoptError);
    expect(() => postprocessClassification(out, [2, 4], manifest('logits'), 5, 2)).toThrow(/batch index/);
  });

  it('top-1 and top-5 accuracy', () => {
    const pred = [
      [{ classId: 3, score: 0.9 }, { classId: 1, score: 0.05 }],
      [{ classId: 2, score: 0.1 }, { classId: 1, score: 0.6 }],
      [0, 1, 2, 3, 4, 5].map((c) => ({ classId: c, score: 1 - c / 10 })),
    ];
    expect(classificationMetrics(pred, [3, 2, 5])).toEqual({ top1: 1 / 3, top5: 2 / 3, n: 3 });
    expect(() => classificationMetrics(pred, [1])).toThrow(CvoptError);
  });
});
