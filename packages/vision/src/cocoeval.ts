/**
 * COCO bounding-box evaluation, written from the published definition and reproducing pycocotools'
 * COCOeval (bbox) figure for figure: greedy matching by descending score per image and category, crowd GTs
 * matchable many times (IoU = intersection / detection area) and never counted as misses, GTs outside the
 * area range ignored, unmatched detections outside it ignored, 101-point interpolated precision with the
 * precision envelope, IoU thresholds 0.50:0.05:0.95, maxDets 1/10/100, and -1 wherever a value is undefined.
 * Ties keep input order (stable sorts), exactly as numpy's mergesort does, so tied scores give the same result.
 */

/** numpy.linspace as COCOeval builds its thresholds, so float values (and ties at a threshold) agree. */
function linspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  out[num - 1] = stop;
  return out;
}

export const IOU_THRESHOLDS = linspace(0.5, 0.95, 10);
export const RECALL_THRESHOLDS = linspace(0, 1, 101);
export const AREA_RANGES: Record<'all' | 'small' | 'medium' | 'large', readonly [number, number]> = {
  all: [0, 1e10],
  small: [0, 32 ** 2],
  medium: [32 ** 2, 96 ** 2],
  large: [96 ** 2, 1e10],
};
/** np.spacing(1): the epsilon COCOeval adds to the precision denominator. */
const EPS = 2.220446049250313e-16;

/** A ground-truth box, [x, y, w, h]. `area` drives the area ranges (COCO uses the segment area). */
export interface EvalGt {
  id: number;
  bbox: readonly [number, number, number, number];
  area: number;
  iscrowd: boolean;
}

/** A detection, [x, y, w, h]. */
export interface EvalDt {
  id: number;
  bbox: readonly [number, number, number, number];
  area: number;
  score: number;
}

export interface EvalParams {
  iouThresholds: Float64Array;
  recallThresholds: Float64Array;
  areaRanges: readonly (readonly [number, number])[];
  maxDets: readonly number[];
}

export const COCO_PARAMS: EvalParams = {
  iouThresholds: IOU_THRESHOLDS,
  recallThresholds: RECALL_THRESHOLDS,
  areaRanges: [AREA_RANGES.all, AREA_RANGES.small, AREA_RANGES.medium, AREA_RANGES.large],
  maxDets: [1, 10, 100],
};

/** Input to the evaluator: per (image index, category index) lists, images and categories already sorted by id. */
export interface EvalInput {
  numImages: number;
  numCategories: number;
  /** key = imageIndex * numCategories + categoryIndex */
  gts: Map<number, EvalGt[]>;
  dts: Map<number, EvalDt[]>;
}

/** Matched detections of one category (first area range, largest maxDets), for PR curves. */
export interface CategoryMatches {
  /** Scores sorted descending. */
  scores: Float64Array;
  /** Per IoU threshold t, per sorted detection: 1 true positive, 0 false positive, 2 ignored. */
  flags: Uint8Array[];
  /** Ground truths that count (not crowd, in area range). */
  numGt: number;
}

export interface EvalResult {
  params: EvalParams;
  /**
   * Mean over recall thresholds of the interpolated precision, ap[k][a][m][t] flattened; -1 where undefined.
   * Within one (k, a, m, t) all 101 values are defined or none is, so means of these equal pycocotools'
   * means over its full precision array.
   */
  ap: Float64Array;
  /** The full interpolated precision for the first area range and largest maxDets, curve[k][t][r]; -1 where undefined. */
  precisionCurve: Float64Array;
  /** recall[k][a][m][t] flattened; -1 where undefined. */
  recall: Float64Array;
  dims: { T: number; R: number; K: number; A: number; M: number };
  matches: (CategoryMatches | undefined)[];
}

interface ImageEval {
  /** Detection scores, best first, at most the largest maxDets. */
  scores: Float64Array;
  /** [t * D + d]: 1 when matched to a GT. */
  matched: Uint8Array;
  /** [t * D + d]: 1 when ignored (matched to an ignored GT, or unmatched and outside the area range). */
  ignored: Uint8Array;
  /** GTs that are neither crowd nor outside the area range. */
  numGt: number;
}

/** Stable descending-score order of detections (original order among ties). */
function byScore(dts: readonly EvalDt[]): EvalDt[] {
  return dts
    .map((d, i) => ({ d, i }))
    .sort((x, y) => y.d.score - x.d.score || x.i - y.i)
    .map((x) => x.d);
}

/** IoU matrix [d * G + g] of xywh boxes; for crowd GTs the union is the detection's area (COCO rule). */
function iouMatrix(dts: readonly EvalDt[], gts: readonly EvalGt[]): Float64Array {
  const D = dts.length;
  const G = gts.length;
  const out = new Float64Array(D * G);
  for (let g = 0; g < G; g++) {
    const gb = gts[g]!.bbox;
    const ga = gb[2] * gb[3];
    const crowd = gts[g]!.iscrowd;
    for (let d = 0; d < D; d++) {
      const db = dts[d]!.bbox;
      const w = Math.min(db[0] + db[2], gb[0] + gb[2]) - Math.max(db[0], gb[0]);
      if (w <= 0) continue;
      const h = Math.min(db[1] + db[3], gb[1] + gb[3]) - Math.max(db[1], gb[1]);
      if (h <= 0) continue;
      const inter = w * h;
      const da = db[2] * db[3];
      out[d * G + g] = inter / (crowd ? da : da + ga - inter);
    }
  }
  return out;
}

