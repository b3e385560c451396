"""YOLOv8-architecture detector and classifier built from one layer table and one table of scales.

Layer order and attribute names reproduce the published checkpoint layout (``model.<i>.…``), so a state dict
saved by the reference implementation loads into these modules by name.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .common import C2f, SPPF, Concat, Conv
from .heads import Classify, Detect

# scale -> (depth multiple, width multiple, max channels). 'p' ("pico") is cvopt's own, not a published
# preset: width 1/8 of 'l', for fast tests and the quickstart.
DETECT_SCALES: Dict[str, Tuple[float, float, int]] = {
    "p": (0.33, 0.125, 1024),
    "n": (0.33, 0.25, 1024),
    "s": (0.33, 0.50, 1024),
    "m": (0.67, 0.75, 768),
    "l": (1.00, 1.00, 512),
    "x": (1.00, 1.25, 512),
}
# The classifier's published scales cap channels at 1024 for every size.
CLASSIFY_SCALES: Dict[str, Tuple[float, float, int]] = {k: (d, w, 1024) for k, (d, w, _) in DETECT_SCALES.items()}

# (from, repeats, block, channels or None, extra args). "from" is -1 (previous) or a list of layer indices.
From = Union[int, List[int]]
BACKBONE: List[Tuple[From, int, str, Optional[int], tuple]] = [
    (-1, 1, "Conv", 64, (3, 2)),  # 0  P1/2
    (-1, 1, "Conv", 128, (3, 2)),  # 1  P2/4
    (-1, 3, "C2f", 128, (True,)),  # 2
    (-1, 1, "Conv", 256, (3, 2)),  # 3  P3/8
    (-1, 6, "C2f", 256, (True,)),  # 4
    (-1, 1, "Conv", 512, (3, 2)),  # 5  P4/16
    (-1, 6, "C2f", 512, (True,)),  # 6
    (-1, 1, "Conv", 1024, (3, 2)),  # 7  P5/32
    (-1, 3, "C2f", 1024, (True,)),  # 8
]
DETECT_NECK: List[Tuple[From, int, str, Optional[int], tuple]] = [
    (-1, 1, "SPPF", 1024, (5,)),  # 9
    (-1, 1, "Upsample", None, ()),  # 10
    ([-1, 6], 1, "Concat", None, ()),  # 11
    (-1, 3, "C2f", 512, (False,)),  # 12
    (-1, 1, "Upsample", None, ()),  # 13
    ([-1, 4], 1, "Concat", None, ()),  # 14
    (-1, 3, "C2f", 256, (False,)),  # 15 P3 out
    (-1, 1, "Conv", 256, (3, 2)),  # 16
    ([-1, 12], 1, "Concat", None, ()),  # 17
    (-1, 3, "C2f", 512, (False,)),  # 18 P4 out
    (-1, 1, "Conv", 512, (3, 2)),  # 19
    ([-1, 9], 1, "Concat", None, ()),  # 20
    (-1, 3, "C2f", 1024, (False,)),  # 21 P5 out
    ([15, 18, 21], 1, "Detect", None, ()),  # 22
]
CLASSIFY_HEAD: List[Tuple[From, int, str, Optional[int], tuple]] = [(-1, 1, "Classify", None, ())]

STRIDES = (8, 16, 32)


def _divisible(x: float, d: int = 8) -> int:
    return int(math.ceil(x / d) * d)


class YOLO(nn.Module):
    """A routed stack of layers in ``self.model``; ``forward`` keeps only the outputs later layers consume."""

    def __init__(self, task: str, scale: str, nc: int, names: Optional[Sequence[str]] = None, preset: str = ""):
        super().__init__()
        table = DETECT_SCALES if task == "detect" else CLASSIFY_SCALES
        depth, width, max_ch = table[scale]
        spec = BACKBONE + (DETECT_NECK if task == "detect" else CLASSIFY_HEAD)
        layers: List[nn.Module] = []
        self.sources: List[From] = []
        chs: List[int] = []
        c_prev = 3
        for i, (src, n, kind, c, extra) in enumerate(spec):
            n = max(round(n * depth), 1) if n > 1 else n
            c2 = _divisible(min(c, max_ch) * width) if c is not None else 0
            if kind == "Conv":
                m: nn.Module = Conv(c_prev, c2, *extra)
            elif kind == "C2f":
                m = C2f(c_prev, c2, n, *extra)
            elif kind == "SPPF":
                m = SPPF(c_prev, c2, *extra)
            elif kind == "Upsample":
                m, c2 = nn.Upsample(scale_factor=2, mode="nearest"), c_prev
            elif kind == "Concat":
                m, c2 = Concat(), sum(chs[j] if j >= 0 else chs[i + j] for j in src)  # type: ignore[union-attr]
            elif kind == "Detect":
                m = Detect(nc, [chs[j] for j in src], STRIDES)  # type: ignore[union-attr]
            elif kind == "Classify":
                m = Classify(c_prev, nc)
            else:  # pragma: no cover - the tables above are the only input
                raise ValueError(kind)
            layers.append(m)
            self.sources.append(src)
            chs.append(c2)
            c_prev = c2
        self.model = nn.ModuleList(layers)
        self.save = sorted({j for s in self.sources if isinstance(s, list) for j in s if j >= 0})
        self.task = task
        self.scale = scale
        self.preset = preset
        self.nc = nc
        self.names = list(names) if names is not None else [str(i) for i in range(nc)]
        if task == "detect":
            self.stride = torch.tensor([float(s) for s in STRIDES])
        else:
            self.stride = torch.tensor([32.0])
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = 1e-3, 0.03
            elif isinstance(m, (nn.Hardswish, nn.LeakyReLU, nn.ReLU, nn.ReLU6, nn.SiLU)):
                m.inplace = True
        head = self.model[-1]
        if isinstance(head, Detect):
            head.bias_init(640)

    @property
    def head(self) -> nn.Module:
        return self.model[-1]

    def forward(self, x: torch.Tensor):  # type: ignore[override]
        outputs: List[Optional[torch.Tensor]] = []
        for i, (m, src) in enumerate(zip(self.model, self.sources)):
            if isinstance(src, list):
                x = [x if j == -1 else outputs[j] for j in src]  # type: ignore[assignment]
            x = m(x)
            outputs.append(x if i in self.save else None)
        return x

    def fuse(self) -> "YOLO":
        """Fold every BatchNorm into its conv, for inference and export."""
        for m in self.modules():
            if isinstance(m, Conv):
                m.fuse()
        return self


def parse_preset(name: str) -> Tuple[str, str]:
    """'yolov8n' -> ('detect', 'n'); 'yolov8s-cls' -> ('classify', 's'). Raises ValueError for anything else."""
    base = name.strip().lower()
    for suffix in (".pt", ".yaml"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    task = "detect"
    if base.endswith("-cls"):
        task, base = "classify", base[: -len("-cls")]
    if not base.startswith("yolov8") or len(base) != 7 or base[6] not in DETECT_SCALES:
        raise ValueError(f"unknown model preset {name!r}; expected one of {', '.join(PRESETS)}")
    return task, base[6]


PRESETS = [f"yolov8{s}" for s in DETECT_SCALES] + [f"yolov8{s}-cls" for s in DETECT_SCALES]


def build_model(name: str, nc: int = 80, names: Optional[Sequence[str]] = None) -> YOLO:
    """Build a freshly initialised preset: ``yolov8{p,n,s,m,l,x}`` (detect) or ``yolov8{…}-cls`` (classify)."""
    task, scale = parse_preset(name)
    if nc < 1:
        raise ValueError(f"nc must be >= 1, got {nc}")
    if names is not None and len(names) != nc:
        raise ValueError(f"{len(names)} class names for nc={nc}")
    preset = f"yolov8{scale}" + ("-cls" if task == "classify" else "")
    return YOLO(task, scale, nc, names, preset)
