"""Shared fixtures for the io/export/bench tests: small models and files built at test time."""
import sys
import types

import pytest
import torch
from torch import nn

from cvopt_trainer.models import build_model

# Where each of our block classes lives in Ultralytics' package (the names its pickles reference).
ULTRALYTICS_HOME = {
    "Conv": "ultralytics.nn.modules.conv", "Concat": "ultralytics.nn.modules.conv",
    "C2f": "ultralytics.nn.modules.block", "Bottleneck": "ultralytics.nn.modules.block",
    "SPPF": "ultralytics.nn.modules.block", "DFL": "ultralytics.nn.modules.block",
    "Detect": "ultralytics.nn.modules.head", "Classify": "ultralytics.nn.modules.head",
}


def write_ultralytics_checkpoint(path, preset="yolov8n", nc=3, names=None, imgsz=320, root_class=None):
    """A checkpoint laid out like Ultralytics' (`{'model': DetectionModel, 'train_args': …}`, half precision),
    pickled against stand-in classes registered under Ultralytics' module names, which are removed again before
    returning, so loading it proves the reader never needs the ultralytics package. Returns the float32
    reference state dict (after the half round trip)."""
    torch.manual_seed(1)
    model = build_model(preset, nc=nc).eval()
    # Randomise BN statistics so the comparison covers buffers too.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    injected = {}
    for mod in ["ultralytics", "ultralytics.nn", "ultralytics.nn.modules", "ultralytics.nn.modules.conv",
                "ultralytics.nn.modules.block", "ultralytics.nn.modules.head", "ultralytics.nn.tasks",
                "ultralytics.utils", "ultralytics.utils.loss"]:
        injected[mod] = types.ModuleType(mod)
    fakes = {}

    def fake(module, name, base=nn.Module):
        key = (module, name)
        if key not in fakes:
            cls = type(name, (base,), {"__module__": module})
            setattr(injected[module], name, cls)
            fakes[key] = cls
        return fakes[key]

    saved = {k: sys.modules.get(k) for k in injected}
    sys.modules.update(injected)
    try:
        task = "classify" if preset.endswith("-cls") else "detect"
        for m in model.modules():
            home = ULTRALYTICS_HOME.get(type(m).__name__)
            if home:
                m.__class__ = fake(home, type(m).__name__)
        model.model.__class__ = nn.Sequential  # Ultralytics keeps its layers in a Sequential
        model.__class__ = fake("ultralytics.nn.tasks", root_class or ("ClassificationModel" if task == "classify" else "DetectionModel"))
        # what a trained model carries besides its layers: its arguments and the loss object left on it
        ns = fake("ultralytics.utils", "IterableSimpleNamespace", object)
        args = ns()
        args.__dict__.update(imgsz=imgsz, box=7.5)
        model.args = args
        loss = fake("ultralytics.utils.loss", "v8DetectionLoss", object)()
        loss.__dict__.update(bce=nn.BCEWithLogitsLoss(reduction="none"), hyp=args, stride=torch.tensor([8.0, 16.0, 32.0]))
        model.criterion = loss
        scale = preset[6]
        model.yaml = {"nc": nc, "scale": scale, "yaml_file": f"yolov8{scale}.yaml", "backbone": [[-1, 1, "Conv", [64, 3, 2]]]}
        model.names = {i: n for i, n in enumerate(names or [f"c{i}" for i in range(nc)])}
        model.half()
        ref = {k: v.float().clone() for k, v in model.state_dict().items()}
        ckpt = {"date": "2024-01-01T00:00:00", "version": "8.0.200", "epoch": -1, "best_fitness": None,
                "model": model, "ema": None, "updates": None, "optimizer": None,
                "train_args": {"task": task, "model": f"yolov8{scale}.yaml", "imgsz": imgsz, "epochs": 3, "lr0": 0.01},
                "train_metrics": {"metrics/mAP50(B)": 0.25, "metrics/mAP50-95(B)": 0.125}}
        torch.save(ckpt, path)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return ref


@pytest.fixture
def ultralytics_pt(tmp_path):
    path = tmp_path / "yolov8n-ultra.pt"
    ref = write_ultralytics_checkpoint(path, "yolov8n", nc=3, names=["cat", "dog", "bird"])
    return path, ref


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A cvopt checkpoint of a pico detector with 2 classes."""
    torch.manual_seed(2)
    model = build_model("yolov8p", nc=2)
    path = tmp_path / "last.pt"
    torch.save({"format": "cvopt-checkpoint-v1", "preset": "yolov8p", "task": "detect", "nc": 2, "names": ["a", "b"],
                "imgsz": 64, "epoch": 3, "state_dict": model.state_dict(), "metrics": {"map50": 0.5, "map5095": 0.25},
                "hyp": {"lr0": 0.01}}, path)
    return path, model
