import torch

from cvopt_trainer.loss import ClassificationLoss, DetectionLoss, dfl_loss
from cvopt_trainer.models import build_model
from cvopt_trainer.utils.boxes import ciou


def targets():
    # (image, class, cx, cy, w, h) normalised; image 1 has no objects.
    return torch.tensor([[0, 0, 0.3, 0.3, 0.4, 0.3], [0, 1, 0.7, 0.6, 0.2, 0.5], [2, 1, 0.5, 0.5, 0.9, 0.9]])


def test_detection_loss_parts_are_positive_finite_and_reach_every_parameter():
    torch.manual_seed(0)
    model = build_model("yolov8p", nc=2).train()
    crit = DetectionLoss(nc=2, topk=100)  # every anchor inside a GT is positive, so all three levels get box gradients
    parts = crit(model(torch.rand(3, 3, 64, 64)), targets())
    assert set(parts) == {"box", "cls", "dfl", "loss"}
    for k in ("box", "cls", "dfl"):
        assert torch.isfinite(parts[k]) and parts[k] > 0, k
    parts["loss"].backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name
    assert not model.model[-1].dfl.conv.weight.requires_grad


def test_half_precision_feature_maps_give_the_fp32_loss():
    """Mixed precision (CUDA AMP) hands the loss FP16 feature maps; it computes in FP32 on the same values."""
    torch.manual_seed(0)
    feats = build_model("yolov8p", nc=2).train()(torch.rand(3, 3, 64, 64))
    crit = DetectionLoss(nc=2)
    for low in (torch.float16, torch.bfloat16):
        a = crit([f.detach().to(low) for f in feats], targets())
        b = crit([f.detach().to(low).float() for f in feats], targets())
        assert all(a[k].dtype == torch.float32 and torch.equal(a[k], b[k]) for k in a), low
    logits = torch.randn(4, 3).half()
    assert ClassificationLoss()(logits, torch.tensor([0, 1, 2, 0]))["loss"].dtype == torch.float32


def test_background_only_batch_has_class_loss_only():
    model = build_model("yolov8p", nc=2).train()
    parts = DetectionLoss(nc=2)(model(torch.rand(2, 3, 64, 64)), torch.zeros(0, 6))
    assert parts["box"] == 0 and parts["dfl"] == 0 and parts["cls"] > 0


def test_perfect_predictions_give_near_zero_parts():
    b = torch.tensor([[2.0, 3.0, 10.0, 9.0]])
    assert torch.isclose(ciou(b, b), torch.tensor([[1.0]]), atol=1e-6)
    assert ciou(b, b + torch.tensor([1.0, 0, 1, 0])) < 1
    logits = torch.full((4, 16), -30.0)
    logits[torch.arange(4), torch.tensor([3, 5, 0, 14])] = 30.0
    assert dfl_loss(logits, torch.tensor([[3.0, 5.0, 0.0, 14.0]])) < 0.02
    # A continuous target between bins is best matched by splitting mass between them.
    split = torch.full((1, 16), -30.0)
    split[0, 3] = split[0, 4] = 0.0
    assert dfl_loss(split.repeat(4, 1), torch.full((1, 4), 3.5)) < dfl_loss(logits[:1].repeat(4, 1), torch.full((1, 4), 3.5))


def test_classification_loss_and_label_smoothing():
    logits = torch.tensor([[10.0, -10.0], [-10.0, 10.0]])
    y = torch.tensor([0, 1])
    perfect = ClassificationLoss()(logits, y)
    assert perfect["cls"] < 1e-6 and torch.isclose(perfect["loss"], perfect["cls"] * 2)
    assert ClassificationLoss(label_smoothing=0.1)(logits, y)["cls"] > 0.5
