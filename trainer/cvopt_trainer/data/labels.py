"""Strict YOLO label reading: every problem names the file and line and says how to fix it."""
from __future__ import annotations

import math

import numpy as np

from ..protocol import WorkerError
from ..utils.files import LABEL_MAX_BYTES, FileRefused, read_bounded

# Rounding in label exporters leaves coordinates a hair outside 0..1; more than this is a real error.
COORD_TOLERANCE = 1e-3


def read_labels(path: str, nc: int) -> np.ndarray:
    """Rows (class, cx, cy, w, h), normalised. A missing file is a background image (no rows)."""
    if not path:
        return np.zeros((0, 5), dtype=np.float32)
    try:
        lines = read_bounded(path, LABEL_MAX_BYTES).decode("utf-8").splitlines()
    except FileRefused as e:
        if e.reason == "missing":
            return np.zeros((0, 5), dtype=np.float32)
        raise WorkerError("LABEL_INVALID", f"label file {path} {e}",
                          hint="label files are regular UTF-8 text files, one 'class cx cy w h' row per object",
                          where={"file": path}) from None
    except (OSError, UnicodeDecodeError) as e:
        raise WorkerError("LABEL_INVALID", f"cannot read label file {path}: {e}",
                          hint="label files are UTF-8 text, one 'class cx cy w h' row per object",
                          where={"file": path}) from None
    rows = []
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        where = {"file": path, "line": n}
        if len(parts) != 5:
            raise WorkerError("LABEL_INVALID",
                              f"{path}:{n}: expected 5 values 'class cx cy w h', got {len(parts)}",
                              hint="detection labels have exactly five numbers per row; segmentation polygons "
                                   "must be converted to boxes first", where=where)
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise WorkerError("LABEL_INVALID", f"{path}:{n}: not a number in {line.strip()!r}",
                              hint="write plain decimal numbers", where=where) from None
        cls, cx, cy, w, h = values
        if not all(math.isfinite(v) for v in values):
            raise WorkerError("LABEL_INVALID", f"{path}:{n}: NaN or infinite value", where=where,
                              hint="write finite numbers")
        if cls != int(cls) or not 0 <= cls < nc:
            raise WorkerError("LABEL_INVALID", f"{path}:{n}: class {parts[0]} is not an integer in 0..{nc - 1}",
                              hint=f"the dataset declares {nc} class names; fix the id or add the name",
                              where=where)
        lo, hi = -COORD_TOLERANCE, 1 + COORD_TOLERANCE
        if not (lo <= cx <= hi and lo <= cy <= hi and 0 < w <= hi and 0 < h <= hi):
            raise WorkerError("LABEL_INVALID",
                              f"{path}:{n}: box ({cx:g}, {cy:g}, {w:g}, {h:g}) is not normalised to 0..1 "
                              "with positive width and height",
                              hint="divide centre x and width by the image width, centre y and height by its "
                                   "height", where=where)
        rows.append(values)
    if not rows:
        return np.zeros((0, 5), dtype=np.float32)
    out = np.array(rows, dtype=np.float32)
    out[:, 1:] = out[:, 1:].clip(0, 1)
    return out
