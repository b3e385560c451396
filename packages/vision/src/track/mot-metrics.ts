import { iou } from '../boxes.js';
import { assign } from './assignment.js';
import type { MotRow } from './mot-file.js';

export interface MotMetricsOptions {
  /** Least IoU for a ground-truth box and a hypothesis to correspond (default 0.5, MOTChallenge's). */
  iouThreshold?: number;
  /** Ground-truth rows with a known visibility below this are dropped (default 0: all). */
  minVisibility?: number;
}

export interface MotMetrics {
  /** Ground-truth boxes, hypotheses, and frames in either. */
  gt: number;
  hyp: number;
  frames: number;
  gtIds: number;
  hypIds: number;
  /** CLEAR-MOT (Bernardin & Stiefelhagen 2008). */
  mota: number;
  /** Mean IoU of the matched pairs (MOTChallenge's MOTP; B&S's distance form is 1 − this with d = 1 − IoU). */
  motp: number;
  tp: number;
  fp: number;
  fn: number;
  idsw: number;
  frag: number;
  /** Ground-truth trajectories covered ≥ 80% / < 20% of their frames. */
  mostlyTracked: number;
  mostlyLost: number;
  /** Identity measures (Ristani et al. 2016). */
  idf1: number;
  idp: number;
  idr: number;
  idtp: number;
  idfp: number;
  idfn: number;
}

function byFrame(rows: readonly MotRow[]): Map<number, MotRow[]> {
  const m = new Map<number, MotRow[]>();
  for (const r of rows) {
    let list = m.get(r.frame);
    if (!list) m.set(r.frame, (list = []));
    list.push(r);
  }
  return m;
}

/**
 * CLEAR-MOT and identity metrics of tracker output against ground truth.
 *
 * CLEAR-MOT, per frame: a ground-truth object keeps the hypothesis it was last matched to when that hypothesis is
 * present and still overlaps it enough; the remaining objects and hypotheses are matched by a minimum-distance
 * assignment (d = 1 − IoU, at most 1 − threshold) that first maximises the number of matches. A match whose
 * hypothesis differs from the object's last matched one (across gaps too) is an identity switch. MOTA = 1 − (FN + FP
 * + IDSW) / GT. A fragmentation is a tracked → untracked change of an object that is later tracked again.
 *
 * Identity: trajectories are matched one-to-one by a global minimum-cost bipartite matching, the cost of a pair being
 * the frames where either is present but the two do not overlap by the threshold (IDFN + IDFP), an unmatched
 * trajectory costing its length; IDF1 = 2·IDTP / (2·IDTP + IDFP + IDFN).
 */
