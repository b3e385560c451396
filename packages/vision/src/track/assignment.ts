/**
 * Optimal assignment. `hungarian` is the shortest-augmenting-path form of the Hungarian method with row/column
 * potentials (the Jonker–Volgenant formulation, O(n²·m)) for a dense n×m matrix with n ≤ m. `assign` solves the
 * gated problem trackers and MOT metrics need: every pair has a cost or is infeasible, and leaving a row or a column
 * unmatched has its own cost, so a pair is only taken when it is cheaper than leaving both sides alone. The feasible
 * pairs split into independent connected components (objects far apart never compete), each solved densely.
 */

/** Column assigned to each row of a dense n×m cost matrix (n ≤ m) minimising the total; rows of `cost` are Float64Arrays or arrays. */
export function hungarian(cost: readonly ArrayLike<number>[], m: number): Int32Array {
  const n = cost.length;
  if (n > m) throw new RangeError(`hungarian: ${n} rows > ${m} columns; transpose the problem`);
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  // p[j]: row (1-based) owning column j; column 0 is the virtual start of each augmenting path.
  const p = new Int32Array(m + 1);
  const way = new Int32Array(m + 1);
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      const row = cost[i0 - 1]!;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = row[j - 1]! - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      if (j1 === 0) throw new RangeError('hungarian: costs must be finite');
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[p[j]!] = u[p[j]!]! + delta;
          v[j] = v[j]! - delta;
        } else minv[j] = minv[j]! - delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }
  const rowToCol = new Int32Array(n).fill(-1);
  for (let j = 1; j <= m; j++) if (p[j]! > 0) rowToCol[p[j]! - 1] = j - 1;
  return rowToCol;
}

export interface AssignProblem {
  rows: number;
  cols: number;
  /** Cost of pairing row i with column j; Infinity (or NaN) when the pair is not allowed. */
  cost(i: number, j: number): number;
  /** Cost of leaving row i unmatched. */
  rowUnmatched(i: number): number;
  /** Cost of leaving column j unmatched. */
  colUnmatched(j: number): number;
}

export interface Assignment {
  /** [row, col] pairs, rows ascending. */
  pairs: [number, number][];
  unmatchedRows: number[];
  unmatchedCols: number[];
  /** Total cost: pairs plus unmatched rows and columns. */
  total: number;
}

/** Minimum-total-cost assignment with per-side unmatched costs (exact). */
export function assign(pb: AssignProblem): Assignment {
  const edges: number[] = [];
  for (let i = 0; i < pb.rows; i++) {
    for (let j = 0; j < pb.cols; j++) {
      const c = pb.cost(i, j);
      if (Number.isFinite(c)) edges.push(i, j, c);
    }
  }
  return assignSparse(pb.rows, pb.cols, edges, pb.rowUnmatched, pb.colUnmatched);
}

/**
 * The same problem given by its allowed pairs only: `edges` holds (row, col, cost) triplets, each pair at most once.
 * What trackers call, since most track–detection pairs do not overlap at all.
 */
