import type { Evaluation } from './ranking.js';
import type { ParamSpec } from './space.js';

/**
 * Standard test problems for the benchmark and the tests. Each maps a genome's numeric values (in the space's
 * parameter order) to an Evaluation; the spaces have no defaults, so generation 1 is all uniform samples.
 */
export interface TestProblem {
  name: string;
  space: ParamSpec[];
  evaluate(v: number[]): Evaluation;
}

function box(dim: number, low: number, high: number): ParamSpec[] {
  return Array.from({ length: dim }, (_, i) => ({ name: `x${i}`, type: 'float' as const, low, high }));
}

export function sphere(dim = 10): TestProblem {
  return { name: `sphere-${dim}d`, space: box(dim, -5.12, 5.12), evaluate: (v) => ({ objectives: [v.reduce((s, x) => s + x * x, 0)] }) };
}

export function rastrigin(dim = 10): TestProblem {
  return {
    name: `rastrigin-${dim}d`,
    space: box(dim, -5.12, 5.12),
    evaluate: (v) => ({ objectives: [10 * v.length + v.reduce((s, x) => s + x * x - 10 * Math.cos(2 * Math.PI * x), 0)] }),
  };
}

/**
 * Sphere under two linear constraints whose optimum lies on the boundary: min Σx² s.t. Σx ≥ 5 and x0 − x1 ≥ 1
 * on [-5, 5]^dim. By the KKT conditions the optimum is x0 = 1, x1 = 0, the rest 0.5: f* = 1 + 0.25·(dim − 2) (3 for 10-D).
 */
export function constrainedSphere(dim = 10): TestProblem {
  return {
    name: `constrained-sphere-${dim}d`,
    space: box(dim, -5, 5),
    evaluate: (v) => {
      const sum = v.reduce((s, x) => s + x, 0);
      return {
        objectives: [v.reduce((s, x) => s + x * x, 0)],
        violations: [Math.max(0, 5 - sum), Math.max(0, 1 - (v[0]! - v[1]!))],
      };
    },
  };
}

/**
 * CEC 2006 problem g06 (Floudas & Pardalos; Liang et al. 2006): min (x1 − 10)³ + (x2 − 20)³ s.t.
 * (x1 − 5)² + (x2 − 5)² ≥ 100 and (x1 − 6)² + (x2 − 5)² ≤ 82.81 on [13, 100] × [0, 100]. The feasible region is a
 * thin crescent (about 0.007 % of the box); f* = −6961.81388 at (14.095, 0.84296), where both constraints are active.
 */
export function g06(): TestProblem {
  return {
    name: 'g06',
    space: [
      { name: 'x1', type: 'float', low: 13, high: 100 },
      { name: 'x2', type: 'float', low: 0, high: 100 },
    ],
    evaluate: ([x1, x2]) => ({
      objectives: [(x1! - 10) ** 3 + (x2! - 20) ** 3],
      violations: [Math.max(0, 100 - (x1! - 5) ** 2 - (x2! - 5) ** 2), Math.max(0, (x1! - 6) ** 2 + (x2! - 5) ** 2 - 82.81)],
    }),
  };
}

/** ZDT1 (Zitzler, Deb & Thiele 2000), 30 variables on [0, 1]: convex front f2 = 1 − √f1. */
export function zdt1(dim = 30): TestProblem {
  return {
    name: `zdt1-${dim}d`,
    space: box(dim, 0, 1),
    evaluate: (v) => {
      const f1 = v[0]!;
      const g = 1 + (9 * v.slice(1).reduce((s, x) => s + x, 0)) / (v.length - 1);
      return { objectives: [f1, g * (1 - Math.sqrt(f1 / g))] };
    },
  };
}

/** ZDT2, 30 variables on [0, 1]: concave front f2 = 1 − f1². */
export function zdt2(dim = 30): TestProblem {
  return {
    name: `zdt2-${dim}d`,
    space: box(dim, 0, 1),
    evaluate: (v) => {
      const f1 = v[0]!;
      const g = 1 + (9 * v.slice(1).reduce((s, x) => s + x, 0)) / (v.length - 1);
      return { objectives: [f1, g * (1 - (f1 / g) ** 2)] };
    },
  };
}
