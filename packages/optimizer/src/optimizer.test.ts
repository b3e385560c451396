import { describe, expect, it } from 'vitest';
import { CvoptError, Rng } from '@cvopt/core';
import {
  SearchSpace,
  Study,
  STRATEGY_NAMES,
  blxAlpha,
  choosePoint,
  constrainedSphere,
  crowdingDistance,
  debCompare,
  deploymentFitness,
  epsilonCompare,
  gaussianMutation,
  genomeKey,
  hypervolume2d,
  nonDominatedSort,
  nsga2Survival,
  polynomialMutation,
  g06,
  rastrigin,
  sbx,
  sbxLine,
  tuneSpace,
  zdt1,
  type Evaluation,
  type ParamSpec,
  type StudyState,
} from './index.js';
import { survivors } from './strategies/elitist.js';
import { armMutation, armsInitialState, creditArms } from './strategies/mutation-arms.js';

const MIXED: ParamSpec[] = [
  { name: 'f', type: 'float', low: -2, high: 3, default: 0.5 },
  { name: 'lr', type: 'logfloat', low: 1e-5, high: 1e-1, default: 0.01 },
  { name: 'n', type: 'int', low: 0, high: 10, default: 10 },
  { name: 'c', type: 'choice', choices: [64, 96, 128], default: 128 },
];

function checkGenome(space: SearchSpace, g: Record<string, unknown>): void {
  for (const p of space.params) {
    const v = g[p.name];
    if (p.type === 'choice') expect(p.choices).toContain(v);
    else {
      expect(typeof v).toBe('number');
      expect(v as number).toBeGreaterThanOrEqual(p.low);
      expect(v as number).toBeLessThanOrEqual(p.high);
      if (p.type === 'int') expect(Number.isInteger(v)).toBe(true);
    }
  }
}

describe('search space and operators', () => {
  it('keeps every operator output in bounds, ints integral and choices valid', () => {
    const space = new SearchSpace(MIXED);
    const rng = new Rng(1);
    for (let i = 0; i < 100; i++) {
      const a = space.sampleGenes(rng);
      const b = space.sampleGenes(rng);
      const children = [
        blxAlpha(a, b, rng, 0.9),
        gaussianMutation(a, rng, 2, 1),
        polynomialMutation(b, rng, 1, 1),
        ...sbx(a, b, rng, 1, 1),
      ];
      for (const c of children) {
        for (const u of c) {
          expect(u).toBeGreaterThanOrEqual(0);
          expect(u).toBeLessThanOrEqual(1);
        }
        checkGenome(space, space.decode(c));
      }
    }
    // Decoding clamps genes that an external caller got wrong.
    checkGenome(space, space.decode([-3, 7, 1.5, -0.1]));
  });

  it('samples log-floats uniformly on the log scale', () => {
    const space = new SearchSpace([{ name: 'lr', type: 'logfloat', low: 1e-5, high: 1e-1 }]);
    const rng = new Rng(7);
    const decades = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) {
      const v = space.decode(space.sampleGenes(rng)).lr as number;
      decades[Math.min(3, Math.floor(Math.log10(v) + 5))]!++;
    }
    // Each of the four decades gets about a quarter (a linear sampler would put ~90% in the top decade).
    for (const d of decades) expect(d / 4000).toBeGreaterThan(0.2);
    for (const d of decades) expect(d / 4000).toBeLessThan(0.3);
  });

  it('round-trips defaults through encode/decode', () => {
    const space = new SearchSpace(MIXED);
    expect(space.decode(space.encode(space.defaults()))).toEqual(space.defaults());
  });

  it('rejects bad parameter definitions with the field', () => {
    const err = (p: ParamSpec) => {
      try {
        new SearchSpace([p]);
      } catch (e) {
        return e as CvoptError;
      }
      throw new Error('expected a CvoptError');
    };
    expect(err({ name: 'a', type: 'float', low: 2, high: 1 }).where?.field).toBe('a.low');
    expect(err({ name: 'a', type: 'logfloat', low: 0, high: 1 }).message).toMatch(/log-scaled/);
    expect(err({ name: 'a', type: 'int', low: 0.5, high: 3 }).message).toMatch(/integers/);
    expect(err({ name: 'a', type: 'choice', choices: [1, 2], default: 3 }).where?.field).toBe('a.default');
  });

  it('hashes equal genomes equally whatever the key order', () => {
    expect(genomeKey({ a: 1, b: 'x' })).toBe(genomeKey({ b: 'x', a: 1 }));
    expect(genomeKey({ a: 0.1 + 0.2 })).toBe(genomeKey({ a: 0.3 }));
    expect(genomeKey({ a: 1 })).not.toBe(genomeKey({ a: 2 }));
  });
});

