#!/usr/bin/env node
// Usage: npx tsc -b packages/optimizer && node bench/optimizer.mjs [--seeds 20] [--population 20] [--generations 25]
//                                                              [--mo-population 100] [--mo-generations 100]
//
// Each strategy against random search at the same evaluation budget (population × generations) on its problem
// class (NSGA-II gets its own, larger budget: 30-D ZDT needs a few thousand evaluations to reach the front): 10-D sphere and Rastrigin for the single-objective strategies, a constrained 10-D sphere for the
// constraint-aware one (best feasible value; f* = 3), ZDT1/ZDT2 (30-D) for NSGA-II scored by hypervolume with the
// reference point (1.1, 1.1) (the true fronts give 0.8767 and 0.5433). Prints median and IQR over the seeds.
import { Rng } from '../packages/core/dist/index.js';
import {
  Study,
  SearchSpace,
  sphere,
  rastrigin,
  constrainedSphere,
  zdt1,
  zdt2,
  hypervolume2d,
  totalViolation,
} from '../packages/optimizer/dist/index.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SEEDS = arg('seeds', 20);
const POP = arg('population', 20);
const GENS = arg('generations', 25);
const MO_POP = arg('mo-population', 100);
const MO_GENS = arg('mo-generations', 100);

function values(space, params) {
  return space.params.map((p) => params[p.name]);
}

function runStudy(strategy, problem, seed, [population, generations]) {
  const space = new SearchSpace(problem.space);
  const study = new Study({ space, strategy, population, generations, rng: new Rng(seed) });
  while (!study.done) for (const t of study.ask()) study.tell(t.id, problem.evaluate(values(space, t.params)));
  return study.trials().map((t) => t.eval);
}

function runRandom(problem, seed, [population, generations]) {
  const space = new SearchSpace(problem.space);
  const rng = new Rng(seed);
  const out = [];
  for (let i = 0; i < population * generations; i++) out.push(problem.evaluate(values(space, space.decode(space.sampleGenes(rng)))));
  return out;
}

// Score to minimise for single-objective problems: the best feasible objective (Infinity if none feasible).
function bestFeasible(evals) {
  let b = Infinity;
  for (const e of evals) if (totalViolation(e) === 0 && e.objectives[0] < b) b = e.objectives[0];
  return b;
}

// hypervolume2d only counts non-dominated area, so the whole archive can go in without sorting it first.
function hv(evals) {
  return hypervolume2d(evals.filter((e) => totalViolation(e) === 0).map((e) => e.objectives), [1.1, 1.1]);
}

function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function summary(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return { median: quantile(s, 0.5), iqr: quantile(s, 0.75) - quantile(s, 0.25) };
}

const fmt = (x) => (Math.abs(x) >= 100 ? x.toFixed(1) : Math.abs(x) >= 1 ? x.toFixed(3) : x.toFixed(4));

const cases = [
  ['tournament', sphere(10), 'best f (min)', bestFeasible],
  ['tournament', rastrigin(10), 'best f (min)', bestFeasible],
  ['elitist', sphere(10), 'best f (min)', bestFeasible],
  ['elitist', rastrigin(10), 'best f (min)', bestFeasible],
  ['adaptive', sphere(10), 'best f (min)', bestFeasible],
  ['adaptive', rastrigin(10), 'best f (min)', bestFeasible],
  ['constrained', constrainedSphere(10), 'best feasible f (min)', bestFeasible],
  ['nsga2', zdt1(30), 'hypervolume (max)', hv],
  ['nsga2', zdt2(30), 'hypervolume (max)', hv],
];

console.log(
  `budget: single-objective ${POP * GENS} evaluations (population ${POP} × ${GENS} generations), ` +
    `NSGA-II ${MO_POP * MO_GENS} (${MO_POP} × ${MO_GENS}); random search gets the same; ${SEEDS} seeds; median [IQR]\n`,
);
const rows = [['strategy', 'problem', 'score', 'strategy median [IQR]', 'random median [IQR]', 'beats random']];
let allBeat = true;
for (const [strategy, problem, label, score] of cases) {
  const mine = [];
  const rand = [];
  const budget = strategy === 'nsga2' ? [MO_POP, MO_GENS] : [POP, GENS];
  for (let seed = 1; seed <= SEEDS; seed++) {
    mine.push(score(runStudy(strategy, problem, seed, budget)));
    rand.push(score(runRandom(problem, 10_000 + seed, budget)));
  }
  const a = summary(mine);
  const b = summary(rand);
  const maximise = label.includes('max');
  const beat = maximise ? a.median > b.median : a.median < b.median;
  allBeat &&= beat;
  rows.push([strategy, problem.name, label, `${fmt(a.median)} [${fmt(a.iqr)}]`, `${fmt(b.median)} [${fmt(b.iqr)}]`, beat ? 'yes' : 'NO']);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
console.log(line(rows[0]));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows.slice(1)) console.log(line(r));
process.exitCode = allBeat ? 0 : 1;
