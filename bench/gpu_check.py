"""The Python worker on a CUDA build of PyTorch: what a machine without a GPU cannot show.

Usage (from the repository root; DATA is a folder holding coco128-val/ (the vram section's images)):
    python3 bench/gpu_check.py --data DATA [--out DIR] [--epochs 20] [--batch 16] [--iters 100] [--vram-mb 16384]
        [--only latency,train,export,classify,vram] [--dry-run (CPU, tiny settings: checks this script)]

Sections, each reported even when another fails:
  env      torch / CUDA / GPU / ONNX Runtime providers / TensorRT presence
  latency  the PyTorch engine (cvopt_trainer.bench, the code `cvopt bench --pytorch-device cuda` runs): YOLOv8 n..x
           at 640 and yolov8n-cls at 224, batch 1 and 8, FP32 and FP16, p50/p95/p99 ms and images/s
  train    yolov8n from scratch on the synthetic shapes set (400 images, 256 px) with AMP: mAP per epoch, images/s,
           peak GPU memory under a --vram-mb cap; stopped after epoch 1 and resumed on CUDA
  export   exports the trained checkpoint with this torch (static and dynamic batch) and runs it in ONNX Runtime
           against the PyTorch reference outputs the export wrote
  classify yolov8p-cls (as bench/train_throughput.py) on the synthetic shapes set with AMP: top-1 per epoch
  vram     a run whose batch cannot fit its budget stops with GPU_MEMORY_EXHAUSTED and leaves the process usable
Prints figures; writes them to OUT/gpu.json. Without CUDA it reports the env section and stops.
"""
from __future__ import annotations

import argparse
import glob
import io
import json
import os
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "trainer"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cvopt_trainer import bench as worker_bench  # noqa: E402
from cvopt_trainer import export as worker_export  # noqa: E402
from cvopt_trainer.engine import train as worker_train  # noqa: E402
from cvopt_trainer.protocol import Emitter, WorkerError  # noqa: E402


class Quiet(Emitter):
    """Keeps the worker's metric messages, drops the rest."""

    def __init__(self):
        super().__init__(io.StringIO())
        self.metrics = []

    def metric(self, values, stage=None, epoch=None):
        self.metrics.append({"stage": stage, "epoch": epoch, **values})


def pct(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def env_section():
    info = {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
            "cuda": torch.cuda.is_available()}
    if info["cuda"]:
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, vramMiB=round(p.total_memory / 2 ** 20), cudaRuntime=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())
    try:
        import onnxruntime as ort
        info.update(onnxruntime=ort.__version__, ortProviders=ort.get_available_providers())
    except ImportError as e:
        info["onnxruntime"] = f"absent ({e})"
    try:
        import tensorrt  # noqa: F401
        info["tensorrt"] = tensorrt.__version__
    except ImportError:
        info["tensorrt"] = "absent"
    return info


# --dry-run: the same plumbing on the CPU with tiny settings, to check this script before spending GPU time.
DRY = False
DEV = "cuda"


def latency_section(iters):
    rows = []
    models = [("yolov8n", 640), ("yolov8s", 640), ("yolov8m", 640), ("yolov8l", 640), ("yolov8x", 640),
              ("yolov8n-cls", 224)]
    for preset, imgsz in models[:1] + models[-1:] if DRY else models:
        for half in (False,) if DRY else (False, True):
            r = worker_bench.run({"checkpoint": preset, "nc": 80 if "cls" not in preset else 1000, "device": DEV,
                                  "half": half, "imgsz": imgsz, "batch_sizes": [1, 8], "warmup": 20, "iters": iters},
                                 Quiet())
            for run in r["runs"]:
                lat = run["latenciesMs"]
                row = {"model": preset, "imgsz": imgsz, "precision": r["precision"], "batch": run["batch"],
                       "p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99),
                       "imagesPerS": run["batch"] * 1000.0 / pct(lat, 50)}
                rows.append(row)
                print(f"  {preset:12s} {imgsz:4d} {row['precision']} b{run['batch']}: p50 {row['p50']:7.2f} ms  "
                      f"p95 {row['p95']:7.2f}  p99 {row['p99']:7.2f}  {row['imagesPerS']:8.0f} img/s", flush=True)
    return rows


