"""Data pipeline: strict label reading, cached decoding, seeded augmentations, epoch loaders."""
from .augment import letterbox
from .dataset import ClassificationDataset, DetectionDataset, collate_classify, collate_detect, read_image
from .labels import read_labels
from .loader import EpochLoader, default_workers

__all__ = ["DetectionDataset", "ClassificationDataset", "EpochLoader", "collate_detect", "collate_classify",
           "read_labels", "read_image", "letterbox", "default_workers"]
