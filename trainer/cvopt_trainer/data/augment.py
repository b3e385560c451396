"""Image and box augmentations (cv2 + numpy). Every function takes its numpy Generator explicitly.

Boxes here are pixel xyxy with a leading class column: rows (class, x1, y1, x2, y2).
"""
from __future__ import annotations

import math
from typing import Tuple

import cv2
import numpy as np

PAD = 114


def letterbox(img: np.ndarray, size: int, pad_value: int = PAD, scaleup: bool = True
              ) -> Tuple[np.ndarray, float, Tuple[float, float]]:
    """Resize keeping aspect ratio to fit size×size, pad the rest evenly. Returns (image, ratio, (padx, pady))."""
    h, w = img.shape[:2]
    r = size / max(h, w)
    if not scaleup:
        r = min(r, 1.0)
    nw, nh = int(round(w * r)), int(round(h * r))
    if (nw, nh) != (w, h):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    dw, dh = (size - nw) / 2, (size - nh) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad_value,) * 3)
    return img, r, (float(left), float(top))


def augment_hsv(img: np.ndarray, rng: np.random.Generator, hgain: float, sgain: float, vgain: float) -> None:
    """Random hue/saturation/value gains, in place (BGR uint8), through lookup tables for speed."""
    if not (hgain or sgain or vgain):
        return
    r = rng.uniform(-1, 1, 3) * [hgain, sgain, vgain] + 1
    hue, sat, val = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
    x = np.arange(0, 256, dtype=r.dtype)
    lut_hue = ((x * r[0]) % 180).astype(np.uint8)
    lut_sat = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(x * r[2], 0, 255).astype(np.uint8)
    merged = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    cv2.cvtColor(merged, cv2.COLOR_HSV2BGR, dst=img)


