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

/**
 * Boxes to evaluate, in columns: one entry per box, in input order (which decides ties). Images and
 * categories are indices into lists sorted by id. Boxes are [x, y, w, h]; a GT's `area` drives the area
 * ranges (COCO uses the segment area), a detection's is its box area.
 */
export class EvalInput {
  readonly gtImage: number[] = [];
  readonly gtCat: number[] = [];
  readonly gtBox: number[] = [];
  readonly gtArea: number[] = [];
  readonly gtCrowd: number[] = [];
  readonly dtImage: number[] = [];
  readonly dtCat: number[] = [];
  readonly dtBox: number[] = [];
  readonly dtArea: number[] = [];
  readonly dtScore: number[] = [];

  constructor(
    readonly numImages: number,
    readonly numCategories: number,
  ) {}

  addGt(image: number, cat: number, x: number, y: number, w: number, h: number, area: number, crowd: boolean): void {
    this.gtImage.push(image);
    this.gtCat.push(cat);
    this.gtBox.push(x, y, w, h);
    this.gtArea.push(area);
    this.gtCrowd.push(crowd ? 1 : 0);
  }

  addDt(image: number, cat: number, x: number, y: number, w: number, h: number, score: number): void {
    this.dtImage.push(image);
    this.dtCat.push(cat);
    this.dtBox.push(x, y, w, h);
    this.dtArea.push(w * h);
    this.dtScore.push(score);
  }
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

/** Indices 0..n-1 grouped by key (counting sort, stable): returns [start offsets per key, ordered indices]. */
function groupBy(keys: readonly number[], numKeys: number): [Int32Array, Int32Array] {
  const start = new Int32Array(numKeys + 1);
  for (const k of keys) start[k + 1]!++;
  for (let k = 0; k < numKeys; k++) start[k + 1]! += start[k]!;
  const fill = start.slice(0, numKeys);
  const order = new Int32Array(keys.length);
  for (let i = 0; i < keys.length; i++) order[fill[keys[i]!]!++] = i;
  return [start, order];
}

/**
 * COCOeval.evaluate() + accumulate(): precision and recall for every threshold, category, area and maxDets.
 * Works on flat arrays: every (image, category) pair's detections are sorted, cut to the largest maxDets and
 * laid out image-major in one "slot" array, so matching results for all pairs live in two typed arrays and
 * the per-category accumulation reads them without building per-pair objects.
 */
export function runCocoEval(input: EvalInput, params: EvalParams = COCO_PARAMS): EvalResult {
  const K = input.numCategories;
  const A = params.areaRanges.length;
  const M = params.maxDets.length;
  const T = params.iouThresholds.length;
  const R = params.recallThresholds.length;
  const thr = params.iouThresholds;
  const maxDet = Math.max(...params.maxDets);
  const numKeys = input.numImages * K;

  const gtKeys = input.gtImage.map((im, i) => im * K + input.gtCat[i]!);
  const dtKeys = input.dtImage.map((im, i) => im * K + input.dtCat[i]!);
  const [gStart, gOrder] = groupBy(gtKeys, numKeys);
  const [dStart, dOrder] = groupBy(dtKeys, numKeys);

  // Slots: per key, its detections by descending score (stable), at most maxDet of them.
  const { dtScore, dtBox, dtArea, gtBox, gtArea, gtCrowd } = input;
  const slotStart = new Int32Array(numKeys + 1);
  for (let key = 0; key < numKeys; key++) slotStart[key + 1] = slotStart[key]! + Math.min(dStart[key + 1]! - dStart[key]!, maxDet);
  const S = slotStart[numKeys]!;
  const slotDt = new Int32Array(S);
  const slotRank = new Int32Array(S);
  const slotScore = new Float64Array(S);
  const sortBuf: number[] = [];
  for (let key = 0; key < numKeys; key++) {
    const a = dStart[key]!;
    const b = dStart[key + 1]!;
    if (a === b) continue;
    sortBuf.length = 0;
    for (let i = a; i < b; i++) sortBuf.push(dOrder[i]!);
    // Input order breaks ties, as numpy's stable mergesort does.
    if (b - a > 1) sortBuf.sort((x, y) => dtScore[y]! - dtScore[x]! || x - y);
    const s0 = slotStart[key]!;
    const n = slotStart[key + 1]! - s0;
    for (let r = 0; r < n; r++) {
      slotDt[s0 + r] = sortBuf[r]!;
      slotRank[s0 + r] = r;
      slotScore[s0 + r] = dtScore[sortBuf[r]!]!;
    }
  }

  // Matching, per key and area range: matched / ignored flags for every (a, t, slot).
  const matched = new Uint8Array(A * T * S);
  const ignored = new Uint8Array(A * T * S);
  const numGtKey = new Int32Array(numKeys * A);
  let ious = new Float64Array(64);
  let gOrd = new Int32Array(16);
  let gIg = new Uint8Array(16);
  let gCr = new Uint8Array(16);
  let taken = new Uint8Array(16);
  for (let key = 0; key < numKeys; key++) {
    const g0 = gStart[key]!;
    const G = gStart[key + 1]! - g0;
    const s0 = slotStart[key]!;
    const D = slotStart[key + 1]! - s0;
    if (G === 0 && D === 0) continue;
    if (G > gOrd.length) {
      gOrd = new Int32Array(G * 2);
      gIg = new Uint8Array(G * 2);
      gCr = new Uint8Array(G * 2);
      taken = new Uint8Array(G * 2);
    }
    if (D * G > ious.length) ious = new Float64Array(D * G * 2);
    // IoU [d * G + g], GTs in input order; for crowd GTs the union is the detection's own area.
    for (let g = 0; g < G; g++) {
      const gi = gOrder[g0 + g]!;
      const gx = gtBox[gi * 4]!;
      const gy = gtBox[gi * 4 + 1]!;
      const gw = gtBox[gi * 4 + 2]!;
      const gh = gtBox[gi * 4 + 3]!;
      const ga = gw * gh;
      const crowd = gtCrowd[gi] === 1;
      for (let d = 0; d < D; d++) {
        const di = slotDt[s0 + d]!;
        const dx = dtBox[di * 4]!;
        const dy = dtBox[di * 4 + 1]!;
        const dw = dtBox[di * 4 + 2]!;
        const dh = dtBox[di * 4 + 3]!;
        let v = 0;
        const w = Math.min(dx + dw, gx + gw) - Math.max(dx, gx);
        if (w > 0) {
          const h = Math.min(dy + dh, gy + gh) - Math.max(dy, gy);
          if (h > 0) {
            const inter = w * h;
            const da = dw * dh;
            v = inter / (crowd ? da : da + ga - inter);
          }
        }
        ious[d * G + g] = v;
      }
    }
    for (let a = 0; a < A; a++) {
      const [lo, hi] = params.areaRanges[a]!;
      // GTs in stable "ignored last" order.
      let n = 0;
      let numGt = 0;
      for (let pass = 0; pass < 2; pass++) {
        for (let g = 0; g < G; g++) {
          const gi = gOrder[g0 + g]!;
          const ig = gtCrowd[gi] === 1 || gtArea[gi]! < lo || gtArea[gi]! > hi ? 1 : 0;
          if (ig !== pass) continue;
          gOrd[n] = g;
          gIg[n] = ig;
          gCr[n] = gtCrowd[gi]!;
          n++;
          if (!ig) numGt++;
        }
      }
      numGtKey[key * A + a] = numGt;
      for (let t = 0; t < T; t++) {
        const base = (a * T + t) * S + s0;
        if (G > 0) {
          taken.fill(0, 0, G);
          for (let d = 0; d < D; d++) {
            let best = Math.min(thr[t]!, 1 - 1e-10);
            let m = -1;
            const row = d * G;
            for (let j = 0; j < G; j++) {
              if (taken[j] && !gCr[j]) continue;
              // Once matched to a regular GT, the ignored ones (sorted last) cannot take the detection.
              if (m > -1 && !gIg[m] && gIg[j]) break;
              const v = ious[row + gOrd[j]!]!;
              if (v < best) continue;
              best = v;
              m = j;
            }
            if (m === -1) continue;
            ignored[base + d] = gIg[m]!;
            matched[base + d] = 1;
            taken[m] = 1;
          }
        }
        for (let d = 0; d < D; d++) {
          const ar = dtArea[slotDt[s0 + d]!]!;
          if (!matched[base + d] && (ar < lo || ar > hi)) ignored[base + d] = 1;
        }
      }
    }
  }

  const ap = new Float64Array(K * A * M * T).fill(-1);
  const precisionCurve = new Float64Array(K * T * R).fill(-1);
  const recall = new Float64Array(K * A * M * T).fill(-1);
  const matches: (CategoryMatches | undefined)[] = new Array<CategoryMatches | undefined>(K).fill(undefined);
  const pr = new Float64Array(S);
  const rcv = new Float64Array(S);
  const sel = new Int32Array(S);
  for (let k = 0; k < K; k++) {
    // Keys of this category in image order; a key counts only if it has a GT or a detection (pycocotools'
    // evaluateImg returns None otherwise).
    let present = false;
    const slots: number[] = [];
    for (let im = 0; im < input.numImages; im++) {
      const key = im * K + k;
      if (gStart[key + 1]! > gStart[key]! || slotStart[key + 1]! > slotStart[key]!) present = true;
      for (let s = slotStart[key]!; s < slotStart[key + 1]!; s++) slots.push(s);
    }
    if (!present) continue;
    // Slots are image-major and rank-ordered, so slot index is exactly the concatenation order that
    // pycocotools' stable sort falls back on for tied scores; every maxDets is a filter of this one order.
    slots.sort((x, y) => slotScore[y]! - slotScore[x]! || x - y);
    for (let a = 0; a < A; a++) {
      let numGt = 0;
      for (let im = 0; im < input.numImages; im++) numGt += numGtKey[(im * K + k) * A + a]!;
      if (numGt === 0) continue;
      for (let m = 0; m < M; m++) {
        const md = params.maxDets[m]!;
        let nd = 0;
        for (const s of slots) if (slotRank[s]! < md) sel[nd++] = s;
        const keep = a === 0 && m === M - 1;
        const flagsPerT: Uint8Array[] = [];
        for (let t = 0; t < T; t++) {
          const base = (a * T + t) * S;
          let tp = 0;
          let fp = 0;
          const flags = keep ? new Uint8Array(nd) : undefined;
          for (let i = 0; i < nd; i++) {
            const at = base + sel[i]!;
            if (!ignored[at]) {
              if (matched[at]) {
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
            const rt = params.recallThresholds[r]!;
            while (i < nd && rcv[i]! < rt) i++;
            const q = i < nd ? pr[i]! : 0;
            sum += q;
            if (keep) precisionCurve[(k * T + t) * R + r] = q;
          }
          ap[((k * A + a) * M + m) * T + t] = sum / R;
        }
        if (keep) {
          const scores = new Float64Array(nd);
          for (let i = 0; i < nd; i++) scores[i] = slotScore[sel[i]!]!;
          matches[k] = { scores, flags: flagsPerT, numGt };
        }
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