export function assignSparse(rows: number, cols: number, edges: ArrayLike<number>, rowUnmatched: (i: number) => number, colUnmatched: (j: number) => number): Assignment {
  const pb = { rows, cols, rowUnmatched, colUnmatched };
  // Union-find over rows (0..rows-1) and columns (rows..rows+cols-1), joined by useful pairs.
  const parent = new Int32Array(rows + cols);
  for (let k = 0; k < parent.length; k++) parent[k] = k;
  const find = (k: number): number => {
    while (parent[k] !== k) {
      parent[k] = parent[parent[k]!]!;
      k = parent[k]!;
    }
    return k;
  };
  const feasible: number[] = [];
  for (let k = 0; k + 2 < edges.length; k += 3) {
    const i = edges[k]!;
    const j = edges[k + 1]!;
    const c = edges[k + 2]!;
    // A pair costing at least what leaving both alone costs can never improve a solution.
    if (Number.isFinite(c) && c < rowUnmatched(i) + colUnmatched(j)) {
      feasible.push(i, j, c);
      const a = find(i);
      const b = find(rows + j);
      if (a !== b) parent[a] = b;
    }
  }
  const groups = new Map<number, { r: number[]; c: number[] }>();
  const groupOf = (k: number) => {
    const root = find(k);
    let g = groups.get(root);
    if (!g) groups.set(root, (g = { r: [], c: [] }));
    return g;
  };
  for (let i = 0; i < rows; i++) groupOf(i).r.push(i);
  for (let j = 0; j < cols; j++) groupOf(rows + j).c.push(j);
  const pairCost = new Map<number, number>();
  for (let k = 0; k < feasible.length; k += 3) pairCost.set(feasible[k]! * cols + feasible[k + 1]!, feasible[k + 2]!);

  const pairs: [number, number][] = [];
  const unmatchedRows: number[] = [];
  const unmatchedCols: number[] = [];
  let total = 0;
  for (const { r, c } of groups.values()) {
    if (r.length === 0 || c.length === 0) {
      for (const i of r) {
        unmatchedRows.push(i);
        total += pb.rowUnmatched(i);
      }
      for (const j of c) {
        unmatchedCols.push(j);
        total += pb.colUnmatched(j);
      }
      continue;
    }
    if (r.length === 1 && c.length === 1) {
      // A single feasible pair: it is cheaper than leaving both alone by construction.
      pairs.push([r[0]!, c[0]!]);
      total += pairCost.get(r[0]! * cols + c[0]!)!;
      continue;
    }
    // Square (R+C)×(R+C): [pairs | row i's "unmatched" slot], [column j's "unmatched" slot | 0].
    const R = r.length;
    const C = c.length;
    const n = R + C;
    let big = 1;
    for (const i of r) big += Math.abs(pb.rowUnmatched(i));
    for (const j of c) big += Math.abs(pb.colUnmatched(j));
    for (let k = 0; k < feasible.length; k += 3) big += Math.abs(feasible[k + 2]!);
    const m: Float64Array[] = [];
    for (let a = 0; a < n; a++) m.push(new Float64Array(n).fill(big));
    for (let a = 0; a < R; a++) {
      for (let b = 0; b < C; b++) {
        const pc = pairCost.get(r[a]! * cols + c[b]!);
        if (pc !== undefined) m[a]![b] = pc;
      }
      m[a]![C + a] = pb.rowUnmatched(r[a]!);
    }
    for (let b = 0; b < C; b++) {
      m[R + b]![b] = pb.colUnmatched(c[b]!);
      for (let a = 0; a < R; a++) m[R + b]![C + a] = 0;
    }
    const sol = hungarian(m, n);
    for (let a = 0; a < R; a++) {
      const b = sol[a]!;
      if (b < C && m[a]![b]! < big) {
        pairs.push([r[a]!, c[b]!]);
        total += m[a]![b]!;
      } else {
        unmatchedRows.push(r[a]!);
        total += pb.rowUnmatched(r[a]!);
      }
    }
    const taken = new Set<number>();
    for (let a = 0; a < R; a++) if (sol[a]! < C && m[a]![sol[a]!]! < big) taken.add(sol[a]!);
    for (let b = 0; b < C; b++) {
      if (!taken.has(b)) {
        unmatchedCols.push(c[b]!);
        total += pb.colUnmatched(c[b]!);
      }
    }
  }
  pairs.sort((a, b) => a[0] - b[0]);
  unmatchedRows.sort((a, b) => a - b);
  unmatchedCols.sort((a, b) => a - b);
  return { pairs, unmatchedRows, unmatchedCols, total };
}

/**
 * Gated assignment on a dense cost matrix: pairs costing more than `maxCost` are never taken and, among the rest,
 * the total is minimised with each side's unmatched cost maxCost / 2 (so a pair is worth taking iff it costs less
 * than maxCost, the convention ByteTrack-style trackers use).
 */
export function assignGated(cost: readonly ArrayLike<number>[], cols: number, maxCost: number): Assignment {
  return assign({
    rows: cost.length,
    cols,
    cost: (i, j) => {
      const c = cost[i]![j]!;
      return c <= maxCost ? c : Infinity;
    },
    rowUnmatched: () => maxCost / 2,
    colUnmatched: () => maxCost / 2,
  });
}
