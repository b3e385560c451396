"""load_model over every accepted source: presets, checkpoints, state dicts, TorchScript, Ultralytics .pt."""
import sys

import pytest
import torch

from cvopt_trainer.io import infer_from_state_dict, load_model
from cvopt_trainer.models import build_model
from cvopt_trainer.protocol import WorkerError


def test_ultralytics_checkpoint_loads_by_name_without_ultralytics(ultralytics_pt):
    path, ref = ultralytics_pt
    assert "ultralytics" not in sys.modules
    model, meta = load_model(str(path))
    assert "ultralytics" not in sys.modules
    assert (meta["format"], meta["task"], meta["preset"], meta["nc"]) == ("ultralytics", "detect", "yolov8n", 3)
    assert meta["names"] == ["cat", "dog", "bird"] and meta["imgsz"] == 320
    assert meta["hyperparameters"]["lr0"] == 0.01 and meta["metrics"]["metrics/mAP50(B)"] == 0.25
    sd = model.state_dict()
    assert set(sd) == set(ref)
    for k, v in ref.items():
        assert torch.equal(sd[k], v), k
    assert not model.training
    out = model(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 4 + 3, 84)


def test_state_dict_with_and_without_preset(tmp_path):
    torch.manual_seed(3)
    src = build_model("yolov8p-cls", nc=5)
    p = tmp_path / "sd.pt"
    torch.save(src.state_dict(), p)
    model, meta = load_model(str(p))  # inferred from shapes
    assert (meta["format"], meta["preset"], meta["task"], meta["nc"]) == ("state-dict", "yolov8p-cls", "classify", 5)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), src.state_dict().values()))
    with pytest.raises(WorkerError) as info:
        load_model(str(p), preset="yolov8n-cls")
    assert info.value.code == "MODEL_INVALID" and "wrong shape" in info.value.message


def test_infer_from_state_dict_detect():
    info = infer_from_state_dict(build_model("yolov8n", nc=7).state_dict())
    assert info == {"task": "detect", "nc": 7, "preset": "yolov8n"}


def test_cvopt_checkpoint(tiny_checkpoint):
    path, src = tiny_checkpoint
    model, meta = load_model(str(path))
    assert (meta["format"], meta["preset"], meta["nc"], meta["names"], meta["imgsz"]) == ("cvopt-checkpoint", "yolov8p", 2, ["a", "b"], 64)
    assert meta["metrics"] == {"map50": 0.5, "map5095": 0.25} and len(meta["sourceSha256"]) == 64
    x = torch.rand(1, 3, 64, 64)
    src.eval()
    assert torch.allclose(model(x), src(x))


def test_trusted_torchscript_is_loaded_as_opaque_module_and_untrusted_is_refused(tmp_path):
    m = build_model("yolov8p", nc=4).eval()
    p = tmp_path / "m.torchscript"
    torch.jit.trace(m, torch.zeros(1, 3, 64, 64)).save(str(p))
    with pytest.raises(WorkerError) as info:
        load_model(str(p))
    assert info.value.code == "TORCHSCRIPT_UNTRUSTED" and "--trust-torchscript" in info.value.hint
    model, meta = load_model(str(p), trust_torchscript=True)
    # task and classes come from the parameter names and shapes, not from running it
    assert (meta["format"], meta["task"], meta["nc"]) == ("torchscript", "detect", 4)
    x = torch.rand(1, 3, 64, 64)
    assert torch.allclose(model(x), m(x), atol=1e-5)


def test_preset_is_deterministic_and_unknown_preset_is_clear(tmp_path, monkeypatch):
    a, meta = load_model("yolov8p", nc=2)
    b, _ = load_model("yolov8p", nc=2)
    assert meta["format"] == "preset" and all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    # a local weights file for the preset is picked up from CVOPT_WEIGHTS_DIR
    torch.manual_seed(9)
    w = build_model("yolov8p", nc=2)
    torch.save(w.state_dict(), tmp_path / "yolov8p.pt")
    monkeypatch.setenv("CVOPT_WEIGHTS_DIR", str(tmp_path))
    c, meta = load_model("yolov8p", nc=2)
    assert meta["format"] == "state-dict" and torch.equal(c.state_dict()["model.0.conv.weight"], w.state_dict()["model.0.conv.weight"])
    with pytest.raises(WorkerError) as info:
        load_model("yolov8q")
    assert info.value.code == "INVALID_ARGUMENT"


def test_missing_file_and_non_model_pickle(tmp_path):
    with pytest.raises(WorkerError) as info:
        load_model(str(tmp_path / "nope.pt"))
    assert info.value.code == "NOT_FOUND"
    p = tmp_path / "list.pt"
    torch.save([1, 2, 3], p)
    with pytest.raises(WorkerError) as info:
        load_model(str(p))
    assert info.value.code == "MODEL_INVALID" and "list" in info.value.message


def test_unsupported_ultralytics_model_is_model_invalid_not_unsafe(tmp_path):
    from conftest import write_ultralytics_checkpoint

    p = tmp_path / "seg.pt"
    write_ultralytics_checkpoint(p, "yolov8p", nc=2, root_class="SegmentationModel")
    with pytest.raises(WorkerError) as info:
        load_model(str(p))
    assert info.value.code == "MODEL_INVALID" and "SegmentationModel" in info.value.message