def coco_data(data_dir):
    root = os.path.join(data_dir, "coco128-val")
    import yaml

    with open(os.path.join(root, "data.yaml")) as f:
        names = yaml.safe_load(f)["names"]
    names = [names[k] for k in sorted(names)]
    items = [{"image": p, "label": os.path.join(root, "labels", "val2017", os.path.splitext(os.path.basename(p))[0] + ".txt")}
             for p in sorted(glob.glob(os.path.join(root, "images", "val2017", "*.jpg")))][:8 if DRY else None]
    return {"task": "detect", "names": names, "train": items, "val": items}


class StopAfter(Exception):
    pass


class Stopper(Quiet):
    """Stands for a crash after `epoch` epochs: last.pt is written before the epoch's metrics are sent."""

    def __init__(self, epoch):
        super().__init__()
        self.stop_epoch = epoch

    def metric(self, values, stage=None, epoch=None):
        super().metric(values, stage, epoch)
        if stage == "val" and epoch + 1 >= self.stop_epoch:
            raise StopAfter()


def train_section(work, epochs, batch, vram_mb):
    """yolov8n from scratch on the synthetic shapes set with AMP, stopped after the first epoch and resumed on CUDA."""
    from cvopt_trainer.data.synthetic import NAMES, write_detect

    d = os.path.join(work, "shapes")
    n, size = (16, 128) if DRY else (400, 256)
    data = {"task": "detect", "names": NAMES, "train": write_detect(d, n, size, seed=1),
            "val": write_detect(d, max(n // 5, 8), size, seed=2, split="val")}
    out = os.path.join(work, "run")
    first = Stopper(1)
    t0 = time.time()
    base = {"model": "yolov8n", "data": data, "out": out, "epochs": epochs, "imgsz": size, "batch": batch,
            "device": DEV, "workers": 2 if DRY else 8, "seed": 0, "vram_limit_mb": vram_mb}
    try:
        worker_train.run(base, first)
        raise RuntimeError("the run did not stop after its first epoch")
    except StopAfter:
        pass
    rest = Quiet()
    r = worker_train.run({"out": out, "resume": True, "device": DEV, "workers": base["workers"]}, rest)
    wall = time.time() - t0
    peak = 0.0 if DRY else torch.cuda.max_memory_allocated() / 2 ** 20
    val = [m for m in first.metrics + rest.metrics if m["stage"] == "val"]
    print("  mAP50 per epoch " + " ".join(f"{m.get('map50', float('nan')):.3f}" for m in val), flush=True)
    print(f"  {epochs} epochs (stopped after 1, resumed) in {wall:.1f} s, {r['imagesPerSec']:.0f} train img/s after "
          f"the resume, best mAP50 {r['metrics'].get('map50', float('nan')):.3f} at epoch {r['bestEpoch'] + 1}, "
          f"peak allocated {peak:.0f} MiB (cap {vram_mb} MiB)", flush=True)
    return {"map50": [m.get("map50") for m in val], "map5095": [m.get("map5095") for m in val], "wallS": wall,
            "trainImagesPerS": r["imagesPerSec"], "peakAllocatedMiB": peak, "vramCapMiB": vram_mb, "best": r["best"],
            "bestEpoch": r["bestEpoch"], "metrics": r["metrics"]}


def classify_section(work):
    """The classifier's training path on CUDA (AMP, FP32 loss) on the synthetic 3-shape set."""
    from cvopt_trainer.data.synthetic import NAMES, write_classify

    d = os.path.join(work, "cls")
    data = {"task": "classify", "names": NAMES, "train": write_classify(d, 480, 64, seed=1),
            "val": write_classify(d, 120, 64, seed=2, split="val")}
    em = Quiet()
    r = worker_train.run({"model": "yolov8p-cls", "data": data, "out": os.path.join(work, "cls-run"), "epochs": 2 if DRY else 15,
                          "imgsz": 64, "batch": 16, "device": DEV, "workers": 2 if DRY else 8,
                          "hyp": {"optimizer": "AdamW", "lr0": 0.001, "warmup_epochs": 1}}, em)
    top1 = [round(m["top1"], 4) for m in em.metrics if m["stage"] == "val"]
    print(f"  top-1 per epoch {top1}, {r['imagesPerSec']:.0f} train img/s", flush=True)
    return {"top1": top1, "trainImagesPerS": r["imagesPerSec"]}


def export_section(best, work):
    import onnxruntime as ort

    rows = []
    for dynamic in (False, True):
        out = os.path.join(work, f"export-{'dyn' if dynamic else 'static'}", "model.onnx")
        r = worker_export.run({"checkpoint": best, "out": out, "dynamic": dynamic}, Quiet())
        with open(os.path.join(r["parityDir"], "parity.json")) as f:
            parity = json.load(f)
        sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
        worst = 0.0
        for s in parity["samples"]:
            x = np.fromfile(os.path.join(r["parityDir"], s["input"]), dtype="<f4").reshape(s["inputShape"])
            ref = np.fromfile(os.path.join(r["parityDir"], s["output"]), dtype="<f4").reshape(s["outputShape"])
            y = sess.run(None, {"images": x})[0]
            worst = max(worst, float(np.abs(y - ref).max()))
        row = {"dynamic": dynamic, "opset": r["opset"], "maxAbsDiff": worst, "samples": len(parity["samples"])}
        if dynamic:
            xb = np.random.default_rng(0).random((4, 3, r["imgsz"], r["imgsz"]), dtype=np.float32)
            row["batch4Shape"] = list(sess.run(None, {"images": xb})[0].shape)
        rows.append(row)
        print(f"  export dynamic={dynamic}: opset {r['opset']}, ORT vs PyTorch max |diff| {worst:.2e} over "
              f"{len(parity['samples'])} samples {row.get('batch4Shape', '')}", flush=True)
    return rows


def vram_section(data_dir, work):
    data = coco_data(data_dir)
    torch.cuda.empty_cache()
    try:
        worker_train.run({"model": "yolov8n", "data": data, "out": os.path.join(work, "oom"), "epochs": 1, "imgsz": 640,
                          "batch": 128, "device": "cuda", "workers": 4, "vram_limit_mb": 1024}, Quiet())
        outcome = "no error (the batch fit)"
    except WorkerError as e:
        outcome = f"{e.code}: {e.message} | hint: {e.hint}"
    # Lift the cap again and show the process can still use the GPU.
    torch.cuda.set_per_process_memory_fraction(1.0, 0)
    torch.cuda.empty_cache()
    after = float((torch.ones(1024, 1024, device="cuda") * 2).sum().item())
    print(f"  batch 128 under a 1024 MiB cap: {outcome}\n  GPU usable afterwards: {after == 2 * 1024 * 1024}", flush=True)
    return {"outcome": outcome, "usableAfter": after == 2 * 1024 * 1024}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default=os.environ.get("OUT") or tempfile.mkdtemp(prefix="cvopt-gpu-"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--vram-mb", type=int, default=16384)
    ap.add_argument("--only", default="latency,train,export,classify,vram")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny settings, no vram section: checks this script")
    a = ap.parse_args()
    global DRY, DEV
    DRY, DEV = a.dry_run, "cpu" if a.dry_run else "cuda"
    if DRY:
        a.only = a.only.replace("vram", "")
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="cvopt-gpu-work-")
    report = {"env": env_section()}
    print(json.dumps(report["env"]), flush=True)

    def section(name, fn, *args):
        if name not in a.only.split(","):
            return None
        print(f"== {name}", flush=True)
        t0 = time.time()
        try:
            report[name] = fn(*args)
        except Exception as e:  # noqa: BLE001 - every section reports, whatever another did
            traceback.print_exc()
            report[name] = {"error": f"{type(e).__name__}: {e}"}
        print(f"   ({time.time() - t0:.1f} s)", flush=True)
        with open(os.path.join(a.out, "gpu.json"), "w") as f:
            json.dump(report, f, indent=1)
        return report[name]

    if not report["env"]["cuda"] and not DRY:
        print("no CUDA device: nothing else to check here")
        return 0
    section("latency", latency_section, a.iters)
    tr = section("train", train_section, work, a.epochs, a.batch, a.vram_mb)
    if isinstance(tr, dict) and "best" in tr:
        section("export", export_section, tr["best"], work)
    section("classify", classify_section, work)
    section("vram", vram_section, a.data, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