function evaluateImage(gts: readonly EvalGt[], dtsSorted: readonly EvalDt[], ious: Float64Array, range: readonly [number, number], T: Float64Array): ImageEval {
  const G = gts.length;
  const D = dtsSorted.length;
  // GTs in stable order of "ignored last", remembering each one's column in the IoU matrix.
  const gIgnoreOrig = gts.map((g) => (g.iscrowd || g.area < range[0] || g.area > range[1] ? 1 : 0));
  const order = gts.map((_, i) => i).sort((a, b) => gIgnoreOrig[a]! - gIgnoreOrig[b]! || a - b);
  const gIgnore = new Uint8Array(G);
  const gCrowd = new Uint8Array(G);
  let numGt = 0;
  for (let j = 0; j < G; j++) {
    gIgnore[j] = gIgnoreOrig[order[j]!]!;
    gCrowd[j] = gts[order[j]!]!.iscrowd ? 1 : 0;
    if (!gIgnore[j]) numGt++;
  }
  const nT = T.length;
  const matched = new Uint8Array(nT * D);
  const ignored = new Uint8Array(nT * D);
  const gtTaken = new Uint8Array(G);
  if (G > 0 && D > 0) {
    for (let t = 0; t < nT; t++) {
      gtTaken.fill(0);
      for (let d = 0; d < D; d++) {
        let best = Math.min(T[t]!, 1 - 1e-10);
        let m = -1;
        const row = d * G;
        for (let j = 0; j < G; j++) {
          if (gtTaken[j] && !gCrowd[j]) continue;
          // Once matched to a regular GT, the ignored ones (sorted last) cannot take the detection.
          if (m > -1 && !gIgnore[m] && gIgnore[j]) break;
          const v = ious[row + order[j]!]!;
          if (v < best) continue;
          best = v;
          m = j;
        }
        if (m === -1) continue;
        ignored[t * D + d] = gIgnore[m]!;
        matched[t * D + d] = 1;
        gtTaken[m] = 1;
      }
    }
  }
  for (let d = 0; d < D; d++) {
    const a = dtsSorted[d]!.area;
    if (a < range[0] || a > range[1]) for (let t = 0; t < nT; t++) if (!matched[t * D + d]) ignored[t * D + d] = 1;
  }
  return { scores: Float64Array.from(dtsSorted, (d) => d.score), matched, ignored, numGt };
}

/** COCOeval.evaluate() + accumulate(): precision and recall for every threshold, category, area and maxDets. */
export function runCocoEval(input: EvalInput, params: EvalParams = COCO_PARAMS): EvalResult {
  const K = input.numCategories;
  const A = params.areaRanges.length;
  const M = params.maxDets.length;
  const T = params.iouThresholds.length;
  const R = params.recallThresholds.length;
  const maxDet = Math.max(...params.maxDets);

  // Pairs that have anything, image-major so each category's list keeps images in id order.
  const keys = [...new Set([...input.gts.keys(), ...input.dts.keys()])].sort((a, b) => a - b);
  const perCat: ImageEval[][][] = Array.from({ length: K }, () => Array.from({ length: A }, () => []));
  for (const key of keys) {
    const k = key % K;
    const gts = input.gts.get(key) ?? [];
    const dts = byScore(input.dts.get(key) ?? []).slice(0, maxDet);
    const ious = iouMatrix(dts, gts);
    for (let a = 0; a < A; a++) perCat[k]![a]!.push(evaluateImage(gts, dts, ious, params.areaRanges[a]!, params.iouThresholds));
  }

  const ap = new Float64Array(K * A * M * T).fill(-1);
  const precisionCurve = new Float64Array(K * T * R).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const matches: (CategoryMatches | undefined)[] = new Array<CategoryMatches | undefined>(K).fill(undefined);
  for (let k = 0; k < K; k++) {
    const first = perCat[k]![0]!;
    if (first.length === 0) continue;
    // Every image's detections in one list, sorted once by score; ties keep (image, rank) order, which is
    // what a stable sort of any prefix-per-image subset gives too, so each maxDets is a filter of this order.
    let total = 0;
    for (const e of first) total += e.scores.length;
    const scores = new Float64Array(total);
    const src = new Int32Array(total);
    const pos = new Int32Array(total);
    let n = 0;
    first.forEach((e, ei) => {
      for (let d = 0; d < e.scores.length; d++, n++) {
        scores[n] = e.scores[d]!;
        src[n] = ei;
        pos[n] = d;
      }
    });
    const order = Array.from({ length: total }, (_, i) => i).sort((x, y) => scores[y]! - scores[x]! || x - y);
    const pr = new Float64Array(total);
    const rcv = new Float64Array(total);
    for (let a = 0; a < A; a++) {
      const E = perCat[k]![a]!;
      let numGt = 0;
      for (const e of E) numGt += e.numGt;
      if (numGt === 0) continue;
      for (let m = 0; m < M; m++) {
        const md = params.maxDets[m]!;
        const sel = order.filter((i) => pos[i]! < md);
        const nd = sel.length;
        const keep = a === 0 && m === M - 1;
        const flagsPerT: Uint8Array[] = [];
        for (let t = 0; t < T; t++) {
          let tp = 0;
          let fp = 0;
          const flags = keep ? new Uint8Array(nd) : undefined;
          for (let i = 0; i < nd; i++) {
            const j = sel[i]!;
            const e = E[src[j]!]!;
            const at = t * e.scores.length + pos[j]!;
            if (!e.ignored[at]) {
              if (e.matched[at]) {
                tp++;
                if (flags) flags[i] = 1;
              } else fp++;
            } else if (flags) flags[i] = 2;
            rcv[i] = tp / numGt;
            pr[i] = tp / (fp + tp + EPS);
          }
          if (flags) flagsPerT.push(flags);
          recall[((k * A + a) * M + m) * T + t] = nd ? rcv[nd - 1]! : 0;
          for (let i = nd - 1; i > 0; i--) if (pr[i]! > pr[i - 1]!) pr[i - 1] = pr[i]!;
          // For each recall threshold, the precision at the first point reaching it (0 when never reached).
          let i = 0;
          let sum = 0;
          for (let r = 0; r < R; r++) {
            const thr = params.recallThresholds[r]!;
            while (i < nd && rcv[i]! < thr) i++;
            const q = i < nd ? pr[i]! : 0;
            sum += q;
            if (keep) precisionCurve[(k * T + t) * R + r] = q;
          }
          ap[((k * A + a) * M + m) * T + t] = sum / R;
        }
        if (keep) matches[k] = { scores: Float64Array.from(sel, (i) => scores[i]!), flags: flagsPerT, numGt };
      }
    }
  }
  return { params, ap, precisionCurve, recall, dims: { T, R, K, A, M }, matches };
}

