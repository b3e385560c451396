"""YOLOv8 detection loss: BCE on classes, CIoU on boxes, DFL on box distributions; all normalised by the sum of
the assigner's soft target scores."""
from __future__ import annotations

from typing import Dict, List

import torch
from torch import nn
from torch.nn import functional as F

from ..utils.boxes import bbox2dist, ciou, dist2bbox, make_anchors, xywh2xyxy
from .assigner import TaskAlignedAssigner


def dfl_loss(pred_dist: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distribution focal loss (Li et al. 2020): cross-entropy to the two bins around a continuous target,
    weighted by proximity. pred_dist [N·4, reg_max] logits, target [N, 4] in bin units -> [N, 1]."""
    tl = target.long()
    tr = tl + 1
    wl = tr - target
    wr = 1 - wl
    left = F.cross_entropy(pred_dist, tl.view(-1), reduction="none").view(tl.shape)
    right = F.cross_entropy(pred_dist, tr.view(-1), reduction="none").view(tl.shape)
    return (left * wl + right * wr).mean(-1, keepdim=True)


class DetectionLoss(nn.Module):
    """Call with the train-mode head output and the batch's targets.

    targets: [K, 6] rows (image index in batch, class, cx, cy, w, h) with boxes normalised to the input size.
    Returns {'box', 'cls', 'dfl'} (gain-weighted per-image means) and 'loss' (their sum × batch size, the value
    to backpropagate, matching the reference scaling that the optimiser's learning rates assume).
    """

    def __init__(self, nc: int, strides=(8, 16, 32), reg_max: int = 16, box: float = 7.5, cls: float = 0.5,
                 dfl: float = 1.5, topk: int = 10, alpha: float = 0.5, beta: float = 6.0):
        super().__init__()
        self.nc = nc
        self.strides = [float(s) for s in strides]
        self.reg_max = reg_max
        self.gains = {"box": box, "cls": cls, "dfl": dfl}
        self.assigner = TaskAlignedAssigner(topk=topk, num_classes=nc, alpha=alpha, beta=beta)
        self.register_buffer("proj", torch.arange(reg_max, dtype=torch.float), persistent=False)

    def _pad_targets(self, targets: torch.Tensor, bs: int, scale: torch.Tensor) -> torch.Tensor:
        """[K, 6] rows -> [B, M, 5] (class, x1, y1, x2, y2 in pixels), zero padded."""
        if targets.shape[0] == 0:
            return torch.zeros(bs, 0, 5, device=targets.device)
        idx = targets[:, 0].long()
        counts = torch.bincount(idx, minlength=bs)
        out = torch.zeros(bs, int(counts.max()), 5, device=targets.device)
        for b in range(bs):
            rows = targets[idx == b]
            if rows.shape[0]:
                out[b, : rows.shape[0], 0] = rows[:, 1]
                out[b, : rows.shape[0], 1:] = xywh2xyxy(rows[:, 2:6] * scale)
        return out

    def forward(self, feats: List[torch.Tensor], targets: torch.Tensor) -> Dict[str, torch.Tensor]:
        # The loss runs in FP32 whatever precision the forward pass ran in: under CUDA AMP the feature maps are FP16,
        # too coarse for pixel coordinates (0.5 px steps at 640), and the assigner mixes them with FP32 targets.
        feats = [f.float() for f in feats]
        bs = feats[0].shape[0]
        no = self.nc + 4 * self.reg_max
        x = torch.cat([f.view(bs, no, -1) for f in feats], 2)
        pred_distri, pred_scores = x.split((4 * self.reg_max, self.nc), 1)
        pred_scores = pred_scores.permute(0, 2, 1).contiguous()  # [B, A, C]
        pred_distri = pred_distri.permute(0, 2, 1).contiguous()  # [B, A, 4·R]
        dtype = pred_scores.dtype
        imgsz = torch.tensor(feats[0].shape[2:], device=x.device, dtype=dtype) * self.strides[0]  # (h, w)
        anchor_points, stride_tensor = make_anchors(feats, self.strides, 0.5)

        gt = self._pad_targets(targets.to(x.device, dtype), bs, imgsz[[1, 0, 1, 0]])
        gt_labels, gt_bboxes = gt.split((1, 4), 2)
        mask_gt = gt_bboxes.sum(2, keepdim=True).gt_(0.0)

        pred_bboxes = self.decode(anchor_points, pred_distri)  # grid units, xyxy
        _, target_bboxes, target_scores, fg_mask, _ = self.assigner(
            pred_scores.detach().sigmoid(), (pred_bboxes.detach() * stride_tensor).type(gt_bboxes.dtype),
            anchor_points * stride_tensor, gt_labels, gt_bboxes, mask_gt)
        target_scores_sum = max(target_scores.sum(), 1)

        loss_cls = F.binary_cross_entropy_with_logits(pred_scores, target_scores.to(dtype), reduction="none")
        loss_cls = loss_cls.sum() / target_scores_sum
        loss_box = pred_scores.new_zeros(())
        loss_dfl = pred_scores.new_zeros(())
        if fg_mask.any():
            target_bboxes = target_bboxes / stride_tensor
            weight = target_scores.sum(-1)[fg_mask].unsqueeze(-1)
            iou = ciou(pred_bboxes[fg_mask], target_bboxes[fg_mask])
            loss_box = ((1.0 - iou) * weight).sum() / target_scores_sum
            target_ltrb = bbox2dist(anchor_points, target_bboxes, self.reg_max - 1)
            loss_dfl = (dfl_loss(pred_distri[fg_mask].view(-1, self.reg_max), target_ltrb[fg_mask]) * weight).sum()
            loss_dfl = loss_dfl / target_scores_sum
        parts = {"box": loss_box * self.gains["box"], "cls": loss_cls * self.gains["cls"],
                 "dfl": loss_dfl * self.gains["dfl"]}
        parts["loss"] = (parts["box"] + parts["cls"] + parts["dfl"]) * bs
        return parts

    def decode(self, anchor_points: torch.Tensor, pred_dist: torch.Tensor) -> torch.Tensor:
        b, a, c = pred_dist.shape
        dist = pred_dist.view(b, a, 4, c // 4).softmax(3).matmul(self.proj.to(pred_dist.dtype))
        return dist2bbox(dist, anchor_points, xywh=False)
