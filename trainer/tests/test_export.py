"""export: ONNX + model.json + reference outputs; every unsupported operator named in one error."""
import io
import json
import os

import cv2
import numpy as np
import onnx
import pytest
import torch
from torch import nn

from cvopt_trainer import export
from cvopt_trainer.protocol import Emitter, WorkerError

MANIFEST_KEYS = {"schemaVersion", "name", "task", "input", "preprocess", "output", "classNames", "opset", "precision",
                 "provenance", "accuracy"}


def _run(args):
    buf = io.StringIO()
    result = export.run(args, Emitter(buf))
    msgs = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert msgs and all(m["type"] == "progress" for m in msgs)
    return result


def _check_manifest(path, task, nc, imgsz, batch=1):
    m = json.loads(open(path).read())
    assert set(m) <= MANIFEST_KEYS
    assert m["task"] == task and m["opset"] == export.max_opset() and m["precision"] == "fp32"
    assert m["input"] == {"name": "images", "shape": [batch, 3, imgsz, imgsz], "layout": "NCHW", "dtype": "float32"}
    p = m["preprocess"]
    assert p["size"] == [imgsz, imgsz] and p["padValue"] == 114 and p["channelOrder"] == "RGB" and p["stride"] == 32
    assert abs(p["scale"] - 1 / 255) < 1e-12 and p["resize"] == ("letterbox" if task == "detect" else "center-crop")
    assert len(m["classNames"]) == nc
    assert len(m["provenance"]["onnxSha256"]) == 64 and m["provenance"]["createdAt"].endswith("Z")
    return m


def test_export_detect_checkpoint_with_samples(tiny_checkpoint, tmp_path):
    ckpt, _ = tiny_checkpoint
    img = np.zeros((40, 90, 3), np.uint8)
    cv2.rectangle(img, (10, 5), (50, 30), (0, 128, 255), -1)
    cv2.imwrite(str(tmp_path / "s.png"), img)
    out = tmp_path / "art" / "model.onnx"
    r = _run({"checkpoint": str(ckpt), "out": str(out), "samples": [str(tmp_path / "s.png")]})
    assert r["imgsz"] == 64 and r["task"] == "detect"  # imgsz from the checkpoint
    onnx.checker.check_model(str(out))
    g = onnx.load(str(out)).graph
    assert [i.name for i in g.input] == ["images"] and [o.name for o in g.output] == ["output0"]
    assert not any(n.op_type == "BatchNormalization" for n in g.node)  # folded
    m = _check_manifest(tmp_path / "art" / "model.json", "detect", 2, 64)
    assert m["output"] == {"name": "output0", "format": "yolov8", "shape": [1, 6, 84], "scoresActivated": True}
    assert m["classNames"] == ["a", "b"] and m["accuracy"] == {"map50": 0.5, "map5095": 0.25}
    assert m["provenance"]["hyperparameters"] == {"lr0": 0.01} and len(m["provenance"]["sourceSha256"]) == 64
    assert m["provenance"]["trainingRun"] == str(ckpt.parent)
    par = json.loads(open(os.path.join(r["parityDir"], "parity.json")).read())
    s = par["samples"][0]
    assert s["meta"] == {"scale": 64 / 90, "padX": 0, "padY": 18, "origWidth": 90, "origHeight": 40}
    x = np.fromfile(os.path.join(r["parityDir"], s["input"]), "<f4").reshape(s["inputShape"])
    assert abs(x[0, 0, 0, 0] - 114 / 255) < 1e-6  # padding row
    # the orange box lands at its letterboxed place in RGB order
    assert abs(x[0, 0, 18 + 10, 20] - 255 / 255) < 1e-6 and abs(x[0, 2, 18 + 10, 20]) < 1e-6
    y = np.fromfile(os.path.join(r["parityDir"], s["output"]), "<f4").reshape(s["outputShape"])
    assert y.shape == (1, 6, 84) and np.isfinite(y).all()


def test_export_ultralytics_checkpoint_classify_dynamic(tmp_path):
    from conftest import write_ultralytics_checkpoint

    pt = tmp_path / "cls.pt"
    write_ultralytics_checkpoint(pt, "yolov8p-cls", nc=4, imgsz=64)
    r = _run({"checkpoint": str(pt), "out": str(tmp_path / "c" / "model.onnx"), "dynamic": True})
    onnx.checker.check_model(r["onnx"])
    m = _check_manifest(tmp_path / "c" / "model.json", "classify", 4, 64, batch="batch")
    assert m["output"]["format"] == "probabilities" and m["output"]["shape"] == ["batch", 4]
    assert m["classNames"] == ["c0", "c1", "c2", "c3"]
    y = np.fromfile(os.path.join(r["parityDir"], "output0.bin"), "<f4")
    assert abs(y.sum() - 1) < 1e-5  # softmax probabilities


def test_ultralytics_yolov8n_exports(ultralytics_pt, tmp_path):
    path, _ = ultralytics_pt
    r = _run({"checkpoint": str(path), "out": str(tmp_path / "u" / "model.onnx"), "imgsz": 64})
    m = _check_manifest(tmp_path / "u" / "model.json", "detect", 3, 64)
    assert m["classNames"] == ["cat", "dog", "bird"] and m["name"] == "yolov8n" and r["sourceFormat"] == "ultralytics"


class _Erf(nn.Module):
    def forward(self, x):
        return torch.special.erfinv(x.clamp(-0.5, 0.5))


class _TwoBadOps(nn.Module):
    """Two operations torch 1.13 cannot export at any opset: linalg_inv and erfinv, in different modules."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.head = _Erf()

    def forward(self, x):
        y = self.conv(x)
        inv = torch.linalg.inv(y[:, :, :2, :2] + 3 * torch.eye(2))
        return self.head(y).mean((2, 3)) + inv.sum((2, 3))


def test_unsupported_operators_are_all_listed_at_once(tmp_path):
    model = _TwoBadOps().eval()
    out = tmp_path / "bad.onnx"
    with pytest.raises(WorkerError) as info:
        export._onnx_export(model, torch.zeros(1, 3, 8, 8), str(out), 17, False)
    e = info.value
    assert e.code == "UNSUPPORTED_OPERATOR"
    assert "linalg_inv" in e.message and "erfinv" in e.message and "2 operator(s)" in e.message
    assert "/head" in e.message  # where the second one sits
    assert not out.exists()


@pytest.mark.parametrize("args,field", [
    ({"out": "x.onnx"}, "checkpoint"),
    ({"checkpoint": "yolov8p", "out": "x.pt"}, "out"),
    ({"checkpoint": "yolov8p", "out": "x.onnx", "opset": 99}, "opset"),
    ({"checkpoint": "yolov8p", "out": "x.onnx", "imgsz": 50}, "imgsz"),
])
def test_bad_arguments_name_the_field(tmp_path, args, field):
    args = {**args, "out": str(tmp_path / args["out"])}
    with pytest.raises(WorkerError) as info:
        _run(args)
    assert info.value.code == "INVALID_ARGUMENT" and info.value.where == {"field": field}
