"""Per-epoch results of a run as files a person opens: ``results.csv`` (one row per epoch, rewritten atomically
after each epoch so a reader never sees half a row) and ``results.svg`` (losses and validation metrics per epoch,
one small panel each). Both are rebuilt from the run's history, so a resumed run writes the whole run."""
from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Sequence

# Panel order: losses first, then the validation figures people look for.
_PREFERRED = ("box_loss", "cls_loss", "dfl_loss", "loss", "map50", "map5095", "precision", "recall", "top1", "top5",
              "fitness", "lr")


def _columns(history: Sequence[Dict[str, Any]]) -> List[str]:
    keys: List[str] = []
    for row in history:
        for k, v in row.items():
            if k != "epoch" and isinstance(v, (int, float)) and k not in keys:
                keys.append(k)
    ordered = [k for k in _PREFERRED if k in keys]
    return ordered + sorted(k for k in keys if k not in ordered)


class ProgressFile:
    """``progress.json`` in the run folder: what a dashboard (``cvopt tui``) shows of a live run without a pipe to
    it. Rewritten atomically, at most every ``interval`` seconds unless forced."""

    def __init__(self, path: str, epochs: int, interval: float = 0.5):
        self.path, self.epochs, self.interval = path, epochs, interval
        self.last = 0.0

    def write(self, state: str, epoch: int, step: int, total: int, message: str = "", force: bool = False,
              metrics: Dict[str, Any] | None = None) -> None:
        import json
        import time

        now = time.time()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        doc = {"kind": "train", "state": state, "epoch": epoch, "epochs": self.epochs, "step": step, "total": total,
               "message": message, "pid": os.getpid(), "updatedAt": now, "metrics": metrics or {}}
        try:
            _write_atomic(self.path, json.dumps(doc))
        except OSError:  # pragma: no cover - a dashboard file never stops training
            pass


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def write_results_csv(path: str, history: Sequence[Dict[str, Any]]) -> None:
    cols = _columns(history)
    lines = [",".join(["epoch", *cols])]
    for row in history:
        cells = [str(int(row["epoch"]) + 1)]
        for c in cols:
            v = row.get(c)
            cells.append("" if v is None else f"{float(v):.6g}")
        lines.append(",".join(cells))
    _write_atomic(path, "\n".join(lines) + "\n")


def _nice_ticks(lo: float, hi: float, n: int = 3) -> List[float]:
    """Round tick values (1, 2 or 5 × 10^k steps) covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    return f"{v:.0f}" if a >= 100 else f"{v:.3g}"


def write_results_svg(path: str, history: Sequence[Dict[str, Any]], title: str = "") -> None:
    cols = _columns(history)
    if not history or not cols:
        return
    pw, ph, pad_l, pad_b, pad_t, gap = 220, 130, 42, 22, 20, 14
    per_row = 4
    rows = math.ceil(len(cols) / per_row)
    width = per_row * (pw + gap) + gap
    height = rows * (ph + gap) + gap + (24 if title else 0)
    top0 = 24 if title else 0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="10">', f'<rect width="{width}" height="{height}" fill="white"/>']
    if title:
        out.append(f'<text x="{gap}" y="16" font-size="13">{_escape(title)}</text>')
    epochs = [int(r["epoch"]) + 1 for r in history]
    x_lo, x_hi = min(epochs), max(epochs)
    for i, col in enumerate(cols):
        ox = gap + (i % per_row) * (pw + gap)
        oy = top0 + gap + (i // per_row) * (ph + gap)
        pts = [(int(r["epoch"]) + 1, float(r[col])) for r in history
               if isinstance(r.get(col), (int, float)) and math.isfinite(float(r[col]))]
        out.append(f'<text x="{ox + pad_l}" y="{oy + 12}" font-weight="bold">{_escape(col)}</text>')
        if not pts:
            continue
        vals = [v for _, v in pts]
        lo, hi = min(vals), max(vals)
        # Metrics in [0, 1] keep an honest axis from 0; losses zoom to their range.
        if col in ("map50", "map5095", "precision", "recall", "top1", "top5") and lo >= 0 and hi <= 1:
            lo = 0.0
            hi = max(hi, 1e-9)
        yt = _nice_ticks(lo, hi)
        ylo, yhi = (yt[0], yt[-1]) if len(yt) >= 2 else (lo, hi if hi > lo else lo + 1)
        x0, x1, y0, y1 = ox + pad_l, ox + pw, oy + ph - pad_b, oy + pad_t

        def sx(e: float) -> float:
            return x0 + (0.5 if x_hi == x_lo else (e - x_lo) / (x_hi - x_lo)) * (x1 - x0)

        def sy(v: float) -> float:
            return y0 - (v - ylo) / ((yhi - ylo) or 1) * (y0 - y1)

        out.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#ccc"/>')
        for t in yt:
            y = sy(t)
            out.append(f'<line x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
            out.append(f'<text x="{x0 - 4}" y="{y + 3:.1f}" text-anchor="end">{_fmt(t)}</text>')
        for e in _nice_ticks(x_lo, x_hi, 4):
            if x_lo <= e <= x_hi and float(e).is_integer():
                out.append(f'<text x="{sx(e):.1f}" y="{y0 + 12}" text-anchor="middle">{int(e)}</text>')
        poly = " ".join(f"{sx(e):.1f},{sy(v):.1f}" for e, v in pts)
        out.append(f'<polyline points="{poly}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>')
        for e, v in pts[-1:]:
            out.append(f'<circle cx="{sx(e):.1f}" cy="{sy(v):.1f}" r="2.5" fill="#1f77b4"/>')
    out.append(f'<text x="{width - gap}" y="{height - 3}" text-anchor="end" fill="#666">epoch</text>')
    out.append("</svg>")
    _write_atomic(path, "\n".join(out) + "\n")


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
