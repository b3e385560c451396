"""Bounded reads of files a dataset or model names: a path from a user may be a FIFO (reading blocks forever), a
device such as /dev/zero (never ends) or far larger than its kind can be. Open without blocking, check through the
descriptor, read at most the cap."""
from __future__ import annotations

import os
import stat
from typing import Optional

# Mirrors DEFAULT_READ_LIMITS in packages/datasets/src/read.ts.
LABEL_MAX_BYTES = 8 << 20
IMAGE_MAX_BYTES = 512 << 20


class FileRefused(Exception):
    """Why a path cannot be read: `reason` is missing | not-regular | too-large | unreadable."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _open_regular(path: str, max_bytes: int) -> "tuple[int, int]":
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileRefused("missing", "does not exist") from None
    except OSError as e:
        raise FileRefused("unreadable", f"cannot be opened: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FileRefused("not-regular", f"is {_kind(st.st_mode)}, not a regular file")
    if st.st_size > max_bytes:
        os.close(fd)
        raise FileRefused("too-large", f"is {st.st_size} bytes, over the limit of {max_bytes}")
    return fd, st.st_size


def read_bounded(path: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most max_bytes; FileRefused otherwise. Never blocks, never reads past."""
    fd, _size = _open_regular(path, max_bytes)
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileRefused("too-large", f"grew past the limit of {max_bytes} bytes while being read")
    return data


def check_regular(path: str, max_bytes: int) -> Optional[int]:
    """The size of a regular file of at most max_bytes (for readers that open by path); FileRefused otherwise."""
    fd, size = _open_regular(path, max_bytes)
    os.close(fd)
    return size
