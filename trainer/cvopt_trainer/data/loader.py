"""DataLoader construction with a seeded, worker-independent sample order."""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch.utils.data import DataLoader

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


class EpochLoader:
    """Iterates one epoch at a time; the order is a permutation seeded by (seed, epoch)."""

    def __init__(self, dataset, batch: int, shuffle: bool, workers: int, seed: int = 0,
                 pin_memory: bool = False):
        self.dataset = dataset
        self.batch = batch
        self.shuffle = shuffle
        self.workers = workers
        self.seed = seed
        self.pin_memory = pin_memory
        self.collate = collate_classify if isinstance(dataset, ClassificationDataset) else collate_detect

    def __len__(self) -> int:
        return (len(self.dataset) + self.batch - 1) // self.batch

    def epoch(self, epoch: int, mosaic: Optional[bool] = None):
        self.dataset.set_epoch(epoch, mosaic)
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed * 100_003 + epoch)
            order = torch.randperm(len(self.dataset), generator=g).tolist()
        else:
            order = list(range(len(self.dataset)))
        # A local generator keeps the loader from drawing on the global RNG, which a resume restores.
        loader = DataLoader(self.dataset, batch_size=self.batch, sampler=order, num_workers=self.workers,
                            collate_fn=self.collate, pin_memory=self.pin_memory, drop_last=False,
                            generator=torch.Generator().manual_seed(self.seed + epoch),
                            persistent_workers=False)
        try:
            yield from loader
        except RuntimeError as e:
            _reraise_worker_error(e)
            raise
