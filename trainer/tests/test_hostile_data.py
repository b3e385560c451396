"""Issue 13 item 12, the worker's side: label and image paths that are FIFOs, devices or oversized are refused with
a clear error, at once, without reading them."""
import os

import numpy as np
import pytest

from cvopt_trainer.data.dataset import read_image
from cvopt_trainer.data.labels import read_labels
from cvopt_trainer.protocol import WorkerError
from cvopt_trainer.utils.files import LABEL_MAX_BYTES


@pytest.fixture()
def hostile(tmp_path):
    os.mkfifo(tmp_path / "fifo.txt")
    os.symlink("/dev/zero", tmp_path / "zero.txt")
    os.symlink("/dev/zero", tmp_path / "zero.jpg")
    os.mkfifo(tmp_path / "fifo.jpg")
    with open(tmp_path / "big.txt", "wb") as f:
        f.truncate(LABEL_MAX_BYTES + 1)  # sparse: costs no disk
    (tmp_path / "ok.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    return tmp_path


@pytest.mark.parametrize("name, words", [("fifo.txt", "FIFO"), ("zero.txt", "device"), ("big.txt", "over the limit")])
def test_hostile_label_files_are_refused_without_reading(hostile, name, words):
    with pytest.raises(WorkerError) as info:
        read_labels(str(hostile / name), nc=1)
    assert info.value.code == "LABEL_INVALID" and words in info.value.message
    assert info.value.where == {"file": str(hostile / name)}


@pytest.mark.parametrize("name, words", [("fifo.jpg", "FIFO"), ("zero.jpg", "device")])
def test_hostile_image_files_are_refused_without_decoding(hostile, name, words):
    with pytest.raises(WorkerError) as info:
        read_image(str(hostile / name))
    assert info.value.code == "IMAGE_INVALID" and words in info.value.message


def test_real_and_missing_labels_still_read(hostile):
    assert read_labels(str(hostile / "ok.txt"), nc=1).tolist() == [[0, 0.5, 0.5, 0.25, 0.25]]
    assert read_labels(str(hostile / "absent.txt"), nc=1).shape == (0, 5)
    assert np.array_equal(read_labels("", nc=1), np.zeros((0, 5), np.float32))


def test_export_sample_image_that_is_a_fifo_is_refused_without_blocking(hostile):
    from cvopt_trainer.export import preprocess_image

    with pytest.raises(WorkerError) as info:
        preprocess_image(str(hostile / "fifo.jpg"), {"size": [64, 64], "resize": "letterbox"})
    assert info.value.code == "IMAGE_INVALID" and "FIFO" in info.value.message
