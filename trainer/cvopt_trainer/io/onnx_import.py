"""Rebuild our PyTorch YOLOv8 from a YOLOv8-architecture ONNX file (no PyTorch source needed).

Exporters name the initialisers after the PyTorch parameters they came from (``model.0.conv.weight``,
``model.22.cv3.0.2.bias``) with BatchNorm already folded into the convolutions; dynamic quantisation keeps the
names and adds ``_quantized`` / ``_scale`` / ``_zero_point``. So the weights are read by name, dequantised
((q − zp)·scale, per tensor or per output channel), and loaded into our model after its own Conv+BN fusion.
The model is saved as a cvopt checkpoint with identity BatchNorms (γ=1, β=bias, μ=0, σ²=1−ε) so every loader and
the export path take it unchanged, and ``fuse()`` gives back exactly the folded weights.

Run as the worker command ``python3 -m cvopt_trainer import-onnx --json-args FILE`` with {onnx, out}; result {preset, task, nc,
names, imgsz, out, dequantised, weights}. A model that is not YOLOv8-shaped is MODEL_INVALID whose message starts with "no PyTorch source".
"""
from __future__ import annotations

import ast
import json
import os
import stat
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

from ..protocol import Emitter, WorkerError
from .load import CHECKPOINT_FORMAT, sha256_file

NOT_YOLOV8 = "no PyTorch source for this ONNX model"


def _onnx():
    try:
        import onnx  # noqa: PLC0415 - optional dependency, only this importer needs it
        from onnx import numpy_helper
    except ImportError as e:
        raise WorkerError("DEPENDENCY_MISSING", f"the onnx Python package is not importable: {e}",
                          hint="install python3-onnx (Debian) or `pip install onnx`") from e
    return onnx, numpy_helper


def read_initialisers(path: str) -> Tuple[Dict[str, np.ndarray], Any]:
    onnx, numpy_helper = _onnx()
    if not os.path.isfile(path):
        raise WorkerError("NOT_FOUND", f"ONNX file {path} does not exist", where={"file": path})
    try:
        # onnx.load would follow external-data paths wherever they point (it strips only a leading ../, and
        # follows symlinks): read the graph alone, then the external data ourselves, confined to the folder.
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - any decode failure means the same thing to the user
        raise WorkerError("MODEL_INVALID", f"{path} is not a readable ONNX model: {e}", where={"file": path}) from e
    load_confined_external_data(model, path)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    # Exporters store identical tensors (all-zero biases, say) once and alias the other names to it through
    # Identity nodes; follow the aliases so every parameter name resolves.
    for n in model.graph.node:
        if n.op_type == "Identity" and n.input and n.input[0] in inits and n.output[0] not in inits:
            inits[n.output[0]] = inits[n.input[0]]
    return inits, model


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for g in attr.graphs:
                yield from _graph_tensors(g)


def _inside(folder: str, location: str) -> Optional[str]:
    """The real path of `location` under `folder`, or None when it (or a symlink on the way) leads outside."""
    if not location or os.path.isabs(location) or "\0" in location:
        return None
    full = os.path.realpath(os.path.join(folder, location))
    return full if os.path.commonpath([folder, full]) == folder and full != folder else None


