"""load_model: every model source cvopt accepts, turned into (nn.Module in eval mode, meta) without running
code from the file. TorchScript is a program (it can create and write files), so it is refused unless the caller
says it is trusted; even then it is never called to learn what it is: task and classes come from its parameters."""
from __future__ import annotations

import collections
import hashlib
import os
import re
import zipfile
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..protocol import WorkerError
from .unpickle import Stub, safe_load

CHECKPOINT_FORMAT = "cvopt-checkpoint-v1"
PRESET_RE = re.compile(r"^yolov8[a-z](-cls)?$")
WEIGHTS_ENV = "CVOPT_WEIGHTS_DIR"


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_preset(name: str) -> bool:
    return bool(PRESET_RE.match(name)) and not os.path.exists(name)


def _build(preset: str, nc: int) -> nn.Module:
    from ..models import build_model  # written by the models package; imported late so io/ loads without it

    # Random init is seeded so the same preset always gives the same untrained weights (reproducible exports).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            return build_model(preset, nc=nc)
        except (KeyError, ValueError) as e:
            raise WorkerError("INVALID_ARGUMENT", f"unknown model preset {preset!r}: {e}",
                              hint="use yolov8n|s|m|l|x or yolov8n-cls…yolov8x-cls, or a model file",
                              where={"field": "model"}) from None


def _names_list(names: Any, nc: int) -> List[str]:
    if isinstance(names, dict):
        return [str(names.get(i, names.get(str(i), f"class{i}"))) for i in range(nc)]
    if isinstance(names, (list, tuple)) and len(names) == nc:
        return [str(n) for n in names]
    return [f"class{i}" for i in range(nc)]


def stub_state_dict(root: Stub) -> "collections.OrderedDict[str, torch.Tensor]":
    """Walk inert module stand-ins the way nn.Module.state_dict walks modules: parameters, persistent buffers."""
    out: "collections.OrderedDict[str, torch.Tensor]" = collections.OrderedDict()

    def walk(mod: Any, prefix: str) -> None:
        d = getattr(mod, "__dict__", {})
        skip = set(d.get("_non_persistent_buffers_set", ()) or ())
        for group in ("_parameters", "_buffers"):
            for k, v in (d.get(group) or {}).items():
                if v is not None and k not in skip:
                    out[prefix + k] = v.detach().float() if v.is_floating_point() else v.detach()
        for k, child in (d.get("_modules") or {}).items():
            if child is not None:
                walk(child, prefix + k + ".")

    walk(root, "")
    return out


def _strip_prefix(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def _scale_by_stem_width() -> Dict[int, str]:
    """First convolution's output channels -> scale letter: 64 × the width multiple, rounded up to 8."""
    from ..models import DETECT_SCALES

    return {int(-(-64 * w // 8) * 8): s for s, (_d, w, _c) in DETECT_SCALES.items()}


def infer_from_state_dict(sd: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    """task, nc and preset from tensor names and shapes alone (for bare state dicts)."""
    info: Dict[str, Any] = {}
    head_cls = [k for k in sd if re.match(r"^model\.\d+\.cv3\.0\.2\.weight$", k)]
    head_lin = [k for k in sd if re.match(r"^model\.\d+\.linear\.weight$", k)]
    if head_cls:
        info["task"], info["nc"] = "detect", int(sd[head_cls[0]].shape[0])
    elif head_lin:
        info["task"], info["nc"] = "classify", int(sd[head_lin[0]].shape[0])
    stem = sd.get("model.0.conv.weight")
    by_width = _scale_by_stem_width()
    if stem is not None and int(stem.shape[0]) in by_width and "task" in info:
        scale = by_width[int(stem.shape[0])]
        info["preset"] = f"yolov8{scale}" + ("-cls" if info["task"] == "classify" else "")
    return info


def _load_state(model: nn.Module, sd: Dict[str, torch.Tensor], path: str) -> None:
    own = model.state_dict()
    # Ultralytics' DFL holds a fixed arange as a parameter; ours may keep it as a constant: not a mismatch.
    sd = {k: v for k, v in sd.items() if k in own or not k.endswith(".dfl.conv.weight")}
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:5])}{'…' if len(missing) > 5 else ''})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:5])}{'…' if len(unexpected) > 5 else ''})")
        if wrong:
            parts.append(f"{len(wrong)} with the wrong shape ({'; '.join(wrong[:3])}{'…' if len(wrong) > 3 else ''})")
        raise WorkerError("MODEL_INVALID", f"the weights in {path} do not fit the model: " + ", ".join(parts),
                          hint="pass --model with the preset the weights were trained as (e.g. yolov8s), and --nc if known",
                          where={"file": path})
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items() if k in own}, strict=True)


