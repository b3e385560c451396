"""Turning the export-contract output [B, 4+nc, N] into per-image detections.

The defaults are the evaluation protocol every cvopt accuracy figure follows (core's EvalProtocolSchema,
contracts/eval-protocol.json): confidence floor 0.001, class-aware NMS at IoU 0.7, at most 300 detections, and
multi-label candidates (every class above the floor at an anchor). ``multi_label=False`` keeps only each anchor's
best class (the single-label protocol).
"""
from __future__ import annotations

from typing import List

import torch
import torchvision

from ..utils.boxes import xywh2xyxy

PROTOCOL = {"conf": 0.001, "iou": 0.7, "max_det": 300, "multi_label": True}


def non_max_suppression(pred: torch.Tensor, conf: float = 0.001, iou: float = 0.7, max_det: int = 300,
                        multi_label: bool = True, max_wh: float = 7680.0,
                        max_candidates: int = 30000) -> List[torch.Tensor]:
    """Class-aware NMS (boxes offset per class so one torchvision call handles all classes).

    Returns per image [K, 6]: x1, y1, x2, y2, score, class, by descending score.
    """
    out: List[torch.Tensor] = []
    for x in pred.transpose(1, 2):  # [N, 4+nc]
        scores_all = x[:, 4:]
        if multi_label:
            anchor, classes = (scores_all > conf).nonzero(as_tuple=True)
            scores = scores_all[anchor, classes]
            boxes = xywh2xyxy(x[anchor, :4])
        else:
            scores, classes = scores_all.max(1)
            keep = scores > conf
            boxes, scores, classes = xywh2xyxy(x[keep, :4]), scores[keep], classes[keep]
        if scores.numel() > max_candidates:  # bound the NMS cost on untrained models
            top = scores.topk(max_candidates).indices
            boxes, scores, classes = boxes[top], scores[top], classes[top]
        idx = torchvision.ops.nms(boxes + classes[:, None].float() * max_wh, scores, iou)[:max_det]
        out.append(torch.cat((boxes[idx], scores[idx, None], classes[idx, None].float()), 1))
    return out
