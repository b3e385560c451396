"""Checkpoints as plain containers and tensors (readable by a restricted unpickler), written atomically."""
from __future__ import annotations

import os
from typing import Any, Dict

import torch

FORMAT = "cvopt-checkpoint-v1"


def plain_state_dict(module: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """A dict (not OrderedDict with metadata) of float32 (or integer) tensors detached on CPU."""
    out = {}
    for k, v in module.state_dict().items():
        v = v.detach().cpu()
        out[k] = v.float() if v.is_floating_point() else v.clone()
    return out


def save_atomic(obj: Dict[str, Any], path: str) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over the target: a crash leaves the
    old checkpoint or the new one, never half of one."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str) -> Dict[str, Any]:
    """Load a checkpoint through the restricted unpickler: even our own output directory is not trusted code."""
    from ..io.unpickle import safe_load  # lazily: the loader lives beside the model-import code

    return safe_load(path)
