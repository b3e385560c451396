"""`export`: a loaded model -> model.onnx + model.json (ModelManifestSchema) + PyTorch reference outputs for parity.

args: {checkpoint | model, out: "dir/model.onnx", imgsz, dynamic, opset, device, samples: [image paths],
       nc, preset, weights (a local weights file for a preset), names, parity_dir}
"""
from __future__ import annotations

import datetime
import inspect
import io
import json
import math
import os
import re
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from . import __version__
from .io import load_model, sha256_file
from .protocol import Emitter, WorkerError, log

PAD_VALUE = 114
SYNTHETIC_SAMPLES = 2
_ACCURACY_KEYS = {
    "map50": ("map50", "mAP50", "metrics/mAP50(B)"),
    "map5095": ("map5095", "map50_95", "mAP50-95", "metrics/mAP50-95(B)"),
    "top1": ("top1", "accuracy_top1", "metrics/accuracy_top1"),
    "top5": ("top5", "accuracy_top5", "metrics/accuracy_top5"),
}


def max_opset() -> int:
    """The newest opset the TorchScript exporter (the one used here, see _EXPORTER) writes: torch >= 2.4 names it
    apart from the dynamo exporter's, which goes higher."""
    try:
        from torch.onnx import _constants
        return int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", _constants.ONNX_MAX_OPSET))
    except (ImportError, AttributeError):
        return 17


def exporter_kwargs() -> Dict[str, Any]:
    """torch >= 2.9 exports through torch.export (dynamo) by default, which needs onnxscript, changes dynamic_axes
    and names nodes differently; the TorchScript exporter gives the same graph on every torch this worker supports
    (1.13 .. 2.x), so ask for it wherever the choice exists."""
    try:
        params = inspect.signature(torch.onnx.export).parameters
    except (TypeError, ValueError):
        return {}
    return {"dynamo": False} if "dynamo" in params else {}


def _round_half_up(x: float) -> int:
    # The TypeScript side (Math.round) rounds halves up; Python's round() would not.
    return int(math.floor(x + 0.5))


def preprocess_image(path: str, pre: Dict[str, Any]) -> Tuple[np.ndarray, Dict[str, float]]:
    """One image -> [1,3,H,W] float32 exactly as model.json's preprocess block says, and its geometry meta
    (x_in = x_orig * scale + pad) in the shape packages/vision's LetterboxMeta uses."""
    import cv2

    from .utils.files import IMAGE_MAX_BYTES, FileRefused, check_regular

    try:
        check_regular(path, IMAGE_MAX_BYTES)  # cv2 opens by path: a FIFO would block it, a device never end
    except FileRefused as e:
        raise WorkerError("IMAGE_INVALID", f"sample image {path} {e}", where={"file": path},
                          hint="pass JPEG/PNG image files in --samples") from None
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise WorkerError("IMAGE_INVALID", f"sample image {path} cannot be read", where={"file": path},
                          hint="pass JPEG/PNG images in --samples")
    h, w = img.shape[:2]
    H, W = pre["size"]
    if pre["resize"] == "center-crop":
        r = max(H / h, W / w)
        nw, nh = max(W, _round_half_up(w * r)), max(H, _round_half_up(h * r))
        resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        ox, oy = (nw - W) // 2, (nh - H) // 2
        canvas = resized[oy:oy + H, ox:ox + W]
        meta = {"scale": r, "padX": -ox, "padY": -oy}
    else:
        r = min(H / h, W / w)
        nw, nh = max(1, min(W, _round_half_up(w * r))), max(1, min(H, _round_half_up(h * r)))
        resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nw, nh) != (w, h) else img
        canvas = np.full((H, W, 3), pre["padValue"], dtype=np.uint8)
        ox, oy = (W - nw) // 2, (H - nh) // 2
        canvas[oy:oy + nh, ox:ox + nw] = resized
        meta = {"scale": r, "padX": ox, "padY": oy}
    meta.update(origWidth=w, origHeight=h)
    if pre["channelOrder"] == "RGB":
        canvas = canvas[:, :, ::-1]
    x = canvas.astype(np.float32) * np.float32(pre["scale"])
    x = (x - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), meta


def synthetic_input(pre: Dict[str, Any], seed: int) -> Tuple[np.ndarray, Dict[str, float]]:
    """Seeded random pixels, already at network size (no resize), when no sample images are given."""
    H, W = pre["size"]
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(1, 3, H, W)).astype(np.float32) * np.float32(pre["scale"])
    return x, {"scale": 1.0, "padX": 0, "padY": 0, "origWidth": W, "origHeight": H}


