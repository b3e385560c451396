"""bench (the PyTorch engine) and inspect entry points."""
import io

import numpy as np
import pytest
import torch

from cvopt_trainer import bench
from cvopt_trainer import inspect_model as inspect
from cvopt_trainer.io import load_model
from cvopt_trainer.protocol import Emitter, WorkerError


def test_bench_latencies_and_raw_outputs(tiny_checkpoint, tmp_path):
    ckpt, _ = tiny_checkpoint
    x = np.random.default_rng(0).random((3, 3, 64, 64), dtype=np.float32)
    x.astype("<f4").tofile(tmp_path / "in.bin")
    r = bench.run({"checkpoint": str(ckpt), "batch_sizes": [1, 2], "warmup": 1, "iters": 3, "threads": 1,
                   "inputs": str(tmp_path / "in.bin")}, Emitter(io.StringIO()))
    assert [run["batch"] for run in r["runs"]] == [1, 2]
    assert all(len(run["latenciesMs"]) == 3 and all(t > 0 for t in run["latenciesMs"]) for run in r["runs"])
    assert r["threads"] == 1 and r["device"] == "cpu" and r["imgsz"] == 64
    assert r["outputs"]["shape"] == [3, 6, 84]
    y = np.fromfile(r["outputs"]["file"], "<f4").reshape(3, 6, 84)
    model, _ = load_model(str(ckpt))
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.abs(y - ref).max() < 1e-4  # the fused model the bench runs agrees with the unfused one


def test_bench_rejects_misshaped_inputs_and_missing_cuda(tiny_checkpoint, tmp_path):
    ckpt, _ = tiny_checkpoint
    np.zeros(100, "<f4").tofile(tmp_path / "bad.bin")
    with pytest.raises(WorkerError) as info:
        bench.run({"checkpoint": str(ckpt), "iters": 1, "warmup": 0, "inputs": str(tmp_path / "bad.bin")}, Emitter(io.StringIO()))
    assert info.value.code == "TENSOR_SHAPE"
    with pytest.raises(WorkerError) as info:
        bench.run({"checkpoint": str(ckpt), "half": True}, Emitter(io.StringIO()))
    assert info.value.code == "INVALID_ARGUMENT" and info.value.where == {"field": "half"}
    if not torch.cuda.is_available():
        with pytest.raises(WorkerError) as info:
            bench.run({"checkpoint": str(ckpt), "device": "cuda"}, Emitter(io.StringIO()))
        assert info.value.code == "ENGINE_UNAVAILABLE"


def test_inspect_checkpoint(tiny_checkpoint):
    ckpt, model = tiny_checkpoint
    r = inspect.run({"path": str(ckpt)}, Emitter(io.StringIO()))
    assert (r["format"], r["preset"], r["task"], r["nc"], r["names"], r["imgsz"], r["epoch"]) == (
        "cvopt-checkpoint", "yolov8p", "detect", 2, ["a", "b"], 64, 3)
    assert r["params"] == sum(p.numel() for p in model.parameters())
