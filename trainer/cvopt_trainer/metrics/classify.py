"""Top-k accuracy for classification."""
from __future__ import annotations

from typing import Dict

import torch


def topk_accuracy(probs: torch.Tensor, targets: torch.Tensor, ks=(1, 5)) -> Dict[str, float]:
    """Fraction of samples whose true class is among the k highest scores; k is capped at the class count."""
    out: Dict[str, float] = {}
    n = max(int(targets.numel()), 1)
    for k in ks:
        kk = min(k, probs.shape[1])
        hit = (probs.topk(kk, 1).indices == targets.view(-1, 1)).any(1)
        out[f"top{k}"] = float(hit.sum()) / n
    return out
