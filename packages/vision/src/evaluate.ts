import { CvoptError, type Detection } from '@cvopt/core';
import { AREA_RANGES, COCO_PARAMS, EvalInput, runCocoEval, summarize, type EvalParams } from './cocoeval.js';

export interface EvalImage {
  imageId: number | string;
  /** Ground truth in original pixels, corner form. */
  gts: readonly { box: readonly [number, number, number, number]; classId: number }[];
  dets: readonly Detection[];
}

export interface ClassMetrics {
  classId: number;
  ap50: number;
  ap75: number;
  ap5095: number;
  /** Ground-truth boxes of this class. */
  gts: number;
}

export interface DetectionMetrics {
  /** Mean over classes that have ground truth of AP@0.5, AP@0.75 and AP@[.50:.95] (COCO definition). */
  map50: number;
  map75: number;
  map5095: number;
  /** Mean precision and recall at IoU 0.5 over classes with ground truth, at the confidence maximising mean F1. */
  precision: number;
  recall: number;
  /** The confidence threshold that precision and recall were read at. */
  confidence: number;
  perClass: ClassMetrics[];
}

/** The COCO machinery restricted to what a YOLO dataset has: no crowd, all areas, 100 detections per image and class. */
const YOLO_PARAMS: EvalParams = { ...COCO_PARAMS, areaRanges: [AREA_RANGES.all], maxDets: [100] };

/** Confidence grid for the precision/recall operating point. */
const CONF_STEPS = 1000;

/**
 * mAP for a YOLO-format dataset with the same definition as cocoEvaluate (equal to its AP and AP50 on the
 * same boxes). Classes without ground truth are left out of every mean. Precision and recall are read at a
 * single confidence, the one on a 1000-step grid over [0, 1) where the mean over classes of F1 (at IoU 0.5) is
 * highest; a class with no detection at or above it has precision 0 and recall 0, a class whose detections all
 * fall below it has precision 1 if it has any detection.
 */
export function evaluateDetections(images: readonly EvalImage[], opts: { numClasses: number }): DetectionMetrics {
  const K = opts.numClasses;
  if (!Number.isInteger(K) || K < 1) throw new CvoptError('INVALID_ARGUMENT', `numClasses must be a positive integer, got ${K}`, { where: { field: 'numClasses' } });
  const input = new EvalInput(images.length, K);
  const checkClass = (c: number, where: string) => {
    if (!Number.isInteger(c) || c < 0 || c >= K) {
      throw new CvoptError('INVALID_ARGUMENT', `${where}: class ${c} is outside 0..${K - 1}`, { where: { field: where }, hint: 'numClasses must cover every class id in labels and detections' });
    }
  };
  images.forEach((img, i) => {
    img.gts.forEach((g, j) => {
      checkClass(g.classId, `images[${i}].gts[${j}].classId`);
      const w = g.box[2] - g.box[0];
      const h = g.box[3] - g.box[1];
      input.addGt(i, g.classId, g.box[0], g.box[1], w, h, w * h, false);
    });
    img.dets.forEach((d, j) => {
      checkClass(d.classId, `images[${i}].dets[${j}].classId`);
      input.addDt(i, d.classId, d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1], d.score);
    });
  });
  const res = runCocoEval(input, YOLO_PARAMS);
  const t50 = res.params.iouThresholds.indexOf(0.5);
  const perClass: ClassMetrics[] = [];
  for (let k = 0; k < K; k++) {
    const numGt = res.matches[k]?.numGt ?? 0;
    if (numGt === 0) {
      perClass.push({ classId: k, ap50: -1, ap75: -1, ap5095: -1, gts: 0 });
      continue;
    }
    perClass.push({
      classId: k,
      ap50: summarize(res, { ap: true, iouThr: 0.5, area: 0, maxDets: 100, category: k }),
      ap75: summarize(res, { ap: true, iouThr: 0.75, area: 0, maxDets: 100, category: k }),
      ap5095: summarize(res, { ap: true, area: 0, maxDets: 100, category: k }),
      gts: numGt,
    });
  }
  const withGt = perClass.filter((c) => c.gts > 0);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const op = operatingPoint(res.matches.map((m) => (m && m.numGt > 0 ? { scores: m.scores, flags: m.flags[t50]!, numGt: m.numGt } : undefined)));
  return {
    map50: mean(withGt.map((c) => c.ap50)),
    map75: mean(withGt.map((c) => c.ap75)),
    map5095: mean(withGt.map((c) => c.ap5095)),
    precision: op.precision,
    recall: op.recall,
    confidence: op.confidence,
    perClass,
  };
}

/** Mean precision and recall over classes at the grid confidence with the highest mean F1. */
function operatingPoint(classes: ({ scores: Float64Array; flags: Uint8Array; numGt: number } | undefined)[]): { precision: number; recall: number; confidence: number } {
  const present = classes.filter((c): c is { scores: Float64Array; flags: Uint8Array; numGt: number } => c !== undefined);
  if (present.length === 0) return { precision: 0, recall: 0, confidence: 0 };
  const P = new Float64Array(CONF_STEPS);
  const R = new Float64Array(CONF_STEPS);
  const F = new Float64Array(CONF_STEPS);
  for (const c of present) {
    // Scores are sorted descending: walk the grid from high to low confidence, counting TP/FP at or above it.
    let i = 0;
    let tp = 0;
    let fp = 0;
    let any = false;
    for (let s = CONF_STEPS - 1; s >= 0; s--) {
      const conf = s / CONF_STEPS;
      while (i < c.scores.length && c.scores[i]! >= conf) {
        if (c.flags[i] === 1) tp++;
        else if (c.flags[i] === 0) fp++;
        any = true;
        i++;
      }
      const p = tp + fp > 0 ? tp / (tp + fp) : c.scores.length > 0 && !any ? 1 : 0;
      const r = tp / c.numGt;
      P[s] = P[s]! + p;
      R[s] = R[s]! + r;
      F[s] = F[s]! + (p + r > 0 ? (2 * p * r) / (p + r) : 0);
    }
  }
  let best = 0;
  for (let s = 1; s < CONF_STEPS; s++) if (F[s]! > F[best]!) best = s;
  return { precision: P[best]! / present.length, recall: R[best]! / present.length, confidence: best / CONF_STEPS };
}