describe('issue 19 operators', () => {
  it('sbxLine keeps children on the parents\' line and inside the box, deterministically', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) {
      // Parents near the bounds too, so the step cap is exercised.
      const a = Array.from({ length: 5 }, () => (i % 2 ? rng.float() : rng.float() * 0.02));
      const b = Array.from({ length: 5 }, () => (i % 2 ? rng.float() : 1 - rng.float() * 0.02));
      const [c1, c2] = sbxLine(a, b, rng, 1);
      for (const c of [c1, c2]) {
        for (const u of c) {
          expect(u).toBeGreaterThanOrEqual(0);
          expect(u).toBeLessThanOrEqual(1);
        }
        // c − a is parallel to b − a: c = a + t·(b − a) with one t for every gene.
        const t = (c[0]! - a[0]!) / (b[0]! - a[0]!);
        c.forEach((u, k) => expect(u).toBeCloseTo(a[k]! + t * (b[k]! - a[k]!), 9));
      }
      // The midpoint is preserved: the two children are symmetric about it.
      c1.forEach((u, k) => expect(u + c2[k]!).toBeCloseTo(a[k]! + b[k]!, 9));
    }
    const draw = (seed: number) => sbxLine([0.1, 0.2, 0.3], [0.6, 0.5, 0.4], new Rng(seed), 1);
    expect(draw(8)).toEqual(draw(8));
    expect(draw(8)).not.toEqual(draw(9));
  });

  it('clearing survival keeps the best, then distinct members, and near-copies only to fill up', () => {
    const m = (id: number, x: number[], f: number) => ({ id, x, eval: { objectives: [f] } });
    const all = [m(0, [0.5, 0.5], 1), m(1, [0.5005, 0.5], 2), m(2, [0.5, 0.5], 3), m(3, [0.9, 0.1], 4), m(4, [0.1, 0.9], 5)];
    const cmp = (a: Evaluation, b: Evaluation) => a.objectives[0]! - b.objectives[0]!;
    expect(survivors(all, 3, cmp, 0.002).map((s) => s.id)).toEqual([0, 3, 4]);
    expect(survivors(all, 4, cmp, 0.002).map((s) => s.id)).toEqual([0, 3, 4, 1]);
    // Radius 0: only the exact copy (id 2) is pushed back.
    expect(survivors(all, 5, cmp, 0).map((s) => s.id)).toEqual([0, 1, 3, 4, 2]);
  });

  it('the ε comparison ranks by objective within ε and is Deb\'s rules at ε = 0', () => {
    const feasible = { objectives: [10], violations: [0] };
    const nearly = { objectives: [1], violations: [0.05] };
    const far = { objectives: [0], violations: [3] };
    const failed: Evaluation = { objectives: [], failed: true };
    expect([far, feasible, failed, nearly].sort(epsilonCompare(0.1))).toEqual([nearly, feasible, far, failed]);
    const evals = [far, feasible, failed, nearly];
    expect(evals.slice().sort(epsilonCompare(0))).toEqual(evals.slice().sort(debCompare));
  });

  it('probability matching favours the mutation strength whose children survive, within its floor', () => {
    const arms = { etas: [5, 20, 100], beta: 0.5, pMin: 0.05 };
    const offspring = [0, 1, 2, 3, 4, 5].map((id) => ({ id, x: [0.5], eval: { objectives: [id] } }));
    // Children 0 and 3 used index 2 (ηm 100) and both survive; the others used 0 and 1 and die.
    const state = { ...armsInitialState(arms), arms: [2, 0, 1, 2, 0, 1] };
    const { probabilities, quality } = creditArms(arms, state, offspring, [offspring[0]!, offspring[3]!]);
    expect(probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(probabilities[2]!).toBeGreaterThan(probabilities[0]!);
    expect(quality).toEqual([0.5, 0.5, 1]);
    for (const p of probabilities) expect(p).toBeGreaterThanOrEqual(0.05);
    // The mutation it builds records each draw, stays in bounds and is deterministic.
    const mutateWith = (seed: number) => {
      const used: number[] = [];
      const rng = new Rng(seed);
      const xs = Array.from({ length: 50 }, () => armMutation(arms, probabilities, 1, rng, used)([0, 0.5, 1]));
      return { xs, used };
    };
    const a = mutateWith(4);
    expect(a).toEqual(mutateWith(4));
    expect(a.used).toHaveLength(50);
    for (const x of a.xs) for (const u of x) expect(u >= 0 && u <= 1).toBe(true);
  });

  it('g06 has its known optimum with both constraints active', () => {
    const e = g06().evaluate([14.095, 0.84296]);
    expect(e.objectives[0]!).toBeCloseTo(-6961.81, 1);
    for (const v of e.violations!) expect(v).toBeLessThan(1e-3);
    expect(g06().evaluate([50, 50]).violations![1]!).toBeGreaterThan(0);
  });
});

