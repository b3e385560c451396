"""Classification loss: cross-entropy with optional label smoothing."""
from __future__ import annotations

from typing import Dict

import torch
from torch import nn
from torch.nn import functional as F


class ClassificationLoss(nn.Module):
    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> Dict[str, torch.Tensor]:
        ce = F.cross_entropy(logits.float(), targets, label_smoothing=self.label_smoothing)
        # Scaled by batch size like the detection loss, so the same learning rates apply to both tasks.
        return {"cls": ce, "loss": ce * logits.shape[0]}
