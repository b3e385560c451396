"""Hostile model files (issue 13, items 1, 11 and 13): refused with a clear code, nothing run, memory bounded."""
import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch

import hostile
from cvopt_trainer.io import load_model
from cvopt_trainer.protocol import WorkerError

TRAINER = pathlib.Path(__file__).resolve().parents[1]


def _worker(command, args, tmp_path):
    a = tmp_path / "args.json"
    a.write_text(json.dumps(args))
    p = subprocess.run([sys.executable, "-m", "cvopt_trainer", command, "--json-args", str(a)], cwd=TRAINER,
                       capture_output=True, text=True, timeout=300)
    return p.returncode, [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


@pytest.fixture()
def evil_ts(tmp_path):
    target = tmp_path / "written-by-the-model"
    path = tmp_path / "innocent.pt"
    hostile.evil_torchscript(str(path), str(target))
    assert not target.exists()
    return path, target


def test_torchscript_is_refused_in_process_and_nothing_is_written(evil_ts):
    path, target = evil_ts
    with pytest.raises(WorkerError) as info:
        load_model(str(path))
    e = info.value
    assert e.code == "TORCHSCRIPT_UNTRUSTED" and e.where == {"file": str(path)}
    assert "program" in e.message and "never runs it" in e.message and "--trust-torchscript" in e.hint
    assert not target.exists()


@pytest.mark.parametrize("command", ["export", "inspect", "bench"])
def test_torchscript_is_refused_through_the_worker_and_nothing_is_written(evil_ts, tmp_path, command):
    path, target = evil_ts
    out = tmp_path / "model.onnx"
    args = {"export": {"checkpoint": str(path), "out": str(out), "imgsz": 64},
            "inspect": {"path": str(path)},
            "bench": {"model": str(path), "imgsz": 64, "iters": 1}}[command]
    rc, msgs = _worker(command, args, tmp_path)
    assert rc == 1 and msgs[-1]["type"] == "error", msgs
    assert msgs[-1]["code"] == "TORCHSCRIPT_UNTRUSTED" and "--trust-torchscript" in msgs[-1]["hint"]
    assert not target.exists() and not out.exists()


def test_the_trap_is_real_when_trusted(evil_ts):
    """The regression's attack works (so the refusals above prove something): trusted, loading alone writes."""
    path, target = evil_ts
    with pytest.raises(WorkerError) as info:
        load_model(str(path), trust_torchscript=True)
    # it is never run to find its task: its parameters do not name a YOLOv8 head, so it is refused as unknown
    assert info.value.code == "MODEL_INVALID" and "does not run a model" in info.value.message
    assert target.read_bytes() == b"B" * 8  # written by torch.jit.load's __setstate__, not by a forward pass


_MEASURE = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from cvopt_trainer.io import safe_load
from cvopt_trainer.protocol import WorkerError
out = []
for path in sys.argv[2:]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        safe_load(path)
        code, msg = None, ""
    except WorkerError as e:
        code, msg = e.code, e.message
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.append({"path": path, "code": code, "message": msg, "grewKiB": after - before})
print(json.dumps(out))
"""


def test_bombs_and_forged_sizes_are_refused_with_bounded_memory(tmp_path):
    import copyreg

    import numpy as np
    from numpy.core import multiarray

    files = {}

    def add(name, build):
        files[name] = str(tmp_path / name)
        build(files[name])

    add("bomb.pt", hostile.zip_bomb)                                           # consistent: 256 MiB declared
    add("lying.pt", lambda p: hostile.zip_bomb(p, declared_numel=16))          # says 64 bytes, inflates to 256 MiB
    add("legacy.pt", hostile.legacy_bomb)                                      # 4 GiB declared, nothing behind it
    add("storage.pkl", lambda p: hostile.pickle_calling(p, torch.FloatStorage, 1 << 30))
    add("bytearray.pkl", lambda p: hostile.pickle_calling(p, bytearray, 1 << 31))
    add("ndarray.pkl", lambda p: hostile.pickle_calling(p, multiarray._reconstruct, np.ndarray, (1 << 31,), b"b"))
    add("reconstructor.pkl", lambda p: hostile.pickle_calling(p, copyreg._reconstructor, bytearray, bytearray, 1 << 31))
    # a memo index with a high bit set: CPython's C unpickler sizes (and zeroes) its memo table by it, 2.5 GiB here
    add("memo.pkl", lambda p: pathlib.Path(p).write_bytes(b"\x80\x02N" + b"r" + (0x0A000000).to_bytes(4, "little") + b"."))
    assert os.path.getsize(files["bomb.pt"]) < 1 << 20  # a real bomb: under 1 MiB on disk
    p = subprocess.run([sys.executable, "-c", _MEASURE, str(TRAINER), *files.values()], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    results = {pathlib.Path(r["path"]).name: r for r in json.loads(p.stdout)}
    for name, r in results.items():
        expected = {"reconstructor.pkl": "UNSAFE_PICKLE", "memo.pkl": None}.get(name, "MODEL_INVALID")
        assert r["code"] == expected, r
        # each refusal happens on the declared size: at most a few MiB of bookkeeping, never the payload
        assert r["grewKiB"] < 32 * 1024, r
    assert "decompression bomb or a forged size" in results["bomb.pt"]["message"]
    assert "holds 268435456 bytes but its tensor needs 64" in results["lying.pt"]["message"]


def test_a_real_checkpoint_still_loads_under_the_budget(tmp_path):
    from cvopt_trainer.io import safe_load

    sd = {"a": torch.rand(300, 300), "b": torch.arange(10)}
    for zip_format in (True, False):
        path = tmp_path / f"ok-{zip_format}.pt"
        torch.save(sd, path, _use_new_zipfile_serialization=zip_format)
        got = safe_load(str(path))
        assert all(torch.equal(got[k], sd[k]) for k in sd)


def test_a_model_path_that_is_a_fifo_or_device_is_refused_without_reading(tmp_path):
    os.mkfifo(tmp_path / "model.pt")
    for path in (str(tmp_path / "model.pt"), "/dev/zero"):
        with pytest.raises(WorkerError) as info:
            load_model(path)
        assert info.value.code == "MODEL_INVALID" and "not a regular file" in info.value.message