def _unsupported_ops(model: nn.Module, x: torch.Tensor, opset: int) -> List[Dict[str, str]]:
    """Every operator with no ONNX symbolic at this opset, with where it sits in the model.

    First choice: export again letting unsupported ops fall through as custom-domain nodes, so the exporter itself
    names each one and its module scope. Fallback (other torch versions): trace and ask the symbolic registry."""
    found: Dict[str, Dict[str, str]] = {}
    try:
        import onnx

        buf = io.BytesIO()
        torch.onnx.export(model, x, buf, opset_version=opset, input_names=["images"], output_names=["output0"],
                          operator_export_type=torch.onnx.OperatorExportTypes.ONNX_FALLTHROUGH, **exporter_kwargs())
        for node in onnx.load_from_string(buf.getvalue()).graph.node:
            if node.domain not in ("", "ai.onnx"):
                op = f"{node.domain.split('.')[-1]}::{node.op_type}"
                where = node.name.rsplit("/", 1)[0] or "/"
                found.setdefault(op, {"op": op, "where": where})
        if found:
            return list(found.values())
    except Exception as e:  # noqa: BLE001 - the fallback below still names what it can
        log(f"export: fall-through export failed ({type(e).__name__}: {e}); checking the traced graph instead")
    try:
        from torch.onnx._internal.registration import registry
        from torch.onnx import utils as _registers_symbolics  # noqa: F401

        traced = torch.jit.trace(model, x, check_trace=False)
        for node in traced.inlined_graph.nodes():
            kind = node.kind()
            if kind.startswith("aten::") and not registry.is_registered_op(kind, opset):
                # "__module.head.act" -> "/head/act", the form the exporter's node names use
                scope = "/" + "/".join(p for p in node.scopeName().replace("__module", "").split(".") if p)
                found.setdefault(kind, {"op": kind, "where": scope})
    except Exception as e:  # noqa: BLE001
        log(f"export: could not list unsupported operators ({type(e).__name__}: {e})")
    return list(found.values())


def _onnx_export(model: nn.Module, x: torch.Tensor, out: str, opset: int, dynamic: bool) -> None:
    axes = {"images": {0: "batch"}, "output0": {0: "batch"}} if dynamic else None
    try:
        torch.onnx.export(model, x, out, opset_version=opset, input_names=["images"], output_names=["output0"],
                          do_constant_folding=True, dynamic_axes=axes, **exporter_kwargs())
    except (torch.onnx.errors.OnnxExporterError, RuntimeError) as e:
        missing = _unsupported_ops(model, x, opset)
        if os.path.exists(out):
            os.remove(out)
        if not missing:
            raise WorkerError("MODEL_INVALID", f"ONNX export failed: {str(e).splitlines()[0]}") from None
        listing = "; ".join(f"{m['op']} (in {m['where']})" for m in missing)
        raise WorkerError("UNSUPPORTED_OPERATOR",
                          f"the model uses {len(missing)} operator(s) with no ONNX export at opset {opset}: {listing}",
                          hint="replace these operations with supported ones (or register a custom symbolic), "
                               f"or try another --opset (this torch supports up to {max_opset()})",
                          where={"field": "model"}) from None


def _accuracy(metrics: Dict[str, Any], task: str) -> Optional[Dict[str, float]]:
    out: Dict[str, float] = {}
    wanted = ("map50", "map5095") if task == "detect" else ("top1", "top5")
    for key in wanted:
        for alias in _ACCURACY_KEYS[key]:
            v = metrics.get(alias)
            if isinstance(v, (int, float)) and 0 <= v <= 1:
                out[key] = float(v)
                break
    return out or None


def _write_bin(path: str, a: np.ndarray) -> None:
    np.ascontiguousarray(a, dtype="<f4").tofile(path)