def random_affine(img: np.ndarray, labels: np.ndarray, rng: np.random.Generator, out_size: int,
                  degrees: float, translate: float, scale: float, shear: float, perspective: float
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """Rotate, scale, shear, translate (and optionally perspective-warp) about the image centre; crop to
    out_size×out_size. Boxes become the bounds of their warped corners; degenerate ones are dropped."""
    h, w = img.shape[:2]
    c = np.eye(3)
    c[0, 2], c[1, 2] = -w / 2, -h / 2
    p = np.eye(3)
    p[2, 0], p[2, 1] = rng.uniform(-perspective, perspective), rng.uniform(-perspective, perspective)
    r = np.eye(3)
    angle = rng.uniform(-degrees, degrees)
    s = rng.uniform(1 - scale, 1 + scale)
    r[:2] = cv2.getRotationMatrix2D(angle=angle, center=(0, 0), scale=s)
    sh = np.eye(3)
    sh[0, 1] = math.tan(rng.uniform(-shear, shear) * math.pi / 180)
    sh[1, 0] = math.tan(rng.uniform(-shear, shear) * math.pi / 180)
    t = np.eye(3)
    t[0, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * out_size
    t[1, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * out_size
    m = t @ sh @ r @ p @ c
    if perspective:
        img = cv2.warpPerspective(img, m, dsize=(out_size, out_size), borderValue=(PAD,) * 3)
    else:
        img = cv2.warpAffine(img, m[:2], dsize=(out_size, out_size), borderValue=(PAD,) * 3)
    n = len(labels)
    if n == 0:
        return img, labels
    corners = np.ones((n * 4, 3))
    corners[:, :2] = labels[:, [1, 2, 3, 4, 1, 4, 3, 2]].reshape(n * 4, 2)
    corners = corners @ m.T
    corners = (corners[:, :2] / corners[:, 2:3] if perspective else corners[:, :2]).reshape(n, 8)
    xs, ys = corners[:, [0, 2, 4, 6]], corners[:, [1, 3, 5, 7]]
    boxes = np.stack((xs.min(1), ys.min(1), xs.max(1), ys.max(1)), 1).clip(0, out_size)
    keep = box_candidates(labels[:, 1:5] * s, boxes)
    out = np.concatenate((labels[keep, :1], boxes[keep]), 1).astype(np.float32)
    return img, out


def box_candidates(before: np.ndarray, after: np.ndarray, wh_thr: float = 2, ar_thr: float = 100,
                   area_thr: float = 0.1, eps: float = 1e-16) -> np.ndarray:
    """Keep boxes still at least 2 px wide and tall, with 10 % of their (scaled) area left, not needle-thin."""
    w1, h1 = before[:, 2] - before[:, 0], before[:, 3] - before[:, 1]
    w2, h2 = after[:, 2] - after[:, 0], after[:, 3] - after[:, 1]
    ar = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > wh_thr) & (h2 > wh_thr) & (w2 * h2 / (w1 * h1 + eps) > area_thr) & (ar < ar_thr)


def mosaic4(images, labels, rng: np.random.Generator, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Four images around a random centre on a 2s×2s canvas; labels in pixel xyxy (class first)."""
    cx, cy = (int(rng.uniform(size * 0.5, size * 1.5)) for _ in range(2))
    canvas = np.full((size * 2, size * 2, 3), PAD, dtype=np.uint8)
    out = []
    for i, (img, lab) in enumerate(zip(images, labels)):
        h, w = img.shape[:2]
        if i == 0:  # top left
            x1a, y1a, x2a, y2a = max(cx - w, 0), max(cy - h, 0), cx, cy
            x1b, y1b, x2b, y2b = w - (x2a - x1a), h - (y2a - y1a), w, h
        elif i == 1:  # top right
            x1a, y1a, x2a, y2a = cx, max(cy - h, 0), min(cx + w, size * 2), cy
            x1b, y1b, x2b, y2b = 0, h - (y2a - y1a), min(w, x2a - x1a), h
        elif i == 2:  # bottom left
            x1a, y1a, x2a, y2a = max(cx - w, 0), cy, cx, min(size * 2, cy + h)
            x1b, y1b, x2b, y2b = w - (x2a - x1a), 0, w, min(y2a - y1a, h)
        else:  # bottom right
            x1a, y1a, x2a, y2a = cx, cy, min(cx + w, size * 2), min(size * 2, cy + h)
            x1b, y1b, x2b, y2b = 0, 0, min(w, x2a - x1a), min(y2a - y1a, h)
        canvas[y1a:y2a, x1a:x2a] = img[y1b:y2b, x1b:x2b]
        if len(lab):
            b = normalised_to_pixels(lab, w, h, x1a - x1b, y1a - y1b)
            out.append(b)
    lab = np.concatenate(out, 0) if out else np.zeros((0, 5), np.float32)
    lab[:, 1:] = lab[:, 1:].clip(0, 2 * size)
    return canvas, lab


def normalised_to_pixels(labels: np.ndarray, w: float, h: float, padw: float = 0, padh: float = 0) -> np.ndarray:
    """(class, cx, cy, w, h) normalised -> (class, x1, y1, x2, y2) pixels."""
    out = np.empty_like(labels, dtype=np.float32)
    out[:, 0] = labels[:, 0]
    out[:, 1] = w * (labels[:, 1] - labels[:, 3] / 2) + padw
    out[:, 2] = h * (labels[:, 2] - labels[:, 4] / 2) + padh
    out[:, 3] = w * (labels[:, 1] + labels[:, 3] / 2) + padw
    out[:, 4] = h * (labels[:, 2] + labels[:, 4] / 2) + padh
    return out


def pixels_to_normalised(labels: np.ndarray, w: float, h: float) -> np.ndarray:
    out = np.empty_like(labels, dtype=np.float32)
    out[:, 0] = labels[:, 0]
    out[:, 1] = (labels[:, 1] + labels[:, 3]) / 2 / w
    out[:, 2] = (labels[:, 2] + labels[:, 4]) / 2 / h
    out[:, 3] = (labels[:, 3] - labels[:, 1]) / w
    out[:, 4] = (labels[:, 4] - labels[:, 2]) / h
    return out
