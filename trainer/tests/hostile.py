"""Hostile model files, built at test time: the attacks the loader must refuse with nothing run or filled.

Also a command line, so the TypeScript tests build the same files:
    python3 tests/hostile.py torchscript OUT.pt TARGET   # a TorchScript file that writes TARGET when loaded or run
    python3 tests/hostile.py zip-bomb OUT.pt             # a small .pt whose one storage inflates to 256 MiB
"""
from __future__ import annotations

import io
import pickle
import struct
import sys
import zipfile
from typing import Any, Tuple

import torch

BOMB_BYTES = 256 << 20


class _Trap(torch.nn.Module):
    """Writes `path` (creating it) when torch.jit.load restores it and again each time it runs."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The result feeds the output: TorchScript would drop an unused from_file as dead code.
        t = torch.from_file(self.path, shared=True, size=8, dtype=torch.uint8)
        return x + t.fill_(65).sum() * 0

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, bool]:
        return (self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, bool]) -> None:
        self.path = state[0]
        self.training = state[1]
        t = torch.from_file(self.path, shared=True, size=8, dtype=torch.uint8)
        self.seen = int(t.fill_(66).sum())


class _Evil(torch.nn.Module):
    """Looks like a tiny classifier; its only job is the trap."""

    def __init__(self, path: str):
        super().__init__()
        self.trap = _Trap(path)
        self.linear = torch.nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.trap(x).mean((2, 3)))


def evil_torchscript(out: str, target: str) -> None:
    # Saving does not trigger the trap (only __getstate__ runs); torch.jit.load and forward do.
    torch.jit.script(_Evil(target)).save(out)


def _pickle_with_storage(numel: int, key: str = "0") -> bytes:
    """data.pkl of torch.save({'w': float tensor over storage `key` of `numel` elements}), written by hand."""

    class _StorageRef:
        pass

    ref = _StorageRef()

    class P(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if obj is ref:
                return ("storage", torch.FloatStorage, key, "cpu", numel)
            return None

    class _Tensor:
        def __reduce__(self) -> Any:
            import collections

            return (torch._utils._rebuild_tensor_v2, (ref, 0, (numel,), (1,), False, collections.OrderedDict()))

    buf = io.BytesIO()
    P(buf, protocol=2).dump({"w": _Tensor()})
    return buf.getvalue()


def zip_bomb(out: str, nbytes: int = BOMB_BYTES, declared_numel: int = -1) -> None:
    """torch.save's zip layout with one deflated storage of `nbytes` zeros (~1000:1). declared_numel < 0: the pickle
    declares the true element count (a consistent bomb); otherwise it declares that count (a lying one)."""
    numel = nbytes // 4 if declared_numel < 0 else declared_numel
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("archive/data.pkl", _pickle_with_storage(numel))
        with z.open("archive/data/0", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(nbytes >> 20):
                f.write(chunk)
        z.writestr("archive/version", "3\n")


def legacy_bomb(out: str, numel: int = 1 << 30) -> None:
    """torch.save's pre-1.6 format declaring a storage of `numel` floats that the file does not hold."""
    from cvopt_trainer.io.unpickle import LEGACY_TORCH_MAGIC

    with open(out, "wb") as f:
        for head in (LEGACY_TORCH_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(head, f, protocol=2)
        f.write(_pickle_with_storage(numel, key="k"))
        pickle.dump(["k"], f, protocol=2)
        f.write(struct.pack("<q", numel))


def pickle_calling(out: str, fn: Any, *args: Any) -> None:
    """A plain pickle whose only content is fn(*args)."""

    class _Call:
        def __reduce__(self) -> Any:
            return (fn, args)

    with open(out, "wb") as f:
        pickle.dump({"x": _Call()}, f, protocol=4)


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "torchscript":
        evil_torchscript(sys.argv[2], sys.argv[3])
    elif kind == "zip-bomb":
        zip_bomb(sys.argv[2])
    else:
        raise SystemExit(f"unknown kind {kind}")