/** Mean of the defined (> -1) precision or recall values in a slice; -1 when none is defined. */
export function summarize(res: EvalResult, o: { ap: boolean; iouThr?: number; area: number; maxDets: number; category?: number }): number {
  const { T, K, A, M } = res.dims;
  const m = res.params.maxDets.indexOf(o.maxDets);
  if (m < 0 || o.area < 0 || o.area >= A) return -1;
  const ts = o.iouThr === undefined ? [...Array(T).keys()] : [...Array(T).keys()].filter((t) => res.params.iouThresholds[t] === o.iouThr);
  const ks = o.category === undefined ? [...Array(K).keys()] : [o.category];
  let sum = 0;
  let n = 0;
  for (const t of ts) {
    for (const k of ks) {
      const v = (o.ap ? res.ap : res.recall)[((k * A + o.area) * M + m) * T + t]!;
      if (v > -1) {
        sum += v;
        n++;
      }
    }
  }
  return n ? sum / n : -1;
}

export const COCO_STAT_NAMES = [
  'AP@[IoU=0.50:0.95|area=all|maxDets=100]',
  'AP@[IoU=0.50|area=all|maxDets=100]',
  'AP@[IoU=0.75|area=all|maxDets=100]',
  'AP@[IoU=0.50:0.95|area=small|maxDets=100]',
  'AP@[IoU=0.50:0.95|area=medium|maxDets=100]',
  'AP@[IoU=0.50:0.95|area=large|maxDets=100]',
  'AR@[IoU=0.50:0.95|area=all|maxDets=1]',
  'AR@[IoU=0.50:0.95|area=all|maxDets=10]',
  'AR@[IoU=0.50:0.95|area=all|maxDets=100]',
  'AR@[IoU=0.50:0.95|area=small|maxDets=100]',
  'AR@[IoU=0.50:0.95|area=medium|maxDets=100]',
  'AR@[IoU=0.50:0.95|area=large|maxDets=100]',
] as const;

/** COCOeval.summarize()'s twelve numbers, in its order. Needs the default COCO_PARAMS layout. */
export function cocoStats(res: EvalResult): number[] {
  return [
    summarize(res, { ap: true, area: 0, maxDets: 100 }),
    summarize(res, { ap: true, iouThr: 0.5, area: 0, maxDets: 100 }),
    summarize(res, { ap: true, iouThr: 0.75, area: 0, maxDets: 100 }),
    summarize(res, { ap: true, area: 1, maxDets: 100 }),
    summarize(res, { ap: true, area: 2, maxDets: 100 }),
    summarize(res, { ap: true, area: 3, maxDets: 100 }),
    summarize(res, { ap: false, area: 0, maxDets: 1 }),
    summarize(res, { ap: false, area: 0, maxDets: 10 }),
    summarize(res, { ap: false, area: 0, maxDets: 100 }),
    summarize(res, { ap: false, area: 1, maxDets: 100 }),
    summarize(res, { ap: false, area: 2, maxDets: 100 }),
    summarize(res, { ap: false, area: 3, maxDets: 100 }),
  ];
}
