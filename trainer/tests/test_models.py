import pytest
import torch

from cvopt_trainer.models import DETECT_SCALES, PRESETS, build_model, parse_preset


@pytest.mark.parametrize("scale", list(DETECT_SCALES))
def test_every_scale_has_the_export_contract_shapes_at_64px(scale):
    torch.manual_seed(0)
    det = build_model(f"yolov8{scale}", nc=3).eval()
    with torch.no_grad():
        y = det(torch.rand(2, 3, 64, 64))
    assert y.shape == (2, 4 + 3, 8 * 8 + 4 * 4 + 2 * 2)
    assert torch.isfinite(y).all()
    assert ((y[:, 4:] >= 0) & (y[:, 4:] <= 1)).all()
    cls = build_model(f"yolov8{scale}-cls", nc=5).eval()
    with torch.no_grad():
        p = cls(torch.rand(2, 3, 64, 64))
    assert p.shape == (2, 5)
    assert torch.allclose(p.sum(1), torch.ones(2), atol=1e-5)


def test_published_parameter_counts():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(build_model("yolov8n", 80)) == 3_157_200
    assert abs(count(build_model("yolov8s", 80)) - 11.17e6) < 0.01e6
    assert abs(count(build_model("yolov8n-cls", 1000)) - 2.7e6) < 0.05e6


def test_state_dict_uses_the_published_layout():
    keys = set(build_model("yolov8n").state_dict())
    for k in ["model.0.conv.weight", "model.2.cv1.conv.weight", "model.2.m.0.cv1.bn.running_mean",
              "model.9.cv2.conv.weight", "model.22.cv2.0.0.conv.weight", "model.22.cv3.2.2.bias",
              "model.22.dfl.conv.weight"]:
        assert k in keys, k
    assert "model.9.linear.weight" in build_model("yolov8n-cls", 10).state_dict()
    assert len(keys) == 355


def test_train_mode_returns_per_level_maps_and_eval_decodes_pixels():
    m = build_model("yolov8p", nc=2)
    maps = m.train()(torch.rand(1, 3, 96, 64))
    assert [tuple(x.shape) for x in maps] == [(1, 66, 12, 8), (1, 66, 6, 4), (1, 66, 3, 2)]
    for branch in m.head.cv2:  # with only the initial bias left, all four distances are equal
        torch.nn.init.zeros_(branch[-1].weight)
    with torch.no_grad():
        y = m.eval()(torch.rand(1, 3, 96, 64))
    # Equal distances put every box centre on its anchor: cell centre × stride.
    cx = y[0, 0, :96]
    assert torch.allclose(cx[:8], torch.arange(8, dtype=torch.float) * 8 + 4, atol=1e-3)
    assert (y[0, 2:4] > 0).all()


def test_fuse_keeps_outputs():
    torch.manual_seed(0)
    m = build_model("yolov8p", nc=3)
    m.train()
    for _ in range(2):  # move BN statistics away from identity so fusion is actually exercised
        m(torch.rand(2, 3, 64, 64))
    m.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a = m(x)
        b = m.fuse()(x)
    assert torch.allclose(a, b, atol=1e-4)


def test_preset_names():
    assert parse_preset("yolov8s-cls") == ("classify", "s")
    assert parse_preset("YOLOv8n.pt") == ("detect", "n")
    assert "yolov8x-cls" in PRESETS
    with pytest.raises(ValueError, match="unknown model preset"):
        build_model("yolov9n")
    m = build_model("yolov8n", 2, ["a", "b"])
    assert (m.task, m.nc, m.names, m.preset, m.stride.tolist()) == ("detect", 2, ["a", "b"], "yolov8n", [8, 16, 32])