def _finish(model: nn.Module, meta: Dict[str, Any]) -> Tuple[nn.Module, Dict[str, Any]]:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if meta.get("nc") is not None:
        meta["names"] = _names_list(meta.get("names"), int(meta["nc"]))
        try:
            model.names = meta["names"]
        except (AttributeError, TypeError):
            pass
    meta["params"] = int(sum(p.numel() for p in model.parameters()))
    return model, meta


def _is_torchscript(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            # constants.pkl and code/ are what torch.jit.save writes and torch.save never does
            return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _from_ultralytics(obj: Dict[str, Any], path: str, nc: Optional[int], preset: Optional[str]) -> Tuple[nn.Module, Dict[str, Any]]:
    root = obj.get("ema") or obj.get("model")
    qual = type(root)._cvopt_qualname  # type: ignore[attr-defined]
    task = "classify" if qual.endswith("ClassificationModel") else "detect"
    yaml_cfg = root.__dict__.get("yaml") or {}
    sd = stub_state_dict(root)
    inferred = infer_from_state_dict(sd)
    scale = yaml_cfg.get("scale") if isinstance(yaml_cfg, dict) else None
    if not scale and isinstance(yaml_cfg, dict):
        m = re.search(r"yolov8([nslmx])", str(yaml_cfg.get("yaml_file", "")))
        scale = m.group(1) if m else None
    preset = preset or (f"yolov8{scale}" + ("-cls" if task == "classify" else "") if scale else inferred.get("preset"))
    nc = nc or inferred.get("nc") or (yaml_cfg.get("nc") if isinstance(yaml_cfg, dict) else None)
    if not preset or not nc:
        raise WorkerError("MODEL_INVALID", f"{path} is an Ultralytics checkpoint, but its scale or class count is unknown",
                          hint="pass the preset (e.g. yolov8s) and nc explicitly", where={"file": path})
    names = root.__dict__.get("names")
    args = obj.get("train_args") or {}
    if not isinstance(args, dict):
        args = dict(getattr(args, "__dict__", {}))
    model = _build(preset, int(nc))
    _load_state(model, sd, path)
    imgsz = args.get("imgsz")
    meta = {"format": "ultralytics", "task": task, "preset": preset, "nc": int(nc), "names": names,
            "imgsz": int(imgsz) if isinstance(imgsz, int) else None, "hyperparameters": _plain(args),
            "metrics": _plain(obj.get("train_metrics") or {})}
    return _finish(model, meta)


def _plain(d: Any) -> Dict[str, Any]:
    """Only JSON-friendly values survive into manifests and results."""
    out: Dict[str, Any] = {}
    if not isinstance(d, dict):
        return out
    for k, v in d.items():
        if isinstance(v, (bool, int, float, str)) or v is None:
            out[str(k)] = v
        elif hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
            out[str(k)] = v.item()
        elif isinstance(v, (list, tuple)) and all(isinstance(x, (bool, int, float, str)) for x in v):
            out[str(k)] = list(v)
    return out


def _from_checkpoint(obj: Dict[str, Any], path: str, nc: Optional[int]) -> Tuple[nn.Module, Dict[str, Any]]:
    preset = obj.get("preset")
    n = int(nc or obj.get("nc") or 0)
    if not isinstance(preset, str) or n <= 0 or not isinstance(obj.get("state_dict"), dict):
        raise WorkerError("MODEL_INVALID", f"{path} says it is a {CHECKPOINT_FORMAT} but lacks preset, nc or state_dict",
                          where={"file": path})
    model = _build(preset, n)
    _load_state(model, _strip_prefix(obj["state_dict"]), path)
    meta = {"format": "cvopt-checkpoint", "task": obj.get("task") or getattr(model, "task", None), "preset": preset,
            "nc": n, "names": obj.get("names"), "imgsz": obj.get("imgsz"), "epoch": obj.get("epoch"),
            "hyperparameters": _plain(obj.get("hyp") or obj.get("hyperparameters") or {}),
            "metrics": _plain(obj.get("metrics") or {}),
            # BatchNorm folded into the convolutions at the source (an ONNX import): the BN layers are identities
            "bnFolded": bool(obj.get("bnFolded", False)),
            # a run is its output directory unless the checkpoint names one
            "trainingRun": obj.get("run") or os.path.dirname(os.path.abspath(path))}
    return _finish(model, meta)


def _from_state_dict(sd: Dict[str, torch.Tensor], path: str, nc: Optional[int], preset: Optional[str]) -> Tuple[nn.Module, Dict[str, Any]]:
    sd = _strip_prefix(sd)
    info = infer_from_state_dict(sd)
    preset = preset or info.get("preset")
    n = int(nc or info.get("nc") or 0)
    if not preset or n <= 0:
        raise WorkerError("MODEL_INVALID", f"{path} is a bare state dict and its architecture could not be inferred",
                          hint="pass the preset it was trained as (e.g. --model-preset yolov8s) and the class count",
                          where={"file": path})
    model = _build(preset, n)
    _load_state(model, sd, path)
    return _finish(model, {"format": "state-dict", "task": getattr(model, "task", info.get("task")), "preset": preset, "nc": n})


TORCHSCRIPT_CODE = "TORCHSCRIPT_UNTRUSTED"


def refuse_torchscript(path: str) -> WorkerError:
    return WorkerError(
        TORCHSCRIPT_CODE,
        f"refused to load {path}: it is a TorchScript archive, which is a program, not data (loading or running it "
        "can create and write files); cvopt loads TorchScript only when told it is trusted, and never runs it to "
        "find out what it is",
        hint="if you wrote this file or trust its source, pass --trust-torchscript; otherwise ask for a state dict "
             "(torch.save(model.state_dict(), path)) or an ONNX file",
        where={"file": path})


def _from_torchscript(path: str, nc: Optional[int], trusted: bool) -> Tuple[nn.Module, Dict[str, Any]]:
    if not trusted:
        raise refuse_torchscript(path)
    try:
        # torch.jit.load itself runs code (a scripted __setstate__): only reached for a trusted file.
        module = torch.jit.load(path, map_location="cpu")
    except RuntimeError as e:
        raise WorkerError("MODEL_INVALID", f"{path} is not a loadable TorchScript archive: {e}", where={"file": path}) from None
    module.eval()
    # Task and class count from the declared parameters (names and shapes), never from a forward pass.
    info = infer_from_state_dict(dict(module.state_dict()))
    n = nc or info.get("nc")
    if "task" not in info or not n:
        raise WorkerError("MODEL_INVALID", f"{path}: cannot tell this TorchScript model's task from its parameters "
                          "(no YOLOv8 detect or classify head by name); cvopt does not run a model to find out",
                          hint="save a state dict of a YOLOv8-architecture model, or export to ONNX and pass the ONNX file",
                          where={"file": path})
    meta = {"format": "torchscript", "task": info["task"], "preset": info.get("preset"), "nc": int(n), "names": None}
    return _finish(module, meta)


def preset_weights(preset: str, weights: Optional[str]) -> Optional[str]:
    """A local weights file for a preset: the explicit one, else $CVOPT_WEIGHTS_DIR/<preset>.pt when present."""
    if weights:
        return weights
    d = os.environ.get(WEIGHTS_ENV)
    if d:
        cand = os.path.join(d, f"{preset}.pt")
        if os.path.isfile(cand):
            return cand
    return None


def load_model(path: str, nc: Optional[int] = None, preset: Optional[str] = None, weights: Optional[str] = None,
               trust_torchscript: bool = False) -> Tuple[nn.Module, Dict[str, Any]]:
    """(model in eval mode, meta) from a preset name or a file. meta: format, task, preset, nc, names, imgsz,
    params, source, sourceSha256, and for checkpoints hyperparameters/metrics when known. A TorchScript file is
    refused with TORCHSCRIPT_UNTRUSTED unless trust_torchscript."""
    if is_preset(path):
        wfile = preset_weights(path, weights)
        if wfile:
            model, meta = load_model(wfile, nc=nc, preset=path, trust_torchscript=trust_torchscript)
            meta["preset"] = path
            return model, meta
        task = "classify" if path.endswith("-cls") else "detect"
        n = int(nc or (1000 if task == "classify" else 80))
        model = _build(path, n)
        return _finish(model, {"format": "preset", "task": getattr(model, "task", task), "preset": path, "nc": n,
                               "names": None, "source": path})
    if os.path.exists(path) and not os.path.isfile(path):
        raise WorkerError("MODEL_INVALID", f"model path {path} is not a regular file (a folder, pipe or device)",
                          hint="pass the model file itself", where={"file": path})
    if not os.path.isfile(path):
        raise WorkerError("NOT_FOUND", f"model file {path} does not exist",
                          hint="pass a preset (yolov8n…x, yolov8n-cls…) or the path of a .pt/.pkl/TorchScript file",
                          where={"file": path})
    if _is_torchscript(path):
        model, meta = _from_torchscript(path, nc, trust_torchscript)
    else:
        obj = safe_load(path)
        if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
            model, meta = _from_checkpoint(obj, path, nc)
        elif isinstance(obj, dict) and isinstance(obj.get("model") or obj.get("ema"), Stub):
            model, meta = _from_ultralytics(obj, path, nc, preset)
        elif isinstance(obj, Stub):
            model, meta = _from_ultralytics({"model": obj}, path, nc, preset)
        elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            model, meta = _from_state_dict(obj, path, nc, preset)
        elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            model, meta = _from_state_dict(obj["state_dict"], path, nc, preset)
        else:
            raise WorkerError("MODEL_INVALID", f"{path} holds a {type(obj).__name__}, not a model, checkpoint or state dict",
                              hint="save the model with torch.save(model.state_dict(), path) or pass a cvopt checkpoint",
                              where={"file": path})
    meta["source"] = path
    meta["sourceSha256"] = sha256_file(path)
    return model, meta
