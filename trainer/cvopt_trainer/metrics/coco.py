"""COCO-style detection mAP, the one definition cvopt uses in Python and TypeScript.

Per image and class: detections sorted by score (stable), at most ``max_dets`` kept; greedy matching to the
unmatched GT of highest IoU ≥ threshold, preferring non-crowd GTs; a crowd GT may absorb many detections
(IoU against a crowd box is intersection / detection area) and those detections are ignored, as are crowd
GTs. Per class: all images' detections merged by score (stable), precision made monotone, sampled at 101
recall points; AP is their mean. Classes without a non-crowd GT are left out of the mean. IoU thresholds
0.50:0.05:0.95; mAP50-95 is the mean over them. Agrees with pycocotools' bbox AP (area 'all', maxDets 100).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass
class ImageBoxes:
    """One image's ground truth and detections, xyxy in pixels."""

    gt_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    gt_classes: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.int64))
    gt_crowd: Optional[np.ndarray] = None
    det_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    det_scores: np.ndarray = field(default_factory=lambda: np.zeros((0,)))
    det_classes: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.int64))


def _iou(dets: np.ndarray, gts: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """[D, G] IoU; against a crowd GT the union is the detection's own area."""
    if len(dets) == 0 or len(gts) == 0:
        return np.zeros((len(dets), len(gts)))
    lt = np.maximum(dets[:, None, :2], gts[None, :, :2])
    rb = np.minimum(dets[:, None, 2:], gts[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area_d = np.clip(dets[:, 2:] - dets[:, :2], 0, None).prod(1)
    area_g = np.clip(gts[:, 2:] - gts[:, :2], 0, None).prod(1)
    union = np.where(crowd[None, :], area_d[:, None], area_d[:, None] + area_g[None, :] - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _match(det_boxes, det_scores, gt_boxes, gt_crowd, thresholds, max_dets):
    """Greedy matching of one image and class. Returns (scores, matched [T,D], ignored [T,D], n_gt)."""
    order = np.argsort(-det_scores, kind="mergesort")[:max_dets]
    det_boxes, det_scores = det_boxes[order], det_scores[order]
    g_order = np.argsort(gt_crowd.astype(np.int8), kind="mergesort")  # non-crowd GTs first
    gt_boxes, gt_crowd = gt_boxes[g_order], gt_crowd[g_order]
    ious = _iou(det_boxes, gt_boxes, gt_crowd)
    n_t, n_d, n_g = len(thresholds), len(det_boxes), len(gt_boxes)
    matched = np.zeros((n_t, n_d), dtype=bool)
    ignored = np.zeros((n_t, n_d), dtype=bool)
    for ti, t in enumerate(thresholds):
        gt_taken = np.zeros(n_g, dtype=bool)
        for d in range(n_d):
            best_iou, m = min(t, 1 - 1e-10), -1
            for g in range(n_g):
                if gt_taken[g] and not gt_crowd[g]:
                    continue
                # Once matched to a real GT, stop before the crowd GTs (they come last).
                if m > -1 and not gt_crowd[m] and gt_crowd[g]:
                    break
                if ious[d, g] < best_iou:
                    continue
                best_iou, m = ious[d, g], g
            if m == -1:
                continue
            ignored[ti, d] = gt_crowd[m]
            matched[ti, d] = True
            gt_taken[m] = True
    return det_scores, matched, ignored, int((~gt_crowd).sum())


def evaluate(images: Sequence[ImageBoxes], classes: Optional[Sequence[int]] = None, max_dets: int = 100
             ) -> Dict[str, object]:
    """mAP over ``images``. ``classes`` defaults to every class with a ground truth (others cannot count).

    Returns map5095, map50, map75, precision and recall (at the confidence that maximises mean F1 at IoU 0.5),
    and ap50_per_class / ap_per_class ({class: AP}).
    """
    if classes is None:
        classes = sorted({int(c) for im in images for c in im.gt_classes})
    thresholds = IOU_THRESHOLDS
    ap = {}  # class -> [T] APs
    curves = []  # per class at IoU .5: (scores, precision, recall)
    for c in classes:
        all_scores, all_matched, all_ignored, n_gt = [], [], [], 0
        for im in images:
            gm = im.gt_classes == c
            dm = im.det_classes == c
            if not gm.any() and not dm.any():
                continue
            crowd = im.gt_crowd[gm].astype(bool) if im.gt_crowd is not None else np.zeros(int(gm.sum()), bool)
            s, m, ig, n = _match(np.asarray(im.det_boxes, float)[dm], np.asarray(im.det_scores, float)[dm],
                                 np.asarray(im.gt_boxes, float)[gm], crowd, thresholds, max_dets)
            all_scores.append(s)
            all_matched.append(m)
            all_ignored.append(ig)
            n_gt += n
        if n_gt == 0:
            continue
        scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
        order = np.argsort(-scores, kind="mergesort")
        matched = np.concatenate(all_matched, 1)[:, order] if all_matched else np.zeros((len(thresholds), 0), bool)
        ignored = np.concatenate(all_ignored, 1)[:, order] if all_ignored else np.zeros((len(thresholds), 0), bool)
        tp = np.cumsum(matched & ~ignored, 1).astype(float)
        fp = np.cumsum(~matched & ~ignored, 1).astype(float)
        aps = np.zeros(len(thresholds))
        for ti in range(len(thresholds)):
            rc = tp[ti] / n_gt
            pr = tp[ti] / (tp[ti] + fp[ti] + np.spacing(1))
            if ti == 0:
                keep = ~ignored[0]
                curves.append((scores[order][keep], pr[keep], rc[keep]))
            pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr
            idx = np.searchsorted(rc, RECALL_POINTS, side="left")
            q = np.where(idx < len(pr), pr[np.minimum(idx, max(len(pr) - 1, 0))] if len(pr) else 0.0, 0.0)
            aps[ti] = float(np.mean(q))
        ap[c] = aps
    if not ap:
        return {"map5095": 0.0, "map50": 0.0, "map75": 0.0, "precision": 0.0, "recall": 0.0,
                "ap_per_class": {}, "ap50_per_class": {}}
    table = np.stack(list(ap.values()))
    p, r = _best_f1(curves)
    return {
        "map5095": float(table.mean()),
        "map50": float(table[:, 0].mean()),
        "map75": float(table[:, 5].mean()),
        "precision": p,
        "recall": r,
        "ap_per_class": {int(c): float(v.mean()) for c, v in ap.items()},
        "ap50_per_class": {int(c): float(v[0]) for c, v in ap.items()},
    }


def _best_f1(curves) -> tuple:
    """Mean precision and recall over classes at the confidence that maximises their F1."""
    grid = np.linspace(0, 1, 1000)
    ps, rs = [], []
    for scores, pr, rc in curves:
        if len(scores) == 0:
            ps.append(np.zeros_like(grid))
            rs.append(np.zeros_like(grid))
            continue
        # Scores descend, so negate them for np.interp's increasing x.
        rs.append(np.interp(-grid, -scores, rc, left=0))
        ps.append(np.interp(-grid, -scores, pr, left=1))
    p, r = np.mean(ps, 0), np.mean(rs, 0)
    f1 = 2 * p * r / (p + r + 1e-16)
    i = int(np.argmax(f1))
    return float(p[i]), float(r[i])
