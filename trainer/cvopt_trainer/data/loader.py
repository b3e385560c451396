"""DataLoader construction with a seeded, worker-independent sample order."""
from __future__ import annotations

import os
from typing import Iterator, List, Optional, Tuple

import torch
from torch.utils.data import DataLoader, Sampler

from .dataset import ClassificationDataset, collate_classify, collate_detect
from ..protocol import WorkerError


def default_workers() -> int:
    return min(2, os.cpu_count() or 1)


def _reraise_worker_error(e: RuntimeError) -> None:
    """A WorkerError raised in a loader process arrives as a RuntimeError carrying its traceback text;
    turn it back into the WorkerError so the user sees the image or label problem, not a stack trace."""
    text = str(e)
    marker = "WorkerError: "
    if marker in text:
        msg = text.rsplit(marker, 1)[1].strip().splitlines()[0]
        code = "LABEL_INVALID" if "label" in msg else "IMAGE_INVALID"
        raise WorkerError(code, msg) from None


class _KeySampler(Sampler):
    """Yields the sample keys of the current epoch. It runs in the main process, so persistent workers see each
    epoch's (index, epoch, mosaic) without being restarted."""

    def __init__(self) -> None:
        self.keys: List[Tuple[int, int, bool]] = []

    def __iter__(self) -> Iterator[Tuple[int, int, bool]]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


class EpochLoader:
    """Iterates one epoch at a time; the order is a permutation seeded by (seed, epoch). Worker processes are
    started once and kept for the whole run."""

    def __init__(self, dataset, batch: int, shuffle: bool, workers: int, seed: int = 0,
                 pin_memory: bool = False):
        self.dataset = dataset
        self.batch = batch
        self.shuffle = shuffle
        self.workers = workers
        self.seed = seed
        self.sampler = _KeySampler()
        collate = collate_classify if isinstance(dataset, ClassificationDataset) else collate_detect
        self.loader = DataLoader(dataset, batch_size=batch, sampler=self.sampler, num_workers=workers,
                                 collate_fn=collate, pin_memory=pin_memory, drop_last=False,
                                 persistent_workers=workers > 0)

    def __len__(self) -> int:
        return (len(self.dataset) + self.batch - 1) // self.batch

    def epoch(self, epoch: int, mosaic: Optional[bool] = None):
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed * 100_003 + epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        use_mosaic = True if mosaic is None else bool(mosaic)
        self.sampler.keys = [(i, epoch, use_mosaic) for i in order]
        try:
            yield from self.loader
        except RuntimeError as e:
            _reraise_worker_error(e)
            raise
