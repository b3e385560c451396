"""Exponential moving average of the weights, with a warm-up so early averages follow the model."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


class ModelEMA:
    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0):
        self.ema = copy.deepcopy(model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.tau = tau
        self.updates = updates
        self._pairs = None

    def rate(self) -> float:
        return self.decay * (1 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.rate()
        if self._pairs is None or self._pairs[2] is not model:
            # Parameters and buffers are updated in place, so the tensor pairs can be collected once.
            msd = model.state_dict()
            keys = [k for k, v in self.ema.state_dict().items() if v.dtype.is_floating_point]
            esd = self.ema.state_dict()
            self._pairs = ([esd[k] for k in keys], [msd[k].detach() for k in keys], model)
        ema_t, model_t, _ = self._pairs
        torch._foreach_mul_(ema_t, d)
        torch._foreach_add_(ema_t, model_t, alpha=1 - d)
