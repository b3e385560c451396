"""A restricted unpickler: checkpoints are data, so only data-building globals may be named in them.

A pickle can name any importable callable and call it while loading (that is how `os.system` payloads work).
`find_class` is the one place where pickle turns a name into a callable, so it is the one place we guard:
tensor/storage rebuilders, containers and numpy scalars resolve to the real thing; known model classes
(Ultralytics' and torch.nn's) resolve to inert stand-ins that only collect their state; every other name is
refused with UNSAFE_PICKLE before anything runs.
"""
from __future__ import annotations

import _compat_pickle
import collections
import io
import pathlib
import pickle
import struct
import types
import zipfile
from typing import Any, Dict, Tuple

import torch

from ..protocol import WorkerError

# Ultralytics classes a YOLOv8 checkpoint is made of (any ultralytics.nn.* module path, old or new layouts).
ULTRALYTICS_CLASSES = frozenset({
    "DetectionModel", "ClassificationModel", "BaseModel", "Conv", "C2f", "Bottleneck", "SPPF", "Detect", "DFL",
    "Classify", "Concat",
})
# Non-module helpers Ultralytics may store beside or inside the model (training arguments, a loss object left on
# the model after training). As stand-ins they are inert data like the rest.
ULTRALYTICS_DATA_CLASSES = frozenset({"IterableSimpleNamespace", "v8DetectionLoss", "v8ClassificationLoss", "BboxLoss",
                                      "DFLoss", "TaskAlignedAssigner"})
# Real Ultralytics model classes cvopt does not build: refused as unsupported, not as unsafe.
ULTRALYTICS_UNSUPPORTED = frozenset({"SegmentationModel", "PoseModel", "OBBModel", "RTDETRDetectionModel",
                                     "WorldModel", "Segment", "Pose", "OBB", "RTDETRDecoder", "Proto", "C3", "C2",
                                     "SPP", "Focus", "GhostConv", "RepConv"})

LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C

UNSAFE_HINT = "only load checkpoints from sources you trust; convert it to ONNX or a state dict on a trusted machine"


class Stub:
    """An inert stand-in for a model class: it never runs the class's code, it only keeps what was pickled."""

    _cvopt_qualname = "Stub"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_cvopt_args"] = args
        self.__dict__.update(kwargs)

    def __setstate__(self, state: Any) -> None:
        # pickle passes either the instance dict or (dict, slots-dict)
        if isinstance(state, tuple) and len(state) == 2:
            for part in state:
                if isinstance(part, dict):
                    self.__dict__.update(part)
        elif isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_cvopt_state"] = state

    def __repr__(self) -> str:
        return f"<stub {self._cvopt_qualname}>"


_stub_cache: Dict[Tuple[str, str], type] = {}


def stub_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _stub_cache:
        _stub_cache[key] = type(name, (Stub,), {"__module__": "cvopt_stub." + module, "_cvopt_qualname": f"{module}.{name}"})
    return _stub_cache[key]


def _storage_from_bytes(b: bytes) -> Any:
    # torch.storage._load_from_bytes would run an unrestricted torch.load on the nested bytes.
    return _load_stream(io.BytesIO(b), "<nested storage>")


def _safe_globals() -> Dict[Tuple[str, str], Any]:
    g: Dict[Tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("builtins", "complex"): complex,
        ("builtins", "bytearray"): bytearray,
        ("builtins", "object"): object,
        ("copyreg", "_reconstructor"): __import__("copyreg")._reconstructor,
        ("types", "SimpleNamespace"): types.SimpleNamespace,
        ("argparse", "Namespace"): types.SimpleNamespace,
        ("pathlib", "PosixPath"): pathlib.PurePosixPath,
        ("pathlib", "PurePosixPath"): pathlib.PurePosixPath,
        ("pathlib", "WindowsPath"): pathlib.PureWindowsPath,
        ("pathlib", "PureWindowsPath"): pathlib.PureWindowsPath,
    }
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state",
                 "_rebuild_qtensor", "_rebuild_device_tensor_from_numpy"):
        fn = getattr(torch._utils, name, None)
        if fn is not None:
            g[("torch._utils", name)] = fn
    fn = getattr(getattr(torch, "_tensor", None), "_rebuild_from_type_v2", None)
    if fn is not None:
        g[("torch._tensor", "_rebuild_from_type_v2")] = fn
    try:
        import numpy as np
        try:  # numpy >= 2 moved it (numpy.core still answers, with a DeprecationWarning)
            from numpy._core import multiarray
        except ImportError:
            from numpy.core import multiarray
        for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
            g[(mod, "scalar")] = multiarray.scalar
            g[(mod, "_reconstruct")] = multiarray._reconstruct
        g[("numpy", "ndarray")] = np.ndarray
        g[("numpy", "dtype")] = np.dtype
        for mod in ("numpy", "numpy.dtypes"):
            for dt in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType"):
                if hasattr(np, "dtypes") and hasattr(np.dtypes, dt):
                    g[(mod, dt)] = getattr(np.dtypes, dt)
    except ImportError:  # numpy is optional for loading
        pass
    return g


SAFE_GLOBALS = _safe_globals()


def _torch_attr(name: str) -> Any:
    """dtypes and storage classes named as `torch.<name>`; None for anything else under `torch`."""
    value = getattr(torch, name, None)
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, type) and name.endswith("Storage"):
        return value
    return None


