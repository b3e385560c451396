"""The restricted unpickler refuses code-running pickles before anything runs, and still reads real data."""
import collections
import os
import pickle
import subprocess

import pytest
import torch

from cvopt_trainer.io import safe_load
from cvopt_trainer.protocol import WorkerError


class _Payload:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def _payloads(marker):
    return {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "builtins.eval": _Payload(eval, f"open({str(marker)!r}, 'w').write('x')"),
        "subprocess.call": _Payload(subprocess.call, ["touch", str(marker)]),
        "builtins.exec": _Payload(exec, f"open({str(marker)!r}, 'w').write('x')"),
    }


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "subprocess.call", "builtins.exec"])
@pytest.mark.parametrize("writer", ["torch-zip", "torch-legacy", "pickle"])
def test_code_running_pickles_are_refused_and_nothing_runs(tmp_path, kind, writer):
    marker = tmp_path / "pwned"
    evil = {"model": _Payload.__new__(_Payload), "weights": torch.ones(2)}
    evil["model"] = _payloads(marker)[kind]
    path = tmp_path / ("evil.pkl" if writer == "pickle" else "evil.pt")
    if writer == "pickle":
        with open(path, "wb") as f:
            pickle.dump(evil, f)
    else:
        torch.save(evil, path, _use_new_zipfile_serialization=(writer == "torch-zip"))
    with pytest.raises(WorkerError) as info:
        safe_load(str(path))
    e = info.value
    assert e.code == "UNSAFE_PICKLE"
    assert str(path) in e.message and "which is not a model class" in e.message
    # the refused name is reported (os.system pickles as posix.system)
    assert kind.split(".")[1] in e.message
    assert "trust" in e.hint
    assert not marker.exists()


def test_unknown_module_class_is_refused(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"x": collections.Counter("ab")}, path)
    with pytest.raises(WorkerError) as info:
        safe_load(str(path))
    assert info.value.code == "UNSAFE_PICKLE" and "collections.Counter" in info.value.message


def test_plain_data_loads_in_every_container(tmp_path):
    sd = collections.OrderedDict(w=torch.arange(6, dtype=torch.float32).reshape(2, 3), b=torch.nn.Parameter(torch.ones(3)))
    for name, save in {
        "zip.pt": lambda p: torch.save(sd, p),
        "legacy.pt": lambda p: torch.save(sd, p, _use_new_zipfile_serialization=False),
        "plain.pkl": lambda p: p.write_bytes(pickle.dumps(sd)),
    }.items():
        p = tmp_path / name
        save(p)
        out = safe_load(str(p))
        assert list(out) == ["w", "b"]
        assert torch.equal(out["w"], sd["w"]) and torch.equal(out["b"], sd["b"].detach())


def test_garbage_is_model_invalid(tmp_path):
    p = tmp_path / "junk.pt"
    p.write_bytes(b"not a pickle at all")
    with pytest.raises(WorkerError) as info:
        safe_load(str(p))
    assert info.value.code == "MODEL_INVALID" and str(p) in info.value.message
