"""Evaluation: COCO-style mAP (``evaluate``), NMS, top-k accuracy."""
from .classify import topk_accuracy
from .coco import IOU_THRESHOLDS, ImageBoxes, evaluate
from .nms import non_max_suppression

__all__ = ["evaluate", "ImageBoxes", "IOU_THRESHOLDS", "non_max_suppression", "topk_accuracy"]