def resolve_global(module: str, name: str) -> Any:
    """The object a pickle may get for `module.name`, or UNSAFE_PICKLE. Exposed for tests and inspect."""
    if (module, name) in SAFE_GLOBALS:
        return SAFE_GLOBALS[(module, name)]
    if module == "torch":
        value = _torch_attr(name)
        if value is not None:
            return value
    if module.startswith("ultralytics.") and (
        (module.startswith("ultralytics.nn") and name in ULTRALYTICS_CLASSES) or name in ULTRALYTICS_DATA_CLASSES
    ):
        return stub_class(module, name)
    if module.startswith("ultralytics.") and name in ULTRALYTICS_UNSUPPORTED:
        raise UnsupportedModelClass(module, name)
    if module.startswith("torch.nn.modules."):
        cls = getattr(torch.nn, name, None)
        if isinstance(cls, type) and issubclass(cls, torch.nn.Module):
            return stub_class(module, name)
    raise UnsafePickleName(module, name)


class UnsafePickleName(Exception):
    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.qualname = f"{module}.{name}"


class UnsupportedModelClass(Exception):
    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.qualname = f"{module}.{name}"


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle's hook
        # Protocol 2 (torch.save's default) names Python 2 modules: map them as pickle itself would. The names
        # mapped from do not exist in Python 3, so mapping regardless of protocol changes nothing else.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        return resolve_global(module, name)


def _restricted_load(f: Any, **kwargs: Any) -> Any:
    return RestrictedUnpickler(f, **kwargs).load()


def refuse(path: str, qualname: str) -> WorkerError:
    return WorkerError(
        "UNSAFE_PICKLE",
        f"refused to load {path}: it references {qualname}, which is not a model class",
        hint=UNSAFE_HINT,
        where={"file": path},
    )


def _dtype_of(storage_type: Any) -> torch.dtype:
    dtype = getattr(storage_type, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return dtype
    return torch.uint8  # UntypedStorage: raw bytes


def _storage(raw: bytes, dtype: torch.dtype) -> Any:
    if not raw:
        return torch.empty(0, dtype=dtype).storage()
    return torch.frombuffer(bytearray(raw), dtype=dtype).storage()


def _load_zip(f: Any) -> Any:
    """torch.save's zip format, read by hand: torch 1.13's torch.load ignores pickle_module (it resets it to
    pickle unless weights_only), so it cannot be trusted to use a restricted unpickler."""
    with zipfile.ZipFile(f) as z:
        names = z.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") and n.count("/") == 1), None)
        if pkl is None:
            raise ValueError("zip archive without <name>/data.pkl")
        prefix = pkl[: -len("data.pkl")]
        loaded: Dict[str, Any] = {}

        def persistent_load(pid: Any) -> Any:
            if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage")):
                raise ValueError(f"unknown persistent id {pid!r:.80}")
            _, storage_type, key, _location, _numel = pid[:5]
            key = str(key)
            if key not in loaded:
                loaded[key] = _storage(z.read(prefix + "data/" + key), _dtype_of(storage_type))
            return loaded[key]

        up = RestrictedUnpickler(io.BytesIO(z.read(pkl)), encoding="utf-8")
        up.persistent_load = persistent_load  # type: ignore[assignment]
        return up.load()


def _load_legacy(f: Any) -> Any:
    """torch.save's pre-1.6 format: magic, protocol, sys info, the object pickle, storage keys, raw storages."""
    proto = _restricted_load(f, encoding="utf-8")
    _sysinfo = _restricted_load(f, encoding="utf-8")
    del proto, _sysinfo
    tensors: Dict[str, Any] = {}

    def persistent_load(pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] in ("storage", b"storage")):
            raise ValueError(f"unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel, view = pid
        if view is not None:
            raise ValueError("storage views from torch < 1.0 are not supported; re-save the file with a newer torch")
        if key not in tensors:
            tensors[key] = torch.zeros(int(numel), dtype=_dtype_of(storage_type))
        return tensors[key].storage()

    up = RestrictedUnpickler(f, encoding="utf-8")
    up.persistent_load = persistent_load  # type: ignore[assignment]
    result = up.load()
    keys = _restricted_load(f, encoding="utf-8")
    for key in keys:
        t = tensors[key]
        (n,) = struct.unpack("<q", f.read(8))
        raw = f.read(n * t.element_size())
        if n:
            t.copy_(torch.frombuffer(bytearray(raw), dtype=t.dtype))
    return result


def _load_stream(f: Any, name: str) -> Any:
    start = f.tell()
    if zipfile.is_zipfile(f):
        f.seek(start)
        return _load_zip(f)
    f.seek(start)
    first = _restricted_load(f, encoding="utf-8")
    if isinstance(first, int) and first == LEGACY_TORCH_MAGIC:
        return _load_legacy(f)
    return first


def safe_load(path: str) -> Any:
    """Load a torch.save file (zip or legacy) or a plain pickle through the restricted unpickler."""
    try:
        with open(path, "rb") as f:
            return _load_stream(f, path)
    except UnsafePickleName as e:
        raise refuse(path, e.qualname) from None
    except UnsupportedModelClass as e:
        raise WorkerError("MODEL_INVALID", f"{path} holds an Ultralytics model with {e.qualname}, which cvopt does not build "
                          "(YOLOv8 detect and classify only)",
                          hint="export it to ONNX with Ultralytics and pass the ONNX file, or train a cvopt preset",
                          where={"file": path}) from None
    except WorkerError:
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, struct.error, zipfile.BadZipFile) as e:
        raise WorkerError("MODEL_INVALID", f"{path} is not a readable PyTorch checkpoint or pickle: {e}",
                          hint="pass a .pt/.pkl written by torch.save, a TorchScript archive, or an ONNX file",
                          where={"file": path}) from None