export function motMetrics(gtRows: readonly MotRow[], hypRows: readonly MotRow[], opts: MotMetricsOptions = {}): MotMetrics {
  const thr = opts.iouThreshold ?? 0.5;
  const minVis = opts.minVisibility ?? 0;
  // Visibility -1 (MOTChallenge's "unknown", what trackers write) is kept.
  const gtKept = gtRows.filter((r) => r.conf !== 0 && (r.visibility < 0 || r.visibility >= minVis));
  const gtF = byFrame(gtKept);
  const hypF = byFrame(hypRows);
  const frames = [...new Set([...gtF.keys(), ...hypF.keys()])].sort((a, b) => a - b);

  const lastMatch = new Map<number, number>();
  // Per ground-truth id: the matched flag of every frame it is present in, for fragmentations and MT/ML.
  const history = new Map<number, boolean[]>();
  // Identity: per (gt id, hyp id) the frames they overlap by the threshold; lengths of each trajectory.
  const overlapFrames = new Map<string, number>();
  const gtLen = new Map<number, number>();
  const hypLen = new Map<number, number>();
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let idsw = 0;
  let iouSum = 0;

  for (const f of frames) {
    const g = gtF.get(f) ?? [];
    const h = hypF.get(f) ?? [];
    const ov = g.map((gr) => h.map((hr) => iou(gr.box, hr.box)));
    for (const gr of g) gtLen.set(gr.id, (gtLen.get(gr.id) ?? 0) + 1);
    for (const hr of h) hypLen.set(hr.id, (hypLen.get(hr.id) ?? 0) + 1);
    g.forEach((gr, i) =>
      h.forEach((hr, j) => {
        if (ov[i]![j]! >= thr) {
          const key = `${gr.id}\u0000${hr.id}`;
          overlapFrames.set(key, (overlapFrames.get(key) ?? 0) + 1);
        }
      }),
    );

    const gMatched = new Int32Array(g.length).fill(-1);
    const hUsed = new Uint8Array(h.length);
    // 1. Keep last correspondences that still hold.
    g.forEach((gr, i) => {
      const prev = lastMatch.get(gr.id);
      if (prev === undefined) return;
      const j = h.findIndex((hr, jj) => hr.id === prev && !hUsed[jj]);
      if (j >= 0 && ov[i]![j]! >= thr) {
        gMatched[i] = j;
        hUsed[j] = 1;
      }
    });
    // 2. Optimal assignment of the rest; unmatched cost large enough that more matches always win.
    const gi = g.map((_, i) => i).filter((i) => gMatched[i] === -1);
    const hj = h.map((_, j) => j).filter((j) => !hUsed[j]);
    const big = Math.min(gi.length, hj.length) + 1;
    const a = assign({
      rows: gi.length,
      cols: hj.length,
      cost: (r, c) => {
        const o = ov[gi[r]!]![hj[c]!]!;
        return o >= thr ? 1 - o : Infinity;
      },
      rowUnmatched: () => big,
      colUnmatched: () => big,
    });
    for (const [r, c] of a.pairs) {
      const i = gi[r]!;
      const j = hj[c]!;
      gMatched[i] = j;
      hUsed[j] = 1;
      const prev = lastMatch.get(g[i]!.id);
      if (prev !== undefined && prev !== h[j]!.id) idsw++;
    }
    g.forEach((gr, i) => {
      const j = gMatched[i]!;
      let hist = history.get(gr.id);
      if (!hist) history.set(gr.id, (hist = []));
      hist.push(j >= 0);
      if (j >= 0) {
        tp++;
        iouSum += ov[i]![j]!;
        lastMatch.set(gr.id, h[j]!.id);
      } else fn++;
    });
    for (let j = 0; j < h.length; j++) if (!hUsed[j]) fp++;
  }

  let frag = 0;
  let mostlyTracked = 0;
  let mostlyLost = 0;
  for (const hist of history.values()) {
    const covered = hist.filter(Boolean).length / hist.length;
    if (covered >= 0.8) mostlyTracked++;
    else if (covered < 0.2) mostlyLost++;
    let lastTracked = -1;
    for (let k = 0; k < hist.length; k++) {
      if (!hist[k]) continue;
      if (lastTracked >= 0 && lastTracked < k - 1) frag++;
      lastTracked = k;
    }
  }

  // Identity: global matching of trajectories.
  const gIds = [...gtLen.keys()];
  const hIds = [...hypLen.keys()];
  const idm = assign({
    rows: gIds.length,
    cols: hIds.length,
    cost: (r, c) => {
      const both = overlapFrames.get(`${gIds[r]!}\u0000${hIds[c]!}`);
      return both ? gtLen.get(gIds[r]!)! + hypLen.get(hIds[c]!)! - 2 * both : Infinity;
    },
    rowUnmatched: (r) => gtLen.get(gIds[r]!)!,
    colUnmatched: (c) => hypLen.get(hIds[c]!)!,
  });
  let idtp = 0;
  for (const [r, c] of idm.pairs) idtp += overlapFrames.get(`${gIds[r]!}\u0000${hIds[c]!}`)!;
  const gtTotal = gtKept.length;
  const hypTotal = hypRows.length;
  const idfn = gtTotal - idtp;
  const idfp = hypTotal - idtp;
  const div = (a: number, b: number) => (b > 0 ? a / b : 0);
  return {
    gt: gtTotal,
    hyp: hypTotal,
    frames: frames.length,
    gtIds: gIds.length,
    hypIds: hIds.length,
    mota: gtTotal > 0 ? 1 - (fn + fp + idsw) / gtTotal : 0,
    motp: div(iouSum, tp),
    tp,
    fp,
    fn,
    idsw,
    frag,
    mostlyTracked,
    mostlyLost,
    idf1: div(2 * idtp, 2 * idtp + idfp + idfn),
    idp: div(idtp, idtp + idfp),
    idr: div(idtp, idtp + idfn),
    idtp,
    idfp,
    idfn,
  };
}