def load_confined_external_data(model: Any, path: str) -> None:
    """Inline every external tensor's bytes, read from regular files inside the model's real folder only."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    for t in _graph_tensors(model.graph):
        if t.data_location != 1:  # TensorProto.EXTERNAL
            continue
        kv = {e.key: e.value for e in t.external_data}
        location = kv.get("location", "")
        field = f"initializer {t.name}.external_data.location"
        full = _inside(folder, location)
        if full is None:
            raise WorkerError("MODEL_INVALID", f"tensor {t.name!r} of {path} keeps its data at {location!r}, which is not "
                              "a file inside the model's folder (absolute paths, ../ and symlinks out are refused)",
                              hint="keep the .data file beside the .onnx file, as a real file",
                              where={"file": path, "field": field})
        try:
            offset = int(kv.get("offset", "0"))
            length = int(kv["length"]) if "length" in kv else -1
        except ValueError:
            raise WorkerError("MODEL_INVALID", f"tensor {t.name!r} of {path}: external data offset/length are not integers",
                              where={"file": path, "field": field}) from None
        try:
            fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError as e:
            raise WorkerError("MODEL_INVALID", f"external data {location!r} for tensor {t.name!r} cannot be opened: "
                              f"{e.strerror}", where={"file": full},
                              hint="copy the .data file next to the .onnx file") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise WorkerError("MODEL_INVALID", f"external data {location!r} is not a regular file", where={"file": full})
        with os.fdopen(fd, "rb") as f:
            if length < 0:
                length = st.st_size - offset
            if offset < 0 or length < 0 or offset + length > st.st_size:
                raise WorkerError("MODEL_INVALID", f"tensor {t.name!r} needs bytes {offset}..{offset + length} of "
                                  f"{location!r}, which has {st.st_size}", where={"file": full},
                                  hint="the .data file is truncated or belongs to another model")
            f.seek(offset)
            t.raw_data = f.read(length)
        del t.external_data[:]
        t.data_location = 0  # TensorProto.DEFAULT


def dequantise(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int = 0) -> np.ndarray:
    """(q − zp)·scale; a 1-D scale/zero point of length q.shape[axis] is per channel along that axis."""
    qf = q.astype(np.float32)
    s = np.asarray(scale, np.float32)
    z = np.asarray(zero_point).astype(np.float32)
    if s.ndim == 1 and s.size > 1:
        shape = [1] * q.ndim
        shape[axis] = s.size
        s = s.reshape(shape)
        z = z.reshape(shape) if z.size > 1 else z
    return (qf - z) * s


def weight(inits: Dict[str, np.ndarray], name: str) -> Tuple[Optional[np.ndarray], bool]:
    """A float tensor by parameter name, dequantised when stored as int8/uint8; (None, False) when absent."""
    if name in inits and inits[name].dtype.kind == "f":
        return inits[name].astype(np.float32), False
    q = inits.get(f"{name}_quantized")
    if q is None:
        return None, False
    scale, zp = inits.get(f"{name}_scale"), inits.get(f"{name}_zero_point")
    if scale is None:
        raise WorkerError("MODEL_INVALID", f"{name}_quantized has no {name}_scale beside it")
    return dequantise(q, scale, zp if zp is not None else np.zeros(1, q.dtype)), True


def _scale_by_stem() -> Dict[int, str]:
    from ..models import DETECT_SCALES  # noqa: PLC0415 - models import torch-heavy modules

    return {int(-(-64 * w // 8) * 8): s for s, (_d, w, _c) in DETECT_SCALES.items()}


def _names(model: Any, nc: int) -> List[str]:
    meta = {p.key: p.value for p in model.metadata_props}
    raw = meta.get("names")
    if raw:
        # metadata is the file's: a forged value nests deep enough to exhaust recursion in either parser
        try:
            v = json.loads(raw)
        except (ValueError, RecursionError):
            try:
                v = ast.literal_eval(raw)  # Ultralytics writes a Python dict repr; literal_eval runs no code
            except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
                v = None
        if isinstance(v, dict) and len(v) == nc:
            return [str(v[k]) for k in sorted(v, key=int)]
        if isinstance(v, list) and len(v) == nc:
            return [str(x) for x in v]
    return [str(i) for i in range(nc)]


def _imgsz(model: Any) -> int:
    try:
        dims = model.graph.input[0].type.tensor_type.shape.dim
        h = int(dims[2].dim_value)
        return h if h > 0 else 640
    except (IndexError, AttributeError):
        return 640


def rebuild(path: str) -> Tuple[torch.nn.Module, Dict[str, Any]]:
    """(our fused YOLOv8 in eval mode with the ONNX weights, meta). MODEL_INVALID when not YOLOv8-shaped."""
    from ..models import build_model  # noqa: PLC0415

    inits, onnx_model = read_initialisers(path)
    stem, _ = weight(inits, "model.0.conv.weight")
    cls = [weight(inits, f"model.22.cv3.0.2.{p}")[0] for p in ("bias", "weight")]
    by_stem = _scale_by_stem()
    if stem is None or stem.ndim != 4 or int(stem.shape[0]) not in by_stem or cls[0] is None:
        raise WorkerError("MODEL_INVALID", f"{NOT_YOLOV8}: {path} has no YOLOv8 parameters by name "
                          "(model.0.conv.weight with 8·k output channels, model.22.cv3.0.2.bias)",
                          where={"file": path}, hint="benchmark it on the ONNX Runtime engines only")
    scale = by_stem[int(stem.shape[0])]
    nc = int(cls[0].shape[0])
    names = _names(onnx_model, nc)
    model = build_model(f"yolov8{scale}", nc=nc, names=names).eval()
    model.fuse()
    own = model.state_dict()
    loaded: Dict[str, torch.Tensor] = {}
    missing, wrong, dequantised = [], [], 0
    for key, ref in own.items():
        if key.endswith("dfl.conv.weight"):
            loaded[key] = ref  # a fixed arange, not a learnt weight: some exporters fold it away
            continue
        w, was_q = weight(inits, key)
        if w is None:
            missing.append(key)
        elif tuple(w.shape) != tuple(ref.shape):
            wrong.append(f"{key} {tuple(w.shape)} vs {tuple(ref.shape)}")
        else:
            loaded[key] = torch.from_numpy(np.ascontiguousarray(w))
            dequantised += int(was_q)
    if missing or wrong:
        detail = "; ".join(([f"{len(missing)} missing ({', '.join(missing[:4])})"] if missing else [])
                           + ([f"{len(wrong)} wrong shape ({'; '.join(wrong[:3])})"] if wrong else []))
        raise WorkerError("MODEL_INVALID", f"{NOT_YOLOV8}: {path} looks like YOLOv8{scale} but {detail}",
                          where={"file": path}, hint="benchmark it on the ONNX Runtime engines only")
    model.load_state_dict(loaded, strict=True)
    for p in model.parameters():
        p.requires_grad_(False)
    meta = {"preset": f"yolov8{scale}", "task": "detect", "nc": nc, "names": names, "imgsz": _imgsz(onnx_model),
            "weights": len(loaded), "dequantised": dequantised, "source": path, "sourceSha256": sha256_file(path)}
    return model, meta


def unfused_state_dict(fused: torch.nn.Module, preset: str, nc: int) -> Dict[str, torch.Tensor]:
    """The state dict of an unfused model whose fuse() returns `fused`'s weights: identity BatchNorms."""
    from ..models import build_model  # noqa: PLC0415
    from ..models.common import Conv  # noqa: PLC0415

    plain = build_model(preset, nc=nc).eval()
    fused_sd = fused.state_dict()
    sd = plain.state_dict()
    convs = {name for name, m in plain.named_modules() if isinstance(m, Conv)}
    for name in convs:
        eps = plain.get_submodule(name).bn.eps
        sd[f"{name}.conv.weight"] = fused_sd[f"{name}.conv.weight"].clone()
        sd[f"{name}.bn.weight"] = torch.ones_like(sd[f"{name}.bn.weight"])
        sd[f"{name}.bn.bias"] = fused_sd[f"{name}.conv.bias"].clone()
        sd[f"{name}.bn.running_mean"] = torch.zeros_like(sd[f"{name}.bn.running_mean"])
        sd[f"{name}.bn.running_var"] = torch.full_like(sd[f"{name}.bn.running_var"], 1.0 - eps)
    # Everything outside Conv blocks (the head's plain 1×1 convs, DFL) has the same name fused or not.
    for k in sd:
        if k.rsplit(".", 2)[0] not in convs and k in fused_sd:
            sd[k] = fused_sd[k].clone()
    return {k: v.detach().cpu() for k, v in sd.items()}


def run(args: Dict[str, Any], emit: Emitter) -> Dict[str, Any]:
    src, out = args.get("onnx"), args.get("out")
    if not isinstance(src, str) or not src:
        raise WorkerError("INVALID_ARGUMENT", "onnx_import needs `onnx` (the ONNX file)", where={"field": "onnx"})
    if not isinstance(out, str) or not out:
        raise WorkerError("INVALID_ARGUMENT", "onnx_import needs `out` (the checkpoint to write)", where={"field": "out"})
    emit.progress("import", 0, 2, f"reading {src}")
    model, meta = rebuild(src)
    emit.progress("import", 1, 2, f"yolov8{meta['preset'][6]} nc={meta['nc']}: writing {out}")
    sd = unfused_state_dict(model, meta["preset"], meta["nc"])
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    torch.save({"format": CHECKPOINT_FORMAT, "preset": meta["preset"], "task": "detect", "nc": meta["nc"],
                "names": meta["names"], "imgsz": meta["imgsz"], "state_dict": sd,
                "metrics": {}, "run": f"onnx-import:{meta['sourceSha256']}", "bnFolded": True}, out)
    emit.progress("import", 2, 2)
    return {**meta, "out": os.path.abspath(out)}