def run(args: Dict[str, Any], emit: Emitter) -> Dict[str, Any]:
    source = args.get("checkpoint") or args.get("model")
    out = args.get("out")
    if not isinstance(source, str) or not source:
        raise WorkerError("INVALID_ARGUMENT", "export needs `checkpoint` (a model file or preset)", where={"field": "checkpoint"})
    if not isinstance(out, str) or not out.endswith(".onnx"):
        raise WorkerError("INVALID_ARGUMENT", f"--out must be a path ending in .onnx, got {out!r}", where={"field": "out"})
    opset = args.get("opset") or max_opset()
    if not isinstance(opset, int) or opset < 7 or opset > max_opset():
        raise WorkerError("INVALID_ARGUMENT", f"--opset must be between 7 and {max_opset()} with this torch ({torch.__version__}), got {opset}",
                          where={"field": "opset"})
    dynamic = bool(args.get("dynamic", False))
    emit.progress("export", 0, 4, "loading model")
    model, meta = load_model(source, nc=args.get("nc"), preset=args.get("preset"), weights=args.get("weights"),
                             trust_torchscript=args.get("trust_torchscript") is True)
    imgsz = int(args.get("imgsz") or meta.get("imgsz") or 640)
    if imgsz % 32 or imgsz <= 0:
        raise WorkerError("INVALID_ARGUMENT", f"--imgsz must be a positive multiple of 32, got {imgsz}", where={"field": "imgsz"})
    task = meta["task"]
    names = args.get("names") or meta.get("names") or [f"class{i}" for i in range(meta["nc"])]
    if len(names) != meta["nc"]:
        raise WorkerError("INVALID_ARGUMENT", f"{len(names)} class names given for a model with {meta['nc']} classes",
                          where={"field": "names"})
    if hasattr(model, "fuse") and not isinstance(model, torch.jit.ScriptModule):
        model.fuse()  # fold BatchNorm into the convolutions: fewer nodes, same numbers
    model.eval()

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    x = torch.zeros(1, 3, imgsz, imgsz)
    emit.progress("export", 1, 4, f"exporting to ONNX opset {opset}")
    with torch.no_grad():
        _onnx_export(model, x, out, opset, dynamic)
        ref_shape = list(model(x).shape)
    try:
        import onnx

        onnx.checker.check_model(out)
    except ImportError:
        log("export: python onnx is not installed; skipping onnx.checker")
    except Exception as e:  # noqa: BLE001 - the checker raises its own ValidationError types
        raise WorkerError("MODEL_INVALID", f"the exported {out} fails onnx.checker: {e}", where={"file": out}) from None

    emit.progress("export", 2, 4, "writing model.json")
    pre: Dict[str, Any] = {"resize": "letterbox" if task == "detect" else "center-crop", "size": [imgsz, imgsz],
                           "padValue": PAD_VALUE, "scale": 1 / 255, "mean": [0, 0, 0], "std": [1, 1, 1],
                           "channelOrder": "RGB", "padPosition": "center", "stride": 32}
    batch: Any = "batch" if dynamic else 1
    out_shape = [batch] + ref_shape[1:]
    src_is_file = os.path.isfile(source)
    provenance: Dict[str, Any] = {
        "source": os.path.abspath(source) if src_is_file else source,
        "onnxSha256": sha256_file(out),
        "exportedBy": f"cvopt_trainer {__version__} (torch {torch.__version__})",
        "createdAt": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    if meta.get("sourceSha256"):
        provenance["sourceSha256"] = meta["sourceSha256"]
    if meta.get("trainingRun"):
        provenance["trainingRun"] = str(meta["trainingRun"])
    if meta.get("hyperparameters"):
        provenance["hyperparameters"] = meta["hyperparameters"]
    stem = re.sub(r"\.onnx$", "", os.path.basename(out))
    manifest: Dict[str, Any] = {
        "schemaVersion": 1,
        "name": meta.get("preset") or stem,
        "task": task,
        "input": {"name": "images", "shape": [batch, 3, imgsz, imgsz], "layout": "NCHW", "dtype": "float32"},
        "preprocess": pre,
        "output": {"name": "output0", "format": "yolov8" if task == "detect" else "probabilities",
                   "shape": out_shape, "scoresActivated": True},
        "classNames": [str(n) for n in names],
        "opset": opset,
        "precision": "fp32",
        "provenance": provenance,
    }
    acc = _accuracy(meta.get("metrics") or {}, task)
    if acc:
        manifest["accuracy"] = acc
    manifest_path = os.path.join(os.path.dirname(os.path.abspath(out)), "model.json")
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)

    emit.progress("export", 3, 4, "PyTorch reference outputs")
    parity_dir = args.get("parity_dir") or os.path.join(os.path.dirname(os.path.abspath(out)), f"{stem}.parity")
    os.makedirs(parity_dir, exist_ok=True)
    samples = [str(s) for s in (args.get("samples") or [])]
    entries = []
    inputs = [preprocess_image(s, pre) for s in samples] or [synthetic_input(pre, i) for i in range(SYNTHETIC_SAMPLES)]
    with torch.no_grad():
        for i, (arr, geo) in enumerate(inputs):
            y = model(torch.from_numpy(arr)).numpy()
            _write_bin(os.path.join(parity_dir, f"input{i}.bin"), arr)
            _write_bin(os.path.join(parity_dir, f"output{i}.bin"), y)
            entries.append({"input": f"input{i}.bin", "inputShape": list(arr.shape), "output": f"output{i}.bin",
                            "outputShape": list(y.shape), "image": samples[i] if samples else None, "meta": geo})
    parity = {"dtype": "float32", "byteOrder": "little", "samples": entries}
    with open(os.path.join(parity_dir, "parity.json"), "w", encoding="utf-8") as f:
        json.dump(parity, f, indent=2)
    emit.progress("export", 4, 4, "done")
    return {"onnx": os.path.abspath(out), "manifest": manifest_path, "parityDir": os.path.abspath(parity_dir),
            "task": task, "nc": meta["nc"], "opset": opset, "imgsz": imgsz, "dynamic": dynamic,
            "sourceFormat": meta["format"], "onnxSha256": provenance["onnxSha256"]}
