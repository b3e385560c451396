"""Optimiser with three parameter groups and the learning-rate schedule."""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Tuple

import torch
from torch import nn


def build_optimizer(model: nn.Module, hyp: Dict[str, Any], batch: int, nc: int, iterations: int
                    ) -> Tuple[torch.optim.Optimizer, Dict[str, Any]]:
    """Groups: 0 biases (no decay; warm-up starts them at warmup_bias_lr), 1 weights (decay), 2 norm weights
    (no decay, they only rescale). 'auto' picks AdamW with a class-count-fitted lr for short runs, else SGD.
    Returns the optimiser and the effective choices (name, lr0, momentum, weight_decay, warmup_bias_lr)."""
    name, lr, momentum = hyp["optimizer"], hyp["lr0"], hyp["momentum"]
    warmup_bias_lr = hyp["warmup_bias_lr"]
    if name == "auto":
        if iterations > 10_000:
            name, lr, momentum = "SGD", 0.01, 0.9
        else:
            name, lr, momentum = "AdamW", round(0.002 * 5 / (4 + nc), 6), 0.9
            warmup_bias_lr = 0.0  # Adam's per-parameter steps make a high bias lr unstable
    decay = hyp["weight_decay"] * batch / hyp["nbs"]
    biases, weights, norms = [], [], []
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if pname == "bias":
                biases.append(p)
            elif isinstance(module, (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
                norms.append(p)
            else:
                weights.append(p)
    if name == "SGD":
        opt: torch.optim.Optimizer = torch.optim.SGD(biases, lr=lr, momentum=momentum, nesterov=True, foreach=True)
    elif name == "AdamW":
        opt = torch.optim.AdamW(biases, lr=lr, betas=(momentum, 0.999), weight_decay=0.0, foreach=True)
    else:  # pragma: no cover - resolve_hyp validates the name
        raise ValueError(name)
    opt.add_param_group({"params": weights, "weight_decay": decay})
    opt.add_param_group({"params": norms, "weight_decay": 0.0})
    for g in opt.param_groups:
        g["initial_lr"] = lr
    return opt, {"optimizer": name, "lr0": lr, "momentum": momentum, "weight_decay": decay,
                 "warmup_bias_lr": warmup_bias_lr}


def lr_lambda(epochs: int, lrf: float, cos: bool) -> Callable[[float], float]:
    """Multiplier of lr0 at a given epoch: linear or cosine from 1 down to lrf at the last epoch."""
    if cos:
        return lambda x: ((1 - math.cos(x * math.pi / epochs)) / 2) * (lrf - 1) + 1
    return lambda x: max(1 - x / epochs, 0) * (1.0 - lrf) + lrf


def ignored_hyp(explicit: Dict[str, Any], info: Dict[str, Any]) -> list:
    """Warnings for hyperparameters the user set that the effective optimiser choice overrides: optimizer 'auto'
    picks its own lr0 and momentum (as the reference trainer's auto mode does)."""
    if explicit.get("optimizer", "auto") != "auto":
        return []
    overridden = [k for k in ("lr0", "momentum") if k in explicit and explicit[k] != info.get(k)]
    if not overridden:
        return []
    used = ", ".join(f"{k}={info[k]}" for k in overridden)
    return [f"optimizer 'auto' chose {info['optimizer']} and ignores {', '.join(overridden)} from your settings "
            f"(using {used}); set optimizer: SGD or AdamW in the hyperparameters to use yours"]
