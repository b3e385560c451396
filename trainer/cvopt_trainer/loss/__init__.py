"""Losses and target assignment: ``DetectionLoss``, ``ClassificationLoss``, ``TaskAlignedAssigner``."""
from .assigner import TaskAlignedAssigner
from .classification import ClassificationLoss
from .detection import DetectionLoss, dfl_loss

__all__ = ["TaskAlignedAssigner", "DetectionLoss", "ClassificationLoss", "dfl_loss"]
