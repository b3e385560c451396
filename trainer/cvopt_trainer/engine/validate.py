"""Validation: detection mAP in original-image pixels, or top-1/top-5 for classifiers."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
from torch import nn

from ..data.augment import normalised_to_pixels
from ..metrics import ImageBoxes, evaluate, non_max_suppression, topk_accuracy


@torch.no_grad()
def validate_detect(model: nn.Module, loader, device: torch.device, nc: int, conf: float = 0.001,
                    iou: float = 0.7, max_det: int = 300, multi_label: bool = True) -> Dict[str, float]:
    """mAP under cvopt's evaluation protocol (contracts/eval-protocol.json), the same as `cvopt eval`."""
    model.eval()
    dataset = loader.dataset
    images = []
    for imgs, _, metas in loader.epoch(0):
        preds = model(imgs.to(device, non_blocking=True).float() / 255)
        for det, meta in zip(non_max_suppression(preds.float(), conf, iou, max_det, multi_label), metas):
            h0, w0 = meta["orig_shape"]
            padx, pady = meta["pad"]
            det = det.cpu().numpy().astype(np.float64)
            boxes = det[:, :4].copy()
            boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - padx) / meta["gain"]).clip(0, w0)
            boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - pady) / meta["gain"]).clip(0, h0)
            gt = normalised_to_pixels(dataset.labels[meta["index"]], w0, h0)
            images.append(ImageBoxes(gt[:, 1:].astype(np.float64), gt[:, 0].astype(np.int64), None, boxes,
                                     det[:, 4], det[:, 5].astype(np.int64)))
    r = evaluate(images, list(range(nc)))
    return {k: float(r[k]) for k in ("map50", "map5095", "map75", "precision", "recall")}


@torch.no_grad()
def validate_classify(model: nn.Module, loader, device: torch.device) -> Dict[str, float]:
    model.eval()
    probs, targets = [], []
    for imgs, y, _ in loader.epoch(0):
        probs.append(model(imgs.to(device, non_blocking=True).float() / 255).float().cpu())
        targets.append(y)
    if not probs:
        return {"top1": 0.0, "top5": 0.0}
    return topk_accuracy(torch.cat(probs), torch.cat(targets))


def fitness(task: str, metrics: Optional[Dict[str, float]]) -> float:
    """Checkpoint selection: 0.1·mAP50 + 0.9·mAP50-95 for detection, top-1 for classification."""
    if not metrics:
        return 0.0
    if task == "detect":
        return 0.1 * metrics["map50"] + 0.9 * metrics["map5095"]
    return metrics["top1"]
