"""Datasets over the explicit file lists the TypeScript side resolves.

Randomness comes from a numpy Generator seeded by (seed, epoch, index), so a sample is the same whichever
worker process draws it, and an epoch replays exactly after a resume.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..protocol import WorkerError
from .augment import (PAD, augment_hsv, letterbox, mosaic4, normalised_to_pixels, pixels_to_normalised,
                      random_affine)
from .labels import read_labels
from ..utils.files import IMAGE_MAX_BYTES, FileRefused, check_regular

# Decoded images are kept in RAM when they fit this budget; above it they are decoded on every access.
CACHE_BYTES = 2 * 1024 ** 3


def read_image(path: str) -> np.ndarray:
    try:
        # cv2 opens by path: a FIFO would block it and /dev/zero never ends
        check_regular(path, IMAGE_MAX_BYTES)
    except FileRefused as e:
        raise WorkerError("IMAGE_INVALID", f"image {path} {e}",
                          hint="a dataset image must be a regular image file; remove it or replace it",
                          where={"file": path}) from None
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise WorkerError("IMAGE_INVALID", f"cannot decode image {path}",
                          hint="the file is missing, truncated or not an image; re-export it or remove it "
                               "from the dataset", where={"file": path})
    return img


def _items(items: Any, key: str, field: str) -> List[Dict[str, Any]]:
    if not isinstance(items, list):
        raise WorkerError("DATASET_INVALID", f"data.{field} must be a list of {{image, {key}}} objects",
                          where={"field": f"data.{field}"})
    for i, it in enumerate(items):
        if not isinstance(it, dict) or not isinstance(it.get("image"), str):
            raise WorkerError("DATASET_INVALID", f"data.{field}[{i}] has no 'image' path",
                              where={"field": f"data.{field}[{i}].image"})
    return items


class _Cached:
    """Images resized so the long side is imgsz (BGR uint8), decoded once when the set fits CACHE_BYTES."""

    def __init__(self, paths: Sequence[str], imgsz: int, cache: Optional[bool]):
        self.paths = list(paths)
        self.imgsz = imgsz
        if cache is None:
            cache = len(self.paths) * imgsz * imgsz * 3 <= CACHE_BYTES
        self.store: Optional[List[Tuple[np.ndarray, Tuple[int, int]]]] = None
        if cache:
            self.store = [self._load(i) for i in range(len(self.paths))]

    def _load(self, i: int) -> Tuple[np.ndarray, Tuple[int, int]]:
        img = read_image(self.paths[i])
        h0, w0 = img.shape[:2]
        r = self.imgsz / max(h0, w0)
        if r != 1:
            img = cv2.resize(img, (max(1, math.ceil(w0 * r)), max(1, math.ceil(h0 * r))),
                             interpolation=cv2.INTER_LINEAR if r > 1 else cv2.INTER_AREA)
        return img, (h0, w0)

    def __getitem__(self, i: int) -> Tuple[np.ndarray, Tuple[int, int]]:
        return self.store[i] if self.store is not None else self._load(i)

    def __len__(self) -> int:
        return len(self.paths)


class DetectionDataset(Dataset):
    """Yields (image uint8 [3,S,S] RGB, labels [n,5] class+normalised cx cy w h, meta dict)."""

    def __init__(self, items: Any, nc: int, imgsz: int, hyp: Dict[str, float], augment: bool, seed: int = 0,
                 field: str = "train", cache: Optional[bool] = None):
        items = _items(items, "label", field)
        self.labels = [read_labels(it.get("label") or "", nc) for it in items]
        self.images = _Cached([it["image"] for it in items], imgsz, cache)
        self.imgsz = imgsz
        self.hyp = hyp
        self.augment = augment
        self.seed = seed
        self.mosaic = augment and hyp.get("mosaic", 0) > 0

    def __len__(self) -> int:
        return len(self.labels)

    def _letterboxed(self, i: int) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
        img, (h0, w0) = self.images[i]
        h, w = img.shape[:2]
        img, r, (padx, pady) = letterbox(img, self.imgsz)
        lab = normalised_to_pixels(self.labels[i], w * r, h * r, padx, pady)
        # ratio/pad map network pixels back to the original image: x0 = (x - pad) / gain.
        gain = (w * r) / w0
        return img, lab, {"orig_shape": (h0, w0), "gain": gain, "pad": (padx, pady)}

    def _mosaic(self, i: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        idx = [i] + [int(j) for j in rng.integers(0, len(self), 3)]
        imgs = [self.images[j][0] for j in idx]
        img, lab = mosaic4(imgs, [self.labels[j] for j in idx], rng, self.imgsz)
        h = self.hyp
        return random_affine(img, lab, rng, self.imgsz, h["degrees"], h["translate"], h["scale"], h["shear"],
                             h["perspective"])

    def _train_sample(self, i: int, rng: np.random.Generator, mosaic: bool) -> Tuple[np.ndarray, np.ndarray]:
        h = self.hyp
        if mosaic and rng.random() < h["mosaic"]:
            return self._mosaic(i, rng)
        img, lab, _ = self._letterboxed(i)
        return random_affine(img, lab, rng, self.imgsz, h["degrees"], h["translate"], h["scale"], h["shear"],
                             h["perspective"])

    def __getitem__(self, key):
        """key: an index, or (index, epoch, mosaic) as EpochLoader sends; the epoch seeds the augmentation."""
        i, epoch, mosaic = key if isinstance(key, tuple) else (key, 0, True)
        mosaic = mosaic and self.mosaic
        s = self.imgsz
        if not self.augment:
            img, lab, meta = self._letterboxed(i)
        else:
            rng = np.random.default_rng([self.seed, epoch, i])
            h = self.hyp
            img, lab = self._train_sample(i, rng, mosaic)
            if h["mixup"] > 0 and rng.random() < h["mixup"]:
                img2, lab2 = self._train_sample(int(rng.integers(0, len(self))), rng, mosaic)
                r = rng.beta(32.0, 32.0)
                img = (img.astype(np.float32) * r + img2.astype(np.float32) * (1 - r)).astype(np.uint8)
                lab = np.concatenate((lab, lab2), 0)
            img = np.ascontiguousarray(img)
            augment_hsv(img, rng, h["hsv_h"], h["hsv_s"], h["hsv_v"])
            if rng.random() < h["flipud"]:
                img = img[::-1]
                lab[:, [2, 4]] = s - lab[:, [4, 2]]
            if rng.random() < h["fliplr"]:
                img = img[:, ::-1]
                lab[:, [1, 3]] = s - lab[:, [3, 1]]
            meta = {}
        labels = pixels_to_normalised(lab, s, s) if len(lab) else np.zeros((0, 5), np.float32)
        tensor = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)))  # BGR HWC -> RGB CHW
        meta["index"] = i
        return tensor, torch.from_numpy(labels), meta


class ClassificationDataset(Dataset):
    """Yields (image uint8 [3,S,S] RGB, class id, meta). Train: random resized crop, flips, HSV.
    Eval: shorter side resized to S, centre crop S×S."""

    def __init__(self, items: Any, nc: int, imgsz: int, hyp: Dict[str, float], augment: bool, seed: int = 0,
                 field: str = "train", cache: Optional[bool] = None):
        items = _items(items, "classId", field)
        self.targets = []
        for i, it in enumerate(items):
            k = it.get("classId")
            if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < nc:
                raise WorkerError("DATASET_INVALID", f"data.{field}[{i}].classId must be an integer in 0..{nc - 1}",
                                  where={"field": f"data.{field}[{i}].classId", "file": it["image"]})
            self.targets.append(k)
        # Cache at a little above the crop size so crops keep detail.
        self.images = _Cached([it["image"] for it in items], int(imgsz * 1.15), cache)
        self.imgsz = imgsz
        self.hyp = hyp
        self.augment = augment
        self.seed = seed

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, key):
        i, epoch, _ = key if isinstance(key, tuple) else (key, 0, False)
        img, _ = self.images[i]
        s = self.imgsz
        h, w = img.shape[:2]
        if self.augment:
            rng = np.random.default_rng([self.seed, epoch, i])
            hyp = self.hyp
            area = h * w * rng.uniform(max(1 - hyp["scale"], 0.08), 1.0)
            ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw = int(round(min(w, math.sqrt(area * ratio))))
            ch = int(round(min(h, math.sqrt(area / ratio))))
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            img = cv2.resize(img[y0:y0 + ch, x0:x0 + cw], (s, s), interpolation=cv2.INTER_LINEAR)
            augment_hsv(img, rng, hyp["hsv_h"], hyp["hsv_s"], hyp["hsv_v"])
            if rng.random() < hyp["fliplr"]:
                img = img[:, ::-1]
            if rng.random() < hyp["flipud"]:
                img = img[::-1]
        else:
            r = s / min(h, w)
            img = cv2.resize(img, (max(s, round(w * r)), max(s, round(h * r))), interpolation=cv2.INTER_LINEAR)
            h, w = img.shape[:2]
            y0, x0 = (h - s) // 2, (w - s) // 2
            img = img[y0:y0 + s, x0:x0 + s]
        tensor = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)))
        return tensor, self.targets[i], {"index": i}


def collate_detect(batch):
    """Stack images; targets become [K, 6] rows (image index in batch, class, cx, cy, w, h)."""
    imgs, labels, metas = zip(*batch)
    rows = [torch.cat((torch.full((len(lab), 1), float(i)), lab), 1) for i, lab in enumerate(labels)]
    return torch.stack(imgs), torch.cat(rows, 0) if rows else torch.zeros(0, 6), list(metas)


def collate_classify(batch):
    imgs, targets, metas = zip(*batch)
    return torch.stack(imgs), torch.tensor(targets, dtype=torch.long), list(metas)


__all__ = ["DetectionDataset", "ClassificationDataset", "collate_detect", "collate_classify", "read_image", "PAD"]