describe('ranking', () => {
  const e = (objectives: number[], violations?: number[]): Evaluation => (violations ? { objectives, violations } : { objectives });

  it('sorts a hand-checked set into fronts', () => {
    const pts = [
      [1, 5], // 0: front 0
      [2, 3], // 1: front 0
      [4, 1], // 2: front 0
      [3, 4], // 3: dominated by 1 → front 1
      [5, 5], // 4: dominated by 3 → front 2
      [2, 3], // 5: equal to 1, neither dominates → front 0
    ];
    expect(nonDominatedSort(pts.map((p) => e(p)))).toEqual([[0, 1, 2, 5], [3], [4]]);
  });

  it('computes crowding distances by hand', () => {
    // Sorted by f1: (0,4) (1,2) (3,1) (4,0); ranges 4 and 4.
    const d = crowdingDistance([
      [1, 2],
      [0, 4],
      [4, 0],
      [3, 1],
    ]);
    expect(d[1]).toBe(Infinity);
    expect(d[2]).toBe(Infinity);
    expect(d[0]).toBeCloseTo((3 - 0) / 4 + (4 - 1) / 4, 12);
    expect(d[3]).toBeCloseTo((4 - 1) / 4 + (2 - 0) / 4, 12);
  });

  it('applies Deb feasibility rules, failed trials last', () => {
    const feasibleBad = e([100], [0, 0]);
    const feasibleGood = e([1], [0]);
    const slightlyInfeasible = e([-50], [0.1]);
    const veryInfeasible = e([-99], [2, 3]);
    const failed: Evaluation = { objectives: [], failed: true, error: 'boom' };
    const sorted = [failed, veryInfeasible, feasibleBad, slightlyInfeasible, feasibleGood].sort(debCompare);
    expect(sorted).toEqual([feasibleGood, feasibleBad, slightlyInfeasible, veryInfeasible, failed]);
    // Constrained domination puts infeasible points behind every feasible front.
    const fronts = nonDominatedSort([slightlyInfeasible, feasibleBad, failed, feasibleGood]);
    expect(fronts).toEqual([[3], [1], [0], [2]]);
  });

  it('keeps NSGA-II extremes and breaks a front by crowding', () => {
    const members = [
      [0, 10],
      [10, 0],
      [5, 5],
      [4.9, 5.2],
      [20, 20],
    ].map((o, id) => ({ id, x: [0], eval: e(o) }));
    const { pop, rank } = nsga2Survival(members, 3);
    expect(pop.map((m) => m.id).sort()).toEqual([0, 1, 2].sort());
    expect(rank).toEqual([0, 0, 0]);
  });

  it('measures 2-D hypervolume and picks the knee or weighted point', () => {
    // Strips left to right: 1.1·0.1 + 0.6·0.5 + 0.1·0.5.
    expect(hypervolume2d([[0, 1], [1, 0], [0.5, 0.5]], [1.1, 1.1])).toBeCloseTo(0.46, 12);
    expect(hypervolume2d([[0.5, 0.5]], [1, 1])).toBeCloseTo(0.25, 12);
    expect(hypervolume2d([[0.5, 0.5], [0.6, 0.6]], [1, 1])).toBeCloseTo(0.25, 12);
    const front = [
      [0, 1],
      [0.2, 0.3],
      [0.6, 0.2],
      [1, 0],
    ];
    expect(choosePoint(front)).toBe(1);
    expect(choosePoint(front, [1, 0])).toBe(0);
    expect(choosePoint(front, [0, 1])).toBe(3);
  });
});

