"""YOLOv8-architecture models: ``build_model(name, nc)`` for the presets in ``PRESETS``."""
from .common import C2f, DFL, SPPF, Bottleneck, Concat, Conv
from .heads import Classify, Detect
from .yolo import CLASSIFY_SCALES, DETECT_SCALES, PRESETS, YOLO, build_model, parse_preset

__all__ = ["build_model", "parse_preset", "PRESETS", "DETECT_SCALES", "CLASSIFY_SCALES", "YOLO", "Conv",
           "Bottleneck", "C2f", "SPPF", "Concat", "DFL", "Detect", "Classify"]
