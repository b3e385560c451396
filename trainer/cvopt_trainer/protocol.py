"""The worker protocol: one JSON object per line on stdout; human logs on stderr.

Mirrors packages/core/src/worker.ts; contracts/worker-messages.json holds examples both sides validate.
"""
from __future__ import annotations

import json
import math
import sys
from typing import Any, Dict, Optional, TextIO


class WorkerError(Exception):
    """An error with a stable code from the TypeScript error catalogue (packages/core/src/errors.ts)."""

    def __init__(self, code: str, message: str, hint: Optional[str] = None,
                 where: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.where = where


def _clean(value: Any) -> Any:
    """JSON has no NaN/Infinity: send them as null so the TS side never chokes on a line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class Emitter:
    """Writes protocol messages. Tests pass a StringIO to capture them."""

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out

    def _send(self, msg: Dict[str, Any]) -> None:
        self.out.write(json.dumps(_clean(msg), separators=(",", ":")) + "\n")
        self.out.flush()

    def progress(self, stage: str, step: int, total: int, message: Optional[str] = None) -> None:
        msg: Dict[str, Any] = {"type": "progress", "stage": stage, "step": int(step), "total": int(total)}
        if message is not None:
            msg["message"] = message
        self._send(msg)

    def metric(self, values: Dict[str, float], stage: Optional[str] = None, epoch: Optional[int] = None) -> None:
        msg: Dict[str, Any] = {"type": "metric", "values": {k: float(v) for k, v in values.items()}}
        if stage is not None:
            msg["stage"] = stage
        if epoch is not None:
            msg["epoch"] = int(epoch)
        self._send(msg)

    def result(self, data: Dict[str, Any]) -> None:
        self._send({"type": "result", "data": data})

    def error(self, code: str, message: str, hint: Optional[str] = None,
              where: Optional[Dict[str, Any]] = None) -> None:
        msg: Dict[str, Any] = {"type": "error", "code": code, "message": message}
        if hint:
            msg["hint"] = hint
        if where:
            msg["where"] = where
        self._send(msg)


def log(*parts: Any) -> None:
    """Human-readable log line on stderr."""
    print(*parts, file=sys.stderr, flush=True)