function drive(study: Study, evaluate: (v: number[]) => Evaluation, untilGeneration = Infinity): void {
  while (!study.done && study.generation <= untilGeneration) {
    for (const t of study.ask()) study.tell(t.id, evaluate(study.space.params.map((p) => t.params[p.name] as number)));
  }
}

describe('study', () => {
  const problem = rastrigin(4);

  it.each(STRATEGY_NAMES)('%s: same seed, same run; different seed, different run', (strategy) => {
    const run = (seed: number) => {
      const s = new Study({ space: problem.space, strategy, population: 6, generations: 4, rng: new Rng(seed) });
      drive(s, problem.evaluate);
      return s.trials().map((t) => t.params);
    };
    expect(run(3)).toEqual(run(3));
    expect(run(3)).not.toEqual(run(4));
  });

  it.each(STRATEGY_NAMES)('%s: save after k generations, restore, continue = uninterrupted', (strategy) => {
    const p = strategy === 'nsga2' ? zdt1(5) : strategy === 'constrained' ? constrainedSphere(4) : problem;
    const whole = new Study({ space: p.space, strategy, population: 5, generations: 5, rng: new Rng(11) });
    drive(whole, p.evaluate);

    const first = new Study({ space: p.space, strategy, population: 5, generations: 5, rng: new Rng(11) });
    drive(first, p.evaluate, 2);
    // Also tell part of generation 3 before saving: mid-generation state must survive too.
    const partial = first.ask().slice(0, 2);
    for (const t of partial) first.tell(t.id, p.evaluate(first.space.params.map((q) => t.params[q.name] as number)));
    const saved = JSON.parse(JSON.stringify(first.toJSON())) as StudyState;
    const resumed = Study.fromJSON(saved);
    expect(resumed.ask().map((t) => t.id)).toEqual(first.ask().map((t) => t.id));
    drive(resumed, p.evaluate);

    expect(resumed.trials()).toEqual(whole.trials());
    expect(resumed.best()).toEqual(whole.best());
  });

  it.each(STRATEGY_NAMES)('%s: the default genome is in generation 1 and the best is never worse', (strategy) => {
    const space = new SearchSpace(MIXED);
    const s = new Study({ space, strategy, population: 4, generations: 3, rng: new Rng(5) });
    const gen1 = s.ask();
    expect(gen1).toHaveLength(4);
    const dflt = gen1.filter((t) => t.isDefault);
    expect(dflt).toHaveLength(1);
    expect(dflt[0]!.params).toEqual(space.defaults());
    const f = (g: Record<string, unknown>): Evaluation => ({
      objectives: [((g.f as number) - 1) ** 2, Math.log10(g.lr as number)],
    });
    const defaultScore = f(space.defaults()).objectives[0]!;
    while (!s.done) for (const t of s.ask()) s.tell(t.id, f(t.params));
    expect(s.trials()).toHaveLength(12);
    expect(s.best()!.eval!.objectives[0]!).toBeLessThanOrEqual(defaultScore);
    for (const t of s.trials()) checkGenome(space, t.params);
  });

  it.each(STRATEGY_NAMES)('%s: population() is the final population once done', (strategy) => {
    const p = strategy === 'nsga2' ? zdt1(5) : problem;
    const s = new Study({ space: p.space, strategy, population: 6, generations: 3, rng: new Rng(2) });
    expect(s.population()).toEqual([]);
    drive(s, p.evaluate);
    const final = s.population();
    expect(final).toHaveLength(6);
    const ids = new Set(s.trials().map((t) => t.id));
    for (const t of final) expect(ids.has(t.id)).toBe(true);
    // Generational: the final population is the last generation; (μ+λ): it holds the best seen.
    if (strategy === 'tournament') expect(final.every((t) => t.generation === 3)).toBe(true);
    if (strategy === 'elitist' || strategy === 'adaptive') expect(final.map((t) => t.id)).toContain(s.best()!.id);
  });

  it('records failed trials as infeasible, never as a score', () => {
    const s = new Study({ space: MIXED, strategy: 'elitist', population: 3, generations: 2, rng: new Rng(2) });
    const [a, b, c] = s.ask();
    s.tell(a!.id, { objectives: [], failed: true, error: 'CUDA out of memory' });
    s.tell(b!.id, { objectives: [5] });
    s.tell(c!.id, { objectives: [7] });
    expect(s.best()!.id).toBe(b!.id);
    const failed = s.trials().find((t) => t.id === a!.id)!;
    expect(failed.eval).toMatchObject({ failed: true, error: 'CUDA out of memory', objectives: [] });
    expect(() => s.tell(a!.id, { objectives: [1] })).toThrow(CvoptError);
  });

  it('constrained strategy finds feasible points where random picks mostly infeasible ones', () => {
    const p = constrainedSphere(6);
    const s = new Study({ space: p.space, strategy: 'constrained', population: 10, generations: 12, rng: new Rng(9) });
    drive(s, p.evaluate);
    const best = s.best()!;
    expect(best.eval!.violations!.every((v) => v === 0)).toBe(true);
    // Random search with the same 120 evaluations (same seed) is mostly infeasible and does worse.
    const space = new SearchSpace(p.space);
    const rng = new Rng(9);
    let randomBest = Infinity;
    let randomFeasible = 0;
    for (let i = 0; i < 120; i++) {
      const g = space.decode(space.sampleGenes(rng));
      const e = p.evaluate(space.params.map((q) => g[q.name] as number));
      if (e.violations!.every((v) => v === 0)) {
        randomFeasible++;
        randomBest = Math.min(randomBest, e.objectives[0]!);
      }
    }
    expect(randomFeasible / 120).toBeLessThan(0.5);
    expect(best.eval!.objectives[0]!).toBeLessThan(randomBest);
    expect(s.population().every((t) => t.eval!.violations!.every((v) => v === 0))).toBe(true);
  });

  it('nsga2 returns a non-dominated front and a knee on it', () => {
    const p = zdt1(6);
    const s = new Study({ space: p.space, strategy: 'nsga2', population: 12, generations: 8, rng: new Rng(4) });
    drive(s, p.evaluate);
    const front = s.paretoFront();
    expect(front.length).toBeGreaterThan(2);
    for (const a of front) for (const b of front) expect(a.eval!.objectives[0]! < b.eval!.objectives[0]! && a.eval!.objectives[1]! < b.eval!.objectives[1]!).toBe(false);
    const knee = s.chosenPoint()!;
    expect(front.map((t) => t.id)).toContain(knee.id);
  });

  it('rejects bad configuration', () => {
    expect(() => new Study({ space: MIXED, strategy: 'elitist', population: 1, rng: new Rng(1) })).toThrow(/population/);
    expect(() => new Study({ space: MIXED, strategy: 'bogus' as 'elitist', population: 3, rng: new Rng(1) })).toThrow(/unknown strategy/);
  });
});

