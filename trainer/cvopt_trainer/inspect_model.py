"""`inspect`: what a model file is (format, preset, task, classes, parameters), read safely through load_model.

args: {path | checkpoint | model, nc, preset, weights, imgsz}
"""
from __future__ import annotations

from typing import Any, Dict

from .io import load_model
from .protocol import Emitter, WorkerError

FIELDS = ("format", "preset", "task", "nc", "names", "params", "imgsz", "epoch", "source", "sourceSha256", "metrics",
          "hyperparameters")


def run(args: Dict[str, Any], emit: Emitter) -> Dict[str, Any]:
    path = args.get("path") or args.get("checkpoint") or args.get("model")
    if not isinstance(path, str) or not path:
        raise WorkerError("INVALID_ARGUMENT", "inspect needs `path` (a model file or preset)", where={"field": "path"})
    emit.progress("inspect", 0, 1, f"reading {path}")
    _model, meta = load_model(path, nc=args.get("nc"), preset=args.get("preset"), weights=args.get("weights"),
                             trust_torchscript=args.get("trust_torchscript") is True)
    emit.progress("inspect", 1, 1)
    return {k: meta.get(k) for k in FIELDS if meta.get(k) is not None}
