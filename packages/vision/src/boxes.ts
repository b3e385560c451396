import type { Detection } from '@cvopt/core';
/** Axis-aligned boxes as [x1, y1, x2, y2] unless the name says otherwise. */
export type Box = [number, number, number, number];

export function boxArea(b: readonly number[]): number {
  const w = b[2]! - b[0]!;
  const h = b[3]! - b[1]!;
  return w > 0 && h > 0 ? w * h : 0;
}

/** Intersection over union of two corner-form boxes; 0 when either is empty. */
export function iou(a: readonly number[], b: readonly number[]): number {
  const w = Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!);
  if (w <= 0) return 0;
  const h = Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!);
  if (h <= 0) return 0;
  const inter = w * h;
  const union = boxArea(a) + boxArea(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** Centre form [cx, cy, w, h] to corners. */
export function xywh2xyxy(b: readonly number[]): Box {
  const hw = b[2]! / 2;
  const hh = b[3]! / 2;
  return [b[0]! - hw, b[1]! - hh, b[0]! + hw, b[1]! + hh];
}

/** Corners to centre form [cx, cy, w, h]. */
export function xyxy2xywh(b: readonly number[]): Box {
  return [(b[0]! + b[2]!) / 2, (b[1]! + b[3]!) / 2, b[2]! - b[0]!, b[3]! - b[1]!];
}

/** Clamp a corner-form box to an image of width × height. */
export function clipBox(b: readonly number[], width: number, height: number): Box {
  const cx = (v: number, hi: number) => (v < 0 ? 0 : v > hi ? hi : v);
  return [cx(b[0]!, width), cx(b[1]!, height), cx(b[2]!, width), cx(b[3]!, height)];
}

/** Boxes closer than this IoU are not the same object for the agreement checks. */
const MATCH_IOU = 0.5;

/**
 * Greedy one-to-one matching of reference detections (highest score first) to the ONNX ones by IoU ≥ 0.5, same
 * class first (near-identical boxes of different classes must not steal each other's match), then any class.
 */
export function matchDetections(ref: readonly Detection[], got: readonly Detection[]): { matched: number; iouSum: number; sameClass: number } {
  const used = new Set<number>();
  const done = new Set<number>();
  const order = ref.map((_, i) => i).sort((a, b) => ref[b]!.score - ref[a]!.score);
  let matched = 0;
  let iouSum = 0;
  let sameClass = 0;
  for (const classMustMatch of [true, false]) {
    for (const i of order) {
      if (done.has(i)) continue;
      const r = ref[i]!;
      let best = -1;
      let bestIou = MATCH_IOU;
      got.forEach((g, j) => {
        if (used.has(j) || (classMustMatch && g.classId !== r.classId)) return;
        const v = iou(r.box, g.box);
        if (v >= bestIou) {
          best = j;
          bestIou = v;
        }
      });
      if (best < 0) continue;
      used.add(best);
      done.add(i);
      matched += 1;
      iouSum += bestIou;
      if (got[best]!.classId === r.classId) sameClass += 1;
    }
  }
  return { matched, iouSum, sameClass };
}


/** matchDetections summed over many images: detection counts on both sides, matches, IoU and class totals. */
export class DetectionAgreement {
  reference = 0;
  got = 0;
  matched = 0;
  iouSum = 0;
  sameClass = 0;

  add(ref: readonly Detection[], got: readonly Detection[]): void {
    const m = matchDetections(ref, got);
    this.reference += ref.length;
    this.got += got.length;
    this.matched += m.matched;
    this.iouSum += m.iouSum;
    this.sameClass += m.sameClass;
  }

  /** Mean IoU of the matched pairs; `none` when nothing matched. */
  meanIou(none: number): number {
    return this.matched > 0 ? this.iouSum / this.matched : none;
  }

  /** Share of matched pairs with the same class; `none` when nothing matched. */
  classAgreement(none: number): number {
    return this.matched > 0 ? this.sameClass / this.matched : none;
  }
}