describe('deployment fitness', () => {
  it('records each term and penalises only latency over the target', () => {
    const t = deploymentFitness({ map50: 0.5, map5095: 0.3, p95Ms: 30 }, { targetLatencyMs: 20, latencyWeight: 0.4 });
    expect(t.accuracy).toBeCloseTo(0.7 * 0.5 + 0.3 * 0.3, 12);
    expect(t.latencyPenalty).toBeCloseTo(0.4 * 0.5, 12);
    expect(t.fitness).toBeCloseTo(t.accuracy - t.latencyPenalty, 12);
    expect(deploymentFitness({ map50: 0.5, map5095: 0.3, p95Ms: 10 }, { targetLatencyMs: 20 }).latencyPenalty).toBe(0);
    expect(deploymentFitness({ map50: 0.5, map5095: 0.3, p95Ms: 99 }).latencyPenalty).toBe(0);
  });
});

describe('tune space', () => {
  it('holds the Ultralytics names with their defaults and imgsz as a multiple-of-32 choice', () => {
    const { space, fixed } = tuneSpace(128);
    expect(fixed).toEqual({});
    const names = space.params.map((p) => p.name);
    for (const n of ['lr0', 'lrf', 'momentum', 'weight_decay', 'box', 'cls', 'dfl', 'mosaic', 'mixup', 'close_mosaic', 'imgsz']) expect(names).toContain(n);
    expect(space.params.find((p) => p.name === 'lr0')).toMatchObject({ type: 'logfloat', low: 1e-5, high: 1e-1 });
    expect(space.params.find((p) => p.name === 'imgsz')).toMatchObject({ type: 'choice', choices: [64, 96, 128], default: 128 });
    expect(space.defaults().lr0).toBe(0.01);
  });

  it('applies overrides: fixed values, new bounds, choices', () => {
    const { space, fixed } = tuneSpace(128, { mosaic: 0, lr0: { low: 1e-4, high: 1e-2 }, imgsz: { choices: [96, 128] } });
    expect(fixed).toEqual({ mosaic: 0 });
    expect(space.params.find((p) => p.name === 'mosaic')).toBeUndefined();
    expect(space.params.find((p) => p.name === 'lr0')).toMatchObject({ type: 'logfloat', low: 1e-4, high: 1e-2, default: 0.01 });
    expect(space.params.find((p) => p.name === 'imgsz')).toMatchObject({ choices: [96, 128], default: 128 });
  });

  it.each([
    [{ learning_rate: 0.1 }, 'learning_rate', /unknown hyperparameter/],
    [{ lr0: { low: 0.1, high: 0.01 } }, 'lr0.low', /above high/],
    [{ lr0: { low: 0, high: 0.01 } }, 'lr0.low', /log-scaled/],
    [{ box: { low: 1, hi: 3 } }, 'box.hi', /unknown key/],
    [{ imgsz: { choices: [100] } }, 'imgsz.choices.0', /multiples of 32/],
    [{ close_mosaic: { low: 0.5, high: 3 } }, 'close_mosaic.low', /integer/],
    [{ mosaic: 'lots' }, 'mosaic', /must be a number/],
  ])('rejects %j at field %s', (overrides, field, message) => {
    try {
      tuneSpace(128, overrides);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CvoptError);
      expect((e as CvoptError).code).toBe('INVALID_CONFIG');
      expect((e as CvoptError).where?.field).toBe(field);
      expect((e as CvoptError).message).toMatch(message);
    }
  });
});
