"""Trainer benchmark: time to accuracy and throughput of the training loop against a bare forward+backward loop.

Usage (from the repository root, with Debian's Python):
    /usr/bin/python3 bench/train_throughput.py [--data YOLO_DIR] [--images 300] [--size 256] [--imgsz 160]
        [--model yolov8p] [--epochs 40] [--batch 16] [--workers 2] [--target 0.9] [--hyp JSON]
        [--cls-images 480] [--cls-epochs 15] [--skip-detect] [--skip-classify]

Without --data it draws a synthetic shapes set (3 classes) with cvopt_trainer.data.synthetic; with --data it
reads a YOLO directory such as `cvopt dataset synth` writes (images/{train,val}, labels/{train,val}, names in
data.yaml). Detection trains until val mAP50 >= --target or --epochs; classification until top-1 >= 0.95.
Prints mAP50/mAP50-95 per epoch, wall time, training images/s (time inside training batches, data loading
included, validation excluded), the bare loop's images/s (mean of a run before and after) and their ratio
(target <= 1.25). Figures only: nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "trainer"))

import torch  # noqa: E402

from cvopt_trainer.data.synthetic import NAMES, write_classify, write_detect  # noqa: E402
from cvopt_trainer.engine.train import run  # noqa: E402
from cvopt_trainer.loss import ClassificationLoss, DetectionLoss  # noqa: E402
from cvopt_trainer.models import build_model  # noqa: E402
from cvopt_trainer.protocol import Emitter  # noqa: E402


class TargetReached(Exception):
    pass


class Watch(Emitter):
    """Prints per-epoch figures, sums the time spent in training batches, stops once the target is met."""

    def __init__(self, key: str, target: float, batch: int):
        super().__init__(open(os.devnull, "w"))
        self.key, self.target, self.batch = key, target, batch
        self.t0 = time.time()
        self.epoch_start = self.t0
        self.last_batch = self.t0
        self.train_s = 0.0
        self.images = 0
        self.epochs = 0
        self.best = 0.0

    def progress(self, stage, step, total, message=None):
        now = time.time()
        if stage == "train":
            self.last_batch = now
        elif stage == "epoch":
            self.epoch_start = now

    def metric(self, values, stage=None, epoch=None):
        if stage == "train":
            self.train_s += self.last_batch - self.epoch_start
            self.losses = values
            return
        self.epochs = epoch + 1
        self.best = max(self.best, values[self.key])
        figures = " ".join(f"{k}={v:.3f}" for k, v in values.items() if k != "fitness")
        losses = " ".join(f"{k}={v:.3f}" for k, v in self.losses.items() if k != "lr")
        print(f"  epoch {epoch + 1:3d}  t={time.time() - self.t0:6.1f}s  {losses}  {figures}", flush=True)
        if values[self.key] >= self.target:
            raise TargetReached()


def bare_loop(model_name: str, nc: int, imgsz: int, batch: int, task: str, steps: int = 6) -> float:
    """Images/s of forward + loss + backward on pre-made tensors, same model and batch size."""
    torch.manual_seed(0)
    model = build_model(model_name, nc).train()
    x = torch.rand(batch, 3, imgsz, imgsz)
    if task == "detect":
        crit = DetectionLoss(nc)
        y = torch.tensor([[i, i % nc, 0.3 + 0.4 * (i % 2), 0.5, 0.2, 0.3] for i in range(batch)] * 2)
    else:
        crit, y = ClassificationLoss(), torch.arange(batch) % nc
    for i in range(steps + 1):
        if i == 1:
            t0 = time.time()
        model.zero_grad(set_to_none=True)
        crit(model(x), y)["loss"].backward()
    return steps * batch / (time.time() - t0)


def yolo_dir(path: str):
    import yaml

    with open(os.path.join(path, "data.yaml")) as f:
        names = yaml.safe_load(f)["names"]
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    splits = {}
    for split in ("train", "val"):
        img_dir = os.path.join(path, "images", split)
        items = []
        for fn in sorted(os.listdir(img_dir)):
            stem = os.path.splitext(fn)[0]
            items.append({"image": os.path.join(img_dir, fn), "label": os.path.join(path, "labels", split, stem + ".txt")})
        splits[split] = items
    return names, splits["train"], splits["val"]


def bench(task, data, model, imgsz, batch, epochs, workers, hyp, key, target, out):
    n_train = len(data["train"])
    print(f"{task}: {model}, {n_train} train / {len(data['val'])} val images, imgsz {imgsz}, batch {batch}, "
          f"workers {workers}, up to {epochs} epochs, stop at {key} >= {target}", flush=True)
    # The bare loop runs before and after training and is averaged: on a shared machine the load drifts.
    bare_before = bare_loop(model, len(data["names"]), imgsz, batch, task)
    watch = Watch(key, target, batch)
    t0 = time.time()
    try:
        run({"model": model, "data": data, "out": out, "epochs": epochs, "imgsz": imgsz, "batch": batch,
             "workers": workers, "seed": 0, "hyp": hyp}, watch)
        reached = False
    except TargetReached:
        reached = True
    wall = time.time() - t0
    train_ips = watch.epochs * n_train / watch.train_s if watch.train_s else 0.0
    bare_ips = (bare_before + bare_loop(model, len(data["names"]), imgsz, batch, task)) / 2
    print(f"  {'reached' if reached else 'did not reach'} {key} >= {target}: best {watch.best:.3f} after "
          f"{watch.epochs} epochs, wall {wall:.0f}s")
    print(f"  training loop {train_ips:.1f} img/s, bare forward+backward {bare_ips:.1f} img/s, "
          f"ratio {bare_ips / train_ips if train_ips else float('inf'):.2f} (target <= 1.25)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data")
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--imgsz", type=int, default=160)
    p.add_argument("--model", default="yolov8p")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--target", type=float, default=0.9)
    p.add_argument("--hyp", default='{"optimizer": "AdamW", "lr0": 0.003, "warmup_epochs": 1, "close_mosaic": 5}')
    p.add_argument("--cls-images", type=int, default=480)
    p.add_argument("--cls-epochs", type=int, default=15)
    p.add_argument("--skip-detect", action="store_true")
    p.add_argument("--skip-classify", action="store_true")
    a = p.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), python {platform.python_version()}", flush=True)
    hyp = json.loads(a.hyp)
    with tempfile.TemporaryDirectory() as tmp:
        if not a.skip_detect:
            if a.data:
                names, train, val = yolo_dir(a.data)
            else:
                names, train = NAMES, write_detect(os.path.join(tmp, "det"), a.images, a.size, seed=1)
                val = write_detect(os.path.join(tmp, "det"), max(a.images // 5, 20), a.size, seed=2, split="val")
            bench("detect", {"task": "detect", "names": names, "train": train, "val": val}, a.model, a.imgsz,
                  a.batch, a.epochs, a.workers, hyp, "map50", a.target, os.path.join(tmp, "det-run"))
        if not a.skip_classify:
            d = os.path.join(tmp, "cls")
            data = {"task": "classify", "names": NAMES, "train": write_classify(d, a.cls_images, 64, seed=1),
                    "val": write_classify(d, max(a.cls_images // 4, 30), 64, seed=2, split="val")}
            bench("classify", data, a.model + "-cls", 64, a.batch, a.cls_epochs, a.workers,
                  {"optimizer": "AdamW", "lr0": 0.001, "warmup_epochs": 1}, "top1", 0.95,
                  os.path.join(tmp, "cls-run"))


if __name__ == "__main__":
    main()
