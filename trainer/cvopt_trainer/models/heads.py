"""Output heads: the anchor-free decoupled detection head with DFL, and the classification head."""
from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn

from ..utils.boxes import dist2bbox, make_anchors
from .common import DFL, Conv


class Detect(nn.Module):
    """Per level: box branch cv2 (4·reg_max DFL logits) and class branch cv3 (nc logits).

    Train mode returns the raw per-level maps [B, 4·reg_max + nc, H, W]; eval mode returns the export
    contract [B, 4 + nc, N]: cx, cy, w, h in input pixels then sigmoid class scores, no NMS.
    """

    def __init__(self, nc: int, ch: Sequence[int], strides: Sequence[int] = (8, 16, 32), reg_max: int = 16):
        super().__init__()
        self.nc = nc
        self.nl = len(ch)
        self.reg_max = reg_max
        self.no = nc + reg_max * 4
        self.stride = torch.tensor([float(s) for s in strides])
        c2 = max(16, ch[0] // 4, reg_max * 4)
        c3 = max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1))
                                 for x in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in ch)
        self.dfl = DFL(reg_max)
        self._anchor_cache: Dict[Tuple, Tuple[torch.Tensor, torch.Tensor]] = {}

    def bias_init(self, imgsz: int = 640) -> None:
        """Box logits start equal (a centred distribution); class logits start at a prior of ~5 objects per image
        spread over the level's cells, so the first steps are not swamped by background loss."""
        for a, b, s in zip(self.cv2, self.cv3, self.stride.tolist()):
            a[-1].bias.data[:] = 1.0
            b[-1].bias.data[: self.nc] = math.log(5 / self.nc / (imgsz / s) ** 2)

    def forward(self, xs: List[torch.Tensor]):  # type: ignore[override]
        maps = [torch.cat((self.cv2[i](xs[i]), self.cv3[i](xs[i])), 1) for i in range(self.nl)]
        if self.training:
            return maps
        return self.decode(maps)

    def decode(self, maps: List[torch.Tensor]) -> torch.Tensor:
        b = maps[0].shape[0]
        key = tuple(m.shape[2:] for m in maps) + (maps[0].dtype, maps[0].device)
        if key not in self._anchor_cache or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            anchors, strides = make_anchors(maps, self.stride.tolist(), 0.5)
            self._anchor_cache = {key: (anchors.transpose(0, 1), strides.transpose(0, 1))}
        anchors, strides = self._anchor_cache[key]
        x = torch.cat([m.view(b, self.no, -1) for m in maps], 2)
        box, cls = x.split((self.reg_max * 4, self.nc), 1)
        xywh = dist2bbox(self.dfl(box), anchors.unsqueeze(0), xywh=True, dim=1) * strides
        return torch.cat((xywh, cls.sigmoid()), 1)


class Classify(nn.Module):
    """Conv to 1280 channels, global average pool, dropout, linear. Eval mode returns softmax probabilities."""

    def __init__(self, c1: int, nc: int, dropout: float = 0.0):
        super().__init__()
        c_ = 1280
        self.conv = Conv(c1, c_, 1, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(p=dropout, inplace=True)
        self.linear = nn.Linear(c_, nc)

    def forward(self, x):  # type: ignore[override]
        if isinstance(x, list):
            x = torch.cat(x, 1)
        x = self.linear(self.drop(self.pool(self.conv(x)).flatten(1)))
        return x if self.training else x.softmax(1)
