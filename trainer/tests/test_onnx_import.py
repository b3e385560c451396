"""onnx_import: YOLOv8 rebuilt from ONNX initialisers, dequantised, checked against ONNX Runtime on real images."""
import glob
import io
import os
import subprocess

import numpy as np
import pytest
import torch

from cvopt_trainer.export import exporter_kwargs
from cvopt_trainer.io import load_model
from cvopt_trainer.io.onnx_import import NOT_YOLOV8, dequantise, rebuild, run
from cvopt_trainer.models import build_model
from cvopt_trainer.protocol import Emitter, WorkerError

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.environ.get("CVOPT_TEST_DATA") or os.path.join(REPO, "..", "shared", "data")
REAL = os.path.join(DATA, "models", "yolov8n_int8.onnx")
ORT_NODE = os.path.join(REPO, "node_modules", "onnxruntime-node")

# ONNX Runtime has no Python wheel here; the parity reference is the same onnxruntime-node the engines use.
ORT_RUN = r"""
const ort = require(process.env.ORT_NODE);
const fs = require('fs');
(async () => {
  const [model, inp, n, c, h, w, out] = process.argv.slice(1);
  const s = await ort.InferenceSession.create(model);
  const buf = fs.readFileSync(inp);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const per = +c * +h * +w, chunks = [];
  for (let i = 0; i < +n; i++) {
    const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', all.slice(i * per, (i + 1) * per), [1, +c, +h, +w]) });
    chunks.push(Buffer.from(r[s.outputNames[0]].data.buffer));
  }
  fs.writeFileSync(out, Buffer.concat(chunks));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def ort_outputs(model_path, x, tmp_path):
    inp, out = tmp_path / "in.bin", tmp_path / "out.bin"
    x.astype("<f4").tofile(inp)
    n, c, h, w = x.shape
    subprocess.run(["node", "-e", ORT_RUN, str(model_path), str(inp), str(n), str(c), str(h), str(w), str(out)],
                   check=True, env={**os.environ, "ORT_NODE": ORT_NODE}, timeout=300)
    return np.fromfile(out, "<f4")


def test_dequantise_per_tensor_and_per_channel():
    q = np.array([[[[0]], [[255]]], [[[128]], [[130]]]], np.uint8)  # [2,2,1,1]
    np.testing.assert_allclose(dequantise(q, np.float32(0.5), np.uint8(128))[:, :, 0, 0], [[-64, 63.5], [0, 1]])
    per = dequantise(q, np.array([1.0, 2.0], np.float32), np.array([0, 128], np.uint8))
    np.testing.assert_allclose(per[:, :, 0, 0], [[0, 255], [0, 4]])


def test_rebuilds_a_float_yolov8_onnx_exactly(tmp_path):
    """Our own float export (BN folded, parameter names kept) comes back as the same function."""
    torch.manual_seed(3)
    src = build_model("yolov8p", nc=3).eval()
    for m in src.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 1.5)
            m.running_mean.uniform_(-0.1, 0.1)
    src.fuse()
    path = tmp_path / "p.onnx"
    x = torch.rand(1, 3, 64, 64)
    torch.onnx.export(src, x, str(path), input_names=["images"], output_names=["output0"], opset_version=13,
                      do_constant_folding=False, **exporter_kwargs())
    out = tmp_path / "imported.pt"
    r = run({"onnx": str(path), "out": str(out)}, Emitter(io.StringIO()))
    assert (r["preset"], r["nc"], r["imgsz"], r["dequantised"]) == ("yolov8p", 3, 64, 0)
    model, meta = load_model(str(out))  # the ordinary loader reads it: export and bench take it unchanged
    assert meta["format"] == "cvopt-checkpoint" and meta["preset"] == "yolov8p"
    model.fuse()
    with torch.no_grad():
        assert (model(x) - src(x)).abs().max().item() < 1e-4


def test_shared_zero_biases_are_found_through_their_conv(tmp_path):
    """Fresh BNs fold to all-zero biases, which the exporter stores once under one name."""
    src = build_model("yolov8p", nc=2).eval().fuse()
    path = tmp_path / "z.onnx"
    torch.onnx.export(src, torch.rand(1, 3, 64, 64), str(path), opset_version=13, **exporter_kwargs())
    model, meta = rebuild(str(path))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert (model(x) - src(x)).abs().max().item() < 1e-4


def test_a_non_yolov8_onnx_has_no_pytorch_source(tmp_path):
    conv = torch.nn.Conv2d(3, 4, 3).eval()
    path = tmp_path / "other.onnx"
    torch.onnx.export(conv, torch.rand(1, 3, 8, 8), str(path), opset_version=13, **exporter_kwargs())
    with pytest.raises(WorkerError) as info:
        rebuild(str(path))
    assert info.value.code == "MODEL_INVALID" and info.value.message.startswith(NOT_YOLOV8)
    with pytest.raises(WorkerError) as info:
        rebuild(str(tmp_path / "absent.onnx"))
    assert info.value.code == "NOT_FOUND"


@pytest.mark.skipif(not os.path.isfile(REAL), reason=f"shared test data absent ({REAL}); set CVOPT_TEST_DATA")
def test_real_int8_yolov8n_parity_with_onnx_runtime(tmp_path):
    from cvopt_trainer.export import preprocess_image

    model, meta = rebuild(REAL)
    assert (meta["preset"], meta["nc"], meta["imgsz"]) == ("yolov8n", 80, 640)
    assert meta["dequantised"] == 63 and meta["names"][:3] == ["person", "bicycle", "car"]
    pre = {"resize": "letterbox", "size": [640, 640], "padValue": 114, "channelOrder": "RGB", "scale": 1 / 255,
           "mean": [0, 0, 0], "std": [1, 1, 1]}
    images = sorted(glob.glob(os.path.join(DATA, "coco128-val", "images", "val2017", "*.jpg")))[:3]
    x = np.concatenate([preprocess_image(p, pre)[0] for p in images])
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    ref = ort_outputs(REAL, x, tmp_path).reshape(y.shape)
    # The ONNX also quantises activations per call (DynamicQuantizeLinear), our rebuild runs them in float: the
    # comparison is on the anchors ONNX Runtime is confident about, the ones that become detections.
    conf = ref[:, 4:].max(1) > 0.25
    agree = (y[:, 4:].argmax(1) == ref[:, 4:].argmax(1))[conf].mean()
    score_err = np.abs(y[:, 4:].max(1) - ref[:, 4:].max(1))[conf]
    box_err = np.abs(y[:, :4] - ref[:, :4]).transpose(0, 2, 1)[conf]
    print(f"parity on {len(images)} coco128 images, {conf.sum()} confident anchors: class agreement {agree:.3f}, "
          f"score |Δ| mean {score_err.mean():.4f} max {score_err.max():.4f}, box |Δ| px mean {box_err.mean():.3f} "
          f"max {box_err.max():.3f}")
    assert conf.sum() > 20
    assert agree >= 0.98
    assert score_err.mean() < 0.03
    assert box_err.mean() < 1.5
