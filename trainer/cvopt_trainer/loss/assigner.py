"""Task-aligned assigner (TOOD, Feng et al. 2021) as used by YOLOv8.

For each ground truth, candidates are anchors whose centre lies inside it; the alignment metric
t = s^α · u^β (s: predicted score of the GT's class, u: CIoU with the GT) ranks them and the top k become
positives. An anchor claimed by several GTs keeps the one it overlaps most. Soft targets are the alignment
metric normalised per GT so that its best anchor gets that anchor's IoU.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ..utils.boxes import ciou


class TaskAlignedAssigner(nn.Module):
    def __init__(self, topk: int = 10, num_classes: int = 80, alpha: float = 0.5, beta: float = 6.0,
                 eps: float = 1e-9):
        super().__init__()
        self.topk = topk
        self.num_classes = num_classes
        self.alpha = alpha
        self.beta = beta
        self.eps = eps

    @torch.no_grad()
    def forward(self, pd_scores: torch.Tensor, pd_bboxes: torch.Tensor, anc_points: torch.Tensor,
                gt_labels: torch.Tensor, gt_bboxes: torch.Tensor, mask_gt: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        pd_scores [B, A, C] (probabilities), pd_bboxes [B, A, 4] xyxy, anc_points [A, 2] (same units as boxes),
        gt_labels [B, M, 1], gt_bboxes [B, M, 4] xyxy, mask_gt [B, M, 1] (1 for real GTs, 0 for padding).
        Returns target_labels [B, A], target_bboxes [B, A, 4], target_scores [B, A, C], fg_mask [B, A] bool,
        target_gt_idx [B, A].
        """
        bs, n_anchors = pd_scores.shape[:2]
        n_max = gt_bboxes.shape[1]
        device = pd_scores.device
        if n_max == 0:
            return (torch.full((bs, n_anchors), self.num_classes, device=device, dtype=torch.long),
                    torch.zeros_like(pd_bboxes), torch.zeros_like(pd_scores),
                    torch.zeros(bs, n_anchors, dtype=torch.bool, device=device),
                    torch.zeros(bs, n_anchors, dtype=torch.long, device=device))

        mask_in_gts = self.candidates_in_gts(anc_points, gt_bboxes)
        align_metric, overlaps = self.box_metrics(pd_scores, pd_bboxes, gt_labels, gt_bboxes,
                                                  mask_in_gts * mask_gt)
        topk = min(self.topk, n_anchors)
        mask_topk = self.select_topk(align_metric, mask_gt.expand(-1, -1, topk).bool())
        mask_pos = mask_topk * mask_in_gts * mask_gt
        target_gt_idx, fg_mask, mask_pos = self.resolve_multiple(mask_pos, overlaps)

        batch_idx = torch.arange(bs, device=device).unsqueeze(-1)
        flat_idx = target_gt_idx + batch_idx * n_max
        target_labels = gt_labels.long().flatten()[flat_idx].clamp_(0)  # [B, A]
        target_bboxes = gt_bboxes.view(-1, 4)[flat_idx]  # [B, A, 4]
        target_scores = torch.nn.functional.one_hot(target_labels, self.num_classes).to(pd_scores.dtype)
        target_scores = target_scores * fg_mask.unsqueeze(-1)

        align_metric = align_metric * mask_pos
        pos_align = align_metric.amax(dim=-1, keepdim=True)  # [B, M, 1]
        pos_overlaps = (overlaps * mask_pos).amax(dim=-1, keepdim=True)
        norm = (align_metric * pos_overlaps / (pos_align + self.eps)).amax(-2).unsqueeze(-1)  # [B, A, 1]
        target_scores = target_scores * norm
        target_labels = torch.where(fg_mask, target_labels, torch.full_like(target_labels, self.num_classes))
        return target_labels, target_bboxes, target_scores, fg_mask.bool(), target_gt_idx

    def candidates_in_gts(self, anc_points: torch.Tensor, gt_bboxes: torch.Tensor) -> torch.Tensor:
        """[B, M, A]: 1 where the anchor centre lies strictly inside the GT box."""
        bs, n_boxes, _ = gt_bboxes.shape
        lt, rb = gt_bboxes.view(-1, 1, 4).chunk(2, 2)
        deltas = torch.cat((anc_points[None] - lt, rb - anc_points[None]), 2).view(bs, n_boxes, -1, 4)
        return (deltas.amin(3) > self.eps).to(gt_bboxes.dtype)

    def box_metrics(self, pd_scores, pd_bboxes, gt_labels, gt_bboxes, mask):
        bs, n_anchors = pd_scores.shape[:2]
        n_max = gt_bboxes.shape[1]
        mask = mask.bool()
        overlaps = torch.zeros(bs, n_max, n_anchors, dtype=pd_bboxes.dtype, device=pd_bboxes.device)
        scores = torch.zeros_like(overlaps)
        b_idx = torch.arange(bs, device=pd_scores.device).view(-1, 1).expand(-1, n_max)
        cls_idx = gt_labels.long().squeeze(-1).clamp(0)
        # Score of each GT's class at every anchor: [B, M, A].
        all_scores = pd_scores[b_idx, :, cls_idx]
        scores[mask] = all_scores[mask]
        pd = pd_bboxes.unsqueeze(1).expand(-1, n_max, -1, -1)[mask]
        gt = gt_bboxes.unsqueeze(2).expand(-1, -1, n_anchors, -1)[mask]
        overlaps[mask] = ciou(gt, pd).squeeze(-1).clamp_(0)
        align = scores.pow(self.alpha) * overlaps.pow(self.beta)
        return align, overlaps

    def select_topk(self, metrics: torch.Tensor, topk_mask: torch.Tensor) -> torch.Tensor:
        """[B, M, A]: 1 for each GT's top-k anchors by alignment (padding GTs select nothing)."""
        k_max = topk_mask.shape[-1]
        _, idx = torch.topk(metrics, k_max, dim=-1, largest=True)
        idx = idx.masked_fill(~topk_mask, 0)
        counts = torch.zeros(metrics.shape, dtype=torch.int8, device=idx.device)
        ones = torch.ones_like(idx[:, :, :1], dtype=torch.int8)
        for k in range(k_max):
            counts.scatter_add_(-1, idx[:, :, k:k + 1], ones)
        # Masked-out slots all point to anchor 0; a count above one can only come from them.
        counts.masked_fill_(counts > 1, 0)
        return counts.to(metrics.dtype)

    def resolve_multiple(self, mask_pos: torch.Tensor, overlaps: torch.Tensor):
        """An anchor assigned to several GTs keeps only the GT it overlaps most."""
        fg = mask_pos.sum(-2)  # [B, A]
        if fg.max() > 1:
            multi = (fg.unsqueeze(1) > 1).expand_as(mask_pos)
            best = overlaps.argmax(1)
            best_one_hot = torch.zeros_like(mask_pos)
            best_one_hot.scatter_(1, best.unsqueeze(1), 1)
            mask_pos = torch.where(multi, best_one_hot, mask_pos).float()
            fg = mask_pos.sum(-2)
        return mask_pos.argmax(-2), fg > 0, mask_pos
