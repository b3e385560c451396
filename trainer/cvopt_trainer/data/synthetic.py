"""Tiny synthetic shape datasets for tests, benchmarks and the quickstart (drawn here, no downloads).

Classes: 0 square, 1 circle, 2 triangle, each in a random colour on a noisy background.
"""
from __future__ import annotations

import os
from typing import Dict, List, Tuple

import cv2
import numpy as np

NAMES = ["square", "circle", "triangle"]


def _draw(img: np.ndarray, cls: int, x1: int, y1: int, x2: int, y2: int, colour) -> None:
    if cls == 0:
        img[y1:y2, x1:x2] = colour
    elif cls == 1:
        cv2.ellipse(img, ((x1 + x2) // 2, (y1 + y2) // 2), ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360, colour, -1)
    else:
        pts = np.array([[(x1 + x2) // 2, y1], [x1, y2 - 1], [x2 - 1, y2 - 1]], np.int32)
        cv2.fillPoly(img, [pts], colour)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.integers(0, 256, 3)
    noise = rng.integers(-20, 21, (size, size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _colour(rng: np.random.Generator, bg: np.ndarray) -> Tuple[int, int, int]:
    while True:  # keep shapes visible against the background
        c = rng.integers(0, 256, 3)
        if np.abs(c - bg.reshape(-1, 3).mean(0)).sum() > 150:
            return tuple(int(v) for v in c)


def write_detect(out: str, n: int, size: int = 128, seed: int = 0, max_objects: int = 3, split: str = "train"
                 ) -> List[Dict[str, str]]:
    """Write n images with YOLO labels under out/{images,labels}/split; returns the train-args item list."""
    rng = np.random.default_rng(seed)
    img_dir, lab_dir = os.path.join(out, "images", split), os.path.join(out, "labels", split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(lab_dir, exist_ok=True)
    items = []
    for i in range(n):
        img = _background(rng, size)
        rows = []
        for _ in range(int(rng.integers(0 if i % 10 == 9 else 1, max_objects + 1))):
            cls = int(rng.integers(0, 3))
            w, h = (int(v) for v in rng.integers(size // 8, size // 3, 2))
            x1, y1 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            _draw(img, cls, x1, y1, x1 + w, y1 + h, _colour(rng, img))
            rows.append(f"{cls} {(x1 + w / 2) / size:.6f} {(y1 + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}")
        stem = f"{split}_{i:05d}"
        image, label = os.path.join(img_dir, stem + ".png"), os.path.join(lab_dir, stem + ".txt")
        cv2.imwrite(image, img)
        with open(label, "w") as f:
            f.write("\n".join(rows) + ("\n" if rows else ""))
        items.append({"image": os.path.abspath(image), "label": os.path.abspath(label)})
    return items


def write_classify(out: str, n: int, size: int = 64, seed: int = 0, split: str = "train") -> List[Dict]:
    """Write n single-shape images under out/split/<class>/; returns the train-args item list."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        cls = i % 3
        img = _background(rng, size)
        w, h = (int(v) for v in rng.integers(size // 2, size * 9 // 10, 2))
        x1, y1 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
        _draw(img, cls, x1, y1, x1 + w, y1 + h, _colour(rng, img))
        d = os.path.join(out, split, NAMES[cls])
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"{i:05d}.png")
        cv2.imwrite(path, img)
        items.append({"image": os.path.abspath(path), "classId": cls})
    return items
