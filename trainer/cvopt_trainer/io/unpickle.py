"""A restricted unpickler: checkpoints are data, so only data-building globals may be named in them.

A pickle can name any importable callable and call it while loading (that is how `os.system` payloads work).
`find_class` is the one place where pickle turns a name into a callable, so it is the one place we guard:
tensor/storage rebuilders, containers and numpy scalars resolve to the real thing; known model classes
(Ultralytics' and torch.nn's) resolve to inert stand-ins that only collect their state; every other name is
refused with UNSAFE_PICKLE before anything runs.

Data can be hostile without naming code: a zip entry that inflates to gigabytes, a storage or array whose
declared size is huge. Every byte the loader materialises is charged to one budget per file (LoadBudget) before
it is allocated, so a bomb is refused with MODEL_INVALID after reading its headers, not after filling memory.
"""
from __future__ import annotations

import _compat_pickle
import collections
import contextlib
import contextvars
import io
import os
import pathlib
import pickle
import stat
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

# Limits of what one file may make the loader allocate (documented in SECURITY.md and the README).
# torch.save stores tensors uncompressed, so a real checkpoint needs about its own size; a bomb needs far more.
MAX_BYTES_ENV = "CVOPT_CHECKPOINT_MAX_BYTES"
DEFAULT_MAX_BYTES = 16 << 30  # hard cap, whatever the file's size
EXPANSION = 4  # bytes materialised per byte of file …
SLACK = 64 << 20  # … plus this, for small files with compressed entries or legitimately empty-then-filled storages

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


class BudgetExceeded(Exception):
    def __init__(self, what: str, nbytes: int, left: int):
        super().__init__(f"{what} would take {nbytes} bytes, more than the {left} bytes left")
        self.what, self.nbytes, self.left = what, nbytes, left


class LoadBudget:
    """Bytes one load may still materialise. Charged before every allocation whose size the file declares."""

    def __init__(self, limit: int):
        self.limit = limit
        self.left = limit

    @classmethod
    def for_file(cls, size: int) -> "LoadBudget":
        cap = int(os.environ.get(MAX_BYTES_ENV) or DEFAULT_MAX_BYTES)
        return cls(min(cap, EXPANSION * size + SLACK))

    def charge(self, nbytes: int, what: str) -> None:
        if nbytes < 0 or nbytes > self.left:
            raise BudgetExceeded(what, nbytes, self.left)
        self.left -= nbytes


_budget: "contextvars.ContextVar[LoadBudget]" = contextvars.ContextVar("cvopt_load_budget")


def _charge(nbytes: int, what: str) -> None:
    budget = _budget.get(None)
    if budget is None:  # a resolved global called outside safe_load: each call gets the small-file allowance
        budget = LoadBudget(SLACK)
    budget.charge(nbytes, what)


@contextlib.contextmanager
def _budget_scope(budget: LoadBudget) -> Any:
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def _numel(shape: Any) -> int:
    if isinstance(shape, int):
        shape = (shape,)
    n = 1
    for d in shape:
        d = int(d)
        if d < 0:
            raise ValueError(f"negative dimension {d}")
        n *= d
    return n


def _bounded_bytearray(*args: Any) -> bytearray:
    """bytearray(n) allocates n bytes: charge integer sizes; bytes/lists come from the file and are already paid."""
    if args and isinstance(args[0], int):
        _charge(int(args[0]), "bytearray")
    return bytearray(*args)


class _StorageType:
    """`torch.<X>Storage` as a pickle may name it: a dtype marker for persistent ids. Calling it (a pickle asking
    for a storage of N elements) is charged to the budget before anything is allocated."""

    def __init__(self, cls: type):
        self.cls = cls
        self.__name__ = cls.__name__
        dtype = getattr(cls, "dtype", None)
        self.dtype = dtype if isinstance(dtype, torch.dtype) else torch.uint8

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], int):
            _charge(int(args[0]) * _elsize(self.dtype), f"torch.{self.__name__}({args[0]})")
        elif args and isinstance(args[0], (list, tuple)):
            _charge(len(args[0]) * _elsize(self.dtype), f"torch.{self.__name__}(sequence)")
        elif args or kwargs:
            raise ValueError(f"torch.{self.__name__} called with unsupported arguments")
        return self.cls(*args)


_storage_types: Dict[str, _StorageType] = {}


def _elsize(dtype: torch.dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size()


def _bounded_rebuild_qtensor(storage: Any, storage_offset: int, size: Any, stride: Any, quantizer_params: Any,
                             *rest: Any) -> Any:
    # torch allocates `size` before pointing it at the storage: charge it first.
    _charge(_numel(size), "quantized tensor")
    return torch._utils._rebuild_qtensor(storage, storage_offset, size, stride, quantizer_params, *rest)


def _bounded_np_reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
    from numpy.core import multiarray

    _charge(_numel(shape) * max(1, int(getattr(__import__("numpy").dtype(dtype), "itemsize", 1))), "numpy array")
    return multiarray._reconstruct(subtype, shape, dtype)


def _object_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """copyreg._reconstructor for plain objects only: with another base it calls that base's constructor with a
    value from the file (bytearray(10**12), a storage of any size)."""
    if base is not object:
        raise UnsafePickleName("copyreg", f"_reconstructor with base {getattr(base, '__name__', base)!r}")
    return __import__("copyreg")._reconstructor(cls, base, state)


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
        ("builtins", "bytearray"): _bounded_bytearray,
        ("builtins", "object"): object,
        ("copyreg", "_reconstructor"): _object_reconstructor,
        ("types", "SimpleNamespace"): types.SimpleNamespace,
        ("argparse", "Namespace"): types.SimpleNamespace,
        ("pathlib", "PosixPath"): pathlib.PurePosixPath,
        ("pathlib", "PurePosixPath"): pathlib.PurePosixPath,
        ("pathlib", "WindowsPath"): pathlib.PureWindowsPath,
        ("pathlib", "PureWindowsPath"): pathlib.PureWindowsPath,
    }
    # these only view storages the loader already charged for (the qtensor one allocates, so it is wrapped)
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state",
                 "_rebuild_device_tensor_from_numpy"):
        fn = getattr(torch._utils, name, None)
        if fn is not None:
            g[("torch._utils", name)] = fn
    if hasattr(torch._utils, "_rebuild_qtensor"):
        g[("torch._utils", "_rebuild_qtensor")] = _bounded_rebuild_qtensor
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
            g[(mod, "_reconstruct")] = _bounded_np_reconstruct
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
        if name not in _storage_types:
            _storage_types[name] = _StorageType(value)
        return _storage_types[name]
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


class RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """The pure-Python unpickler, on purpose: CPython's C one sizes its memo table by the largest index a PUT
    names, so one forged LONG_BINPUT index (a flipped bit) makes it allocate and zero gigabytes; this one keeps
    the memo in a dict. Checkpoint pickles are small (tensor bytes live outside them), so the speed is moot."""

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


# data.pkl is read whole; past this it is not a checkpoint's object tree (a few MB for the largest YOLO models).
MAX_PICKLE_BYTES = 256 << 20


def _read_entry(z: zipfile.ZipFile, name: str, expected: int, what: str) -> bytearray:
    """An entry's bytes, after checking its declared size against what the pickle says it holds and the budget.
    Read straight into one buffer: no second copy, and never more than the declared size (zipfile stops there)."""
    try:
        info = z.getinfo(name)
    except KeyError:
        raise ValueError(f"{what}: entry {name} is missing") from None
    if expected >= 0 and info.file_size != expected:
        raise ValueError(f"{what}: entry {name} holds {info.file_size} bytes but its tensor needs {expected}")
    _charge(info.file_size, f"{what} ({name})")
    buf = bytearray(info.file_size)
    view = memoryview(buf)
    got = 0
    with z.open(info) as fh:
        while got < len(buf):
            n = fh.readinto(view[got:])
            if not n:
                raise ValueError(f"{what}: entry {name} ends after {got} of {len(buf)} bytes")
            got += n
    return buf


def _storage(raw: bytearray, dtype: torch.dtype) -> Any:
    if not raw:
        return torch.empty(0, dtype=dtype).storage()
    return torch.frombuffer(raw, dtype=dtype).storage()


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
            _, storage_type, key, _location, numel = pid[:5]
            key = str(key)
            if key not in loaded:
                dtype = _dtype_of(storage_type)
                if not isinstance(numel, int) or numel < 0:
                    raise ValueError(f"storage {key}: element count {numel!r:.40} is not a count")
                raw = _read_entry(z, prefix + "data/" + key, numel * _elsize(dtype), f"storage {key}")
                loaded[key] = _storage(raw, dtype)
            return loaded[key]

        if z.getinfo(pkl).file_size > MAX_PICKLE_BYTES:
            raise ValueError(f"{pkl} declares {z.getinfo(pkl).file_size} bytes, more than a checkpoint's object tree "
                             f"({MAX_PICKLE_BYTES})")
        up = RestrictedUnpickler(io.BytesIO(_read_entry(z, pkl, -1, "object tree")), encoding="utf-8")
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
            dtype = _dtype_of(storage_type)
            # the raw bytes follow in this same file: more than the budget cannot be real
            _charge(int(numel) * _elsize(dtype), f"legacy storage {key}")
            tensors[key] = torch.zeros(int(numel), dtype=dtype)
        return tensors[key].storage()

    up = RestrictedUnpickler(f, encoding="utf-8")
    up.persistent_load = persistent_load  # type: ignore[assignment]
    result = up.load()
    keys = _restricted_load(f, encoding="utf-8")
    for key in keys:
        t = tensors[key]
        (n,) = struct.unpack("<q", f.read(8))
        if n != t.numel():
            raise ValueError(f"legacy storage {key}: {n} elements written, {t.numel()} declared")
        raw = bytearray(f.read(n * t.element_size()))
        if len(raw) != n * t.element_size():
            raise ValueError(f"legacy storage {key}: the file ends inside its data")
        if n:
            t.copy_(torch.frombuffer(raw, dtype=t.dtype))
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
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise WorkerError("MODEL_INVALID", f"{path} is not a regular file", where={"file": path},
                                  hint="pass the checkpoint file itself, not a device, pipe or folder")
            with _budget_scope(LoadBudget.for_file(os.fstat(f.fileno()).st_size)):
                return _load_stream(f, path)
    except BudgetExceeded as e:
        raise WorkerError("MODEL_INVALID", f"refused to load {path}: {e.what} would take {e.nbytes} bytes; a file of "
                          f"its size may unpack to at most {EXPANSION}x its size plus {SLACK >> 20} MiB (capped at "
                          f"{MAX_BYTES_ENV}), so this is a decompression bomb or a forged size",
                          hint=f"if the checkpoint is genuine, raise {MAX_BYTES_ENV} or re-save it with torch.save",
                          where={"file": path}) from None
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
            IndexError, OverflowError, MemoryError, RecursionError, struct.error, zipfile.BadZipFile,
            zipfile.LargeZipFile, NotImplementedError, UnicodeDecodeError, OSError) as e:
        raise WorkerError("MODEL_INVALID", f"{path} is not a readable PyTorch checkpoint or pickle: {e}",
                          hint="pass a .pt/.pkl written by torch.save, a TorchScript archive, or an ONNX file",
                          where={"file": path}) from None
