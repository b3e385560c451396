/**
 * Orderings shared by the strategies. Every objective is minimised. A failed trial is infeasible with infinite
 * violation: it loses to every trial that ran, and it is never scored as 0.
 */

export interface Evaluation {
  /** Minimised objective values (one for single-objective strategies). Empty for a failed trial. */
  objectives: number[];
  /** Constraint violations, each ≥ 0 (0 = satisfied). */
  violations?: number[];
  failed?: boolean;
  error?: string;
}

export function totalViolation(e: Evaluation): number {
  if (e.failed) return Infinity;
  let s = 0;
  for (const v of e.violations ?? []) s += Math.max(0, v);
  return s;
}

export function isFeasible(e: Evaluation): boolean {
  return totalViolation(e) === 0;
}

/** The single objective, ignoring constraints; a failed trial is +∞ (worst). */
export function scalar(e: Evaluation): number {
  if (e.failed) return Infinity;
  const v = e.objectives[0];
  return v === undefined || Number.isNaN(v) ? Infinity : v;
}

/**
 * Deb's feasibility rules (Deb 2000) as a comparator (< 0 when a is better): a feasible solution beats an
 * infeasible one; two feasible ones compare by objective; two infeasible ones by total violation.
 */
export function debCompare(a: Evaluation, b: Evaluation): number {
  const va = totalViolation(a);
  const vb = totalViolation(b);
  if (va === 0 && vb === 0) return cmp(scalar(a), scalar(b));
  if (va === 0) return -1;
  if (vb === 0) return 1;
  return cmp(va, vb);
}

/** Objective-only comparator for the unconstrained strategies (failed trials last). */
export function objectiveCompare(a: Evaluation, b: Evaluation): number {
  return cmp(scalar(a), scalar(b));
}

function cmp(a: number, b: number): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/** Pareto dominance on minimised objectives. */
export function dominates(a: readonly number[], b: readonly number[]): boolean {
  let strictly = false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]! > b[i]!) return false;
    if (a[i]! < b[i]!) strictly = true;
  }
  return strictly;
}

/** Constrained dominance (Deb et al. 2002, NSGA-II §VI): feasibility first, then violation, then Pareto. */
export function constrainedDominates(a: Evaluation, b: Evaluation): boolean {
  const va = totalViolation(a);
  const vb = totalViolation(b);
  if (va === 0 && vb === 0) return dominates(a.objectives, b.objectives);
  if (va === 0) return true;
  if (vb === 0) return false;
  return va < vb;
}

/**
 * Fast non-dominated sorting (Deb et al. 2002): fronts as lists of indices, front 0 non-dominated. O(M·N²).
 */
export function nonDominatedSort(evals: readonly Evaluation[]): number[][] {
  const n = evals.length;
  const dominatedBy: number[][] = Array.from({ length: n }, () => []);
  const count = new Array<number>(n).fill(0);
  const fronts: number[][] = [[]];
  for (let p = 0; p < n; p++) {
    for (let q = p + 1; q < n; q++) {
      if (constrainedDominates(evals[p]!, evals[q]!)) {
        dominatedBy[p]!.push(q);
        count[q]!++;
      } else if (constrainedDominates(evals[q]!, evals[p]!)) {
        dominatedBy[q]!.push(p);
        count[p]!++;
      }
    }
  }
  for (let p = 0; p < n; p++) if (count[p] === 0) fronts[0]!.push(p);
  let i = 0;
  while (fronts[i]!.length > 0) {
    const next: number[] = [];
    for (const p of fronts[i]!) {
      for (const q of dominatedBy[p]!) {
        count[q]!--;
        if (count[q] === 0) next.push(q);
      }
    }
    i++;
    fronts.push(next);
  }
  fronts.pop();
  return fronts;
}

/**
 * Crowding distance of each member of one front (by position in `front`): the sum over objectives of the
 * normalised gap between its two neighbours; the extremes of each objective get +∞ so they are always kept.
 */
export function crowdingDistance(objectives: readonly (readonly number[])[]): number[] {
  const n = objectives.length;
  const d = new Array<number>(n).fill(0);
  if (n === 0) return d;
  const m = objectives[0]!.length;
  for (let k = 0; k < m; k++) {
    const order = [...Array(n).keys()].sort((a, b) => objectives[a]![k]! - objectives[b]![k]! || a - b);
    const lo = objectives[order[0]!]![k]!;
    const hi = objectives[order[n - 1]!]![k]!;
    d[order[0]!] = Infinity;
    d[order[n - 1]!] = Infinity;
    if (hi === lo) continue;
    for (let i = 1; i < n - 1; i++) {
      d[order[i]!]! += (objectives[order[i + 1]!]![k]! - objectives[order[i - 1]!]![k]!) / (hi - lo);
    }
  }
  return d;
}

/** 2-D hypervolume (minimisation) dominated by `points` and bounded by `ref`. */
export function hypervolume2d(points: readonly (readonly number[])[], ref: readonly [number, number]): number {
  const pts = points.filter((p) => p[0]! < ref[0] && p[1]! < ref[1]).map((p) => [p[0]!, p[1]!] as const);
  pts.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let hv = 0;
  let bestY = ref[1];
  for (const [x, y] of pts) {
    if (y >= bestY) continue;
    hv += (ref[0] - x) * (bestY - y);
    bestY = y;
  }
  return hv;
}

/**
 * A point to act on from a Pareto front (indices into `objectives`). With weights: the minimum weighted sum of the
 * objectives normalised to [0, 1] over the front. Without: the knee — for two objectives, the point farthest
 * below the line joining the two extremes; for more, the point nearest the normalised ideal point.
 */
export function choosePoint(objectives: readonly (readonly number[])[], weights?: readonly number[]): number {
  const n = objectives.length;
  if (n === 0) throw new RangeError('choosePoint() of an empty front');
  if (n === 1) return 0;
  const m = objectives[0]!.length;
  const lo = Array.from({ length: m }, (_, k) => Math.min(...objectives.map((o) => o[k]!)));
  const hi = Array.from({ length: m }, (_, k) => Math.max(...objectives.map((o) => o[k]!)));
  const norm = objectives.map((o) => o.map((v, k) => (hi[k]! === lo[k]! ? 0 : (v - lo[k]!) / (hi[k]! - lo[k]!))));
  let best = 0;
  let bestScore = Infinity;
  norm.forEach((p, i) => {
    let score: number;
    if (weights) score = p.reduce((s, v, k) => s + (weights[k] ?? 0) * v, 0);
    else if (m === 2) {
      // Extremes after normalisation are (0, 1) and (1, 0): distance below the line x + y = 1, negated to minimise.
      score = p[0]! + p[1]! - 1;
    } else score = Math.hypot(...p);
    if (score < bestScore - 1e-12) {
      bestScore = score;
      best = i;
    }
  });
  return best;
}
