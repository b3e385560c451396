import { describe, expect, it } from 'vitest';
import { Rng } from '@cvopt/core';
import { assign, assignGated, hungarian } from './assignment.js';

function permutations(n: number, m: number): number[][] {
  // Every injective map of n rows into m columns.
  const out: number[][] = [];
  const rec = (cur: number[]) => {
    if (cur.length === n) return void out.push([...cur]);
    for (let j = 0; j < m; j++) if (!cur.includes(j)) rec([...cur, j]);
  };
  rec([]);
  return out;
}

describe('hungarian', () => {
  it('solves a hand-checked 3×3 problem', () => {
    const sol = hungarian([[4, 1, 3], [2, 0, 5], [3, 2, 2]], 3);
    expect([...sol]).toEqual([1, 0, 2]); // 1 + 2 + 2 = 5, the minimum of the six permutations
  });

  it('matches brute force on random rectangular matrices', () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 60; trial++) {
      const n = 1 + rng.int(0, 4);
      const m = n + rng.int(0, 3);
      const c = Array.from({ length: n }, () => Array.from({ length: m }, () => Math.round(rng.float() * 20)));
      const sol = hungarian(c, m);
      const got = [...sol].reduce((s, j, i) => s + c[i]![j]!, 0);
      const best = Math.min(...permutations(n, m).map((p) => p.reduce((s, j, i) => s + c[i]![j]!, 0)));
      expect(got).toBe(best);
      expect(new Set(sol).size).toBe(n);
    }
  });
});

describe('assign (unmatched costs, infeasible pairs)', () => {
  it('matches brute force over every partial matching', () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 80; trial++) {
      const rows = rng.int(0, 5);
      const cols = rng.int(0, 5);
      const c = Array.from({ length: rows }, () => Array.from({ length: cols }, () => (rng.float() < 0.4 ? Infinity : Math.round(rng.float() * 10))));
      const ru = Array.from({ length: rows }, () => 1 + rng.int(0, 6));
      const cu = Array.from({ length: cols }, () => 1 + rng.int(0, 6));
      const got = assign({ rows, cols, cost: (i, j) => c[i]![j]!, rowUnmatched: (i) => ru[i]!, colUnmatched: (j) => cu[j]! });
      // Brute force: each row picks a column or nothing (-1), columns used once.
      let best = Infinity;
      const rec = (i: number, used: Set<number>, acc: number) => {
        if (i === rows) {
          let t = acc;
          for (let j = 0; j < cols; j++) if (!used.has(j)) t += cu[j]!;
          best = Math.min(best, t);
          return;
        }
        rec(i + 1, used, acc + ru[i]!);
        for (let j = 0; j < cols; j++) {
          if (used.has(j) || !Number.isFinite(c[i]![j]!)) continue;
          used.add(j);
          rec(i + 1, used, acc + c[i]![j]!);
          used.delete(j);
        }
      };
      rec(0, new Set(), 0);
      expect(got.total).toBe(best);
      const recomputed = got.pairs.reduce((s, [i, j]) => s + c[i]![j]!, 0) + got.unmatchedRows.reduce((s, i) => s + ru[i]!, 0) + got.unmatchedCols.reduce((s, j) => s + cu[j]!, 0);
      expect(recomputed).toBe(best);
      expect(got.pairs.length + got.unmatchedRows.length).toBe(rows);
      expect(got.pairs.length + got.unmatchedCols.length).toBe(cols);
    }
  });

  it('gates: a pair at or above maxCost is never taken', () => {
    const a = assignGated([[0.2, 0.9], [0.95, 0.99]], 2, 0.8);
    expect(a.pairs).toEqual([[0, 0]]);
    expect(a.unmatchedRows).toEqual([1]);
    expect(a.unmatchedCols).toEqual([1]);
  });
});
