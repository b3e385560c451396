"""Training hyperparameters: the reference names and defaults, validated at the edge."""
from __future__ import annotations

from typing import Any, Dict, Mapping

from ..protocol import WorkerError

DEFAULT_HYP: Dict[str, Any] = {
    # optimiser and schedule
    "optimizer": "auto",  # 'SGD' | 'AdamW' | 'auto' (AdamW with a fitted lr for short runs, else SGD)
    "lr0": 0.01,
    "lrf": 0.01,  # final lr = lr0 · lrf
    "momentum": 0.937,  # SGD momentum / Adam beta1
    "weight_decay": 0.0005,
    "warmup_epochs": 3.0,
    "warmup_momentum": 0.8,
    "warmup_bias_lr": 0.1,
    "cos_lr": False,
    "nbs": 64,  # nominal batch size: weight decay is scaled by batch / nbs
    # loss
    "box": 7.5,
    "cls": 0.5,
    "dfl": 1.5,
    "label_smoothing": 0.0,
    # augmentation
    "hsv_h": 0.015,
    "hsv_s": 0.7,
    "hsv_v": 0.4,
    "degrees": 0.0,
    "translate": 0.1,
    "scale": 0.5,
    "shear": 0.0,
    "perspective": 0.0,
    "flipud": 0.0,
    "fliplr": 0.5,
    "mosaic": 1.0,
    "mixup": 0.0,
    "close_mosaic": 10,  # epochs at the end trained without mosaic
}

_CHOICES = {"optimizer": ("SGD", "AdamW", "auto")}
_PROBABILITIES = ("flipud", "fliplr", "mosaic", "mixup", "hsv_h", "hsv_s", "hsv_v", "label_smoothing")


def resolve_hyp(overrides: Mapping[str, Any] | None) -> Dict[str, Any]:
    """Defaults updated with overrides; unknown names, wrong types and out-of-range values are refused."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(DEFAULT_HYP))
    if unknown:
        raise WorkerError("INVALID_ARGUMENT", f"unknown hyperparameter(s): {', '.join(unknown)}",
                          hint=f"known names: {', '.join(sorted(DEFAULT_HYP))}", where={"field": f"hyp.{unknown[0]}"})
    hyp = dict(DEFAULT_HYP)
    for k, v in overrides.items():
        default = DEFAULT_HYP[k]
        where = {"field": f"hyp.{k}"}
        if k in _CHOICES:
            if v not in _CHOICES[k]:
                raise WorkerError("INVALID_ARGUMENT", f"hyp.{k} must be one of {', '.join(_CHOICES[k])}, got {v!r}",
                                  where=where)
        elif isinstance(default, bool):
            if not isinstance(v, bool):
                raise WorkerError("INVALID_ARGUMENT", f"hyp.{k} must be true or false, got {v!r}", where=where)
        else:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v < 0:
                raise WorkerError("INVALID_ARGUMENT", f"hyp.{k} must be a non-negative number, got {v!r}",
                                  where=where)
            if k in _PROBABILITIES and v > 1:
                raise WorkerError("INVALID_ARGUMENT", f"hyp.{k} must be between 0 and 1, got {v}", where=where)
            v = int(v) if isinstance(default, int) else float(v)
        hyp[k] = v
    return hyp
