"""`bench`: the PyTorch engine. Latency per batch size, and raw outputs for given inputs so the TypeScript side
decodes them with the same postprocessing as every other engine.

args: {checkpoint | model, device: cpu|cuda, half (FP16 weights and inputs; cuda only), imgsz, batch_sizes: [1, …], warmup, iters | min_time_s,
       inputs: path of N×3×H×W float32 .bin, outputs: path for the raw outputs (default <inputs>.out.bin),
       threads, nc, preset, weights}
result: {device, threads, torch, imgsz, runs: [{batch, latenciesMs}], outputs?: {file, shape}}
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, List

import numpy as np
import torch

from .io import load_model
from .protocol import Emitter, WorkerError

PREDICT_CHUNK = 8


def _positive_int(args: Dict[str, Any], key: str, default: int) -> int:
    v = args.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise WorkerError("INVALID_ARGUMENT", f"{key} must be a non-negative integer, got {v!r}", where={"field": key})
    return v


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(args: Dict[str, Any], emit: Emitter) -> Dict[str, Any]:
    source = args.get("checkpoint") or args.get("model")
    if not isinstance(source, str) or not source:
        raise WorkerError("INVALID_ARGUMENT", "bench needs `checkpoint` (a model file or preset)", where={"field": "checkpoint"})
    dev_name = args.get("device", "cpu")
    if dev_name not in ("cpu", "cuda"):
        raise WorkerError("INVALID_ARGUMENT", f"device must be cpu or cuda, got {dev_name!r}", where={"field": "device"})
    if dev_name == "cuda" and not torch.cuda.is_available():
        raise WorkerError("ENGINE_UNAVAILABLE", f"PyTorch {torch.__version__} here has no usable CUDA device",
                          hint="install a CUDA build of PyTorch, or benchmark with device cpu")
    device = torch.device(dev_name)
    half = bool(args.get("half", False))
    if half and dev_name != "cuda":
        raise WorkerError("INVALID_ARGUMENT", "half (FP16) needs device cuda: CPU kernels for FP16 convolutions are slow or missing",
                          where={"field": "half"}, hint="drop half, or benchmark on a CUDA device")
    dtype = torch.float16 if half else torch.float32
    threads = _positive_int(args, "threads", 0)
    if threads:
        torch.set_num_threads(threads)
    batch_sizes = args.get("batch_sizes") or [1]
    if not all(isinstance(b, int) and b > 0 for b in batch_sizes):
        raise WorkerError("INVALID_ARGUMENT", f"batch_sizes must be positive integers, got {batch_sizes!r}", where={"field": "batch_sizes"})
    warmup = _positive_int(args, "warmup", 3)
    iters = _positive_int(args, "iters", 20)
    min_time_s = float(args.get("min_time_s") or 0)

    model, meta = load_model(source, nc=args.get("nc"), preset=args.get("preset"), weights=args.get("weights"),
                             trust_torchscript=args.get("trust_torchscript") is True)
    imgsz = int(args.get("imgsz") or meta.get("imgsz") or 640)
    if hasattr(model, "fuse") and not isinstance(model, torch.jit.ScriptModule):
        model.fuse()  # the same folded graph the ONNX engines run
    model = model.to(device=device, dtype=dtype).eval()

    runs: List[Dict[str, Any]] = []
    total = len(batch_sizes)
    with torch.inference_mode():
        for bi, b in enumerate(batch_sizes):
            emit.progress("bench", bi, total, f"pytorch-{dev_name} batch {b}")
            x = torch.rand(b, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(b)).to(device=device, dtype=dtype)
            for _ in range(warmup):
                model(x)
            _sync(device)
            times: List[float] = []
            started = time.perf_counter()
            while len(times) < iters or (time.perf_counter() - started) < min_time_s:
                t0 = time.perf_counter()
                model(x)
                _sync(device)
                times.append((time.perf_counter() - t0) * 1000.0)
                if iters == 0 and min_time_s <= 0:
                    break
            runs.append({"batch": b, "latenciesMs": times})
        emit.progress("bench", total, total, "latency done")

        result: Dict[str, Any] = {"device": dev_name, "precision": "fp16" if half else "fp32", "threads": torch.get_num_threads(), "torch": torch.__version__,
                                  "imgsz": imgsz, "task": meta["task"], "nc": meta["nc"], "runs": runs}
        inputs = args.get("inputs")
        if inputs:
            if not os.path.isfile(inputs):
                raise WorkerError("NOT_FOUND", f"inputs file {inputs} does not exist", where={"field": "inputs"})
            flat = np.fromfile(inputs, dtype="<f4")
            per = 3 * imgsz * imgsz
            if flat.size == 0 or flat.size % per:
                raise WorkerError("TENSOR_SHAPE", f"{inputs} holds {flat.size} floats, not a whole number of 3×{imgsz}×{imgsz} images",
                                  where={"file": inputs}, hint="write N×3×H×W float32 little-endian at the model's imgsz")
            batch = torch.from_numpy(flat.reshape(-1, 3, imgsz, imgsz))
            outs = [model(batch[i:i + PREDICT_CHUNK].to(device=device, dtype=dtype)).float().cpu().numpy()
                    for i in range(0, batch.shape[0], PREDICT_CHUNK)]
            y = np.concatenate(outs, 0)
            out_path = args.get("outputs") or f"{inputs}.out.bin"
            np.ascontiguousarray(y, dtype="<f4").tofile(out_path)
            result["outputs"] = {"file": os.path.abspath(out_path), "shape": list(y.shape)}
    return result
