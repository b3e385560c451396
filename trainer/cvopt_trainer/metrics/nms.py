"""Turning the export-contract output [B, 4+nc, N] into per-image detections."""
from __future__ import annotations

from typing import List

import torch
import torchvision

from ..utils.boxes import xywh2xyxy


def non_max_suppression(pred: torch.Tensor, conf: float = 0.001, iou: float = 0.7, max_det: int = 300,
                        max_wh: float = 7680.0) -> List[torch.Tensor]:
    """Class-aware NMS (boxes offset per class so one torchvision call handles all classes).

    Each image gets one candidate per anchor (its best class), as the detector's scores are per class.
    Returns per image [K, 6]: x1, y1, x2, y2, score, class.
    """
    out: List[torch.Tensor] = []
    for x in pred.transpose(1, 2):  # [N, 4+nc]
        scores, classes = x[:, 4:].max(1)
        keep = scores > conf
        boxes, scores, classes = xywh2xyxy(x[keep, :4]), scores[keep], classes[keep]
        if scores.numel() > 30000:  # bound the NMS cost on untrained models
            top = scores.topk(30000).indices
            boxes, scores, classes = boxes[top], scores[top], classes[top]
        idx = torchvision.ops.nms(boxes + classes[:, None].float() * max_wh, scores, iou)[:max_det]
        out.append(torch.cat((boxes[idx], scores[idx, None], classes[idx, None].float()), 1))
    return out
