"""Issue 13 item 10: external-data paths in an ONNX file stay inside the model's real folder."""
import os

import numpy as np
import pytest

from cvopt_trainer.io.onnx_import import read_initialisers
from cvopt_trainer.protocol import WorkerError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _model_with_external(folder, location, nbytes=16):
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[nbytes // 4])
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(nbytes))):
        e = t.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [nbytes // 4])], initializer=[t])
    path = os.path.join(folder, "model.onnx")
    with open(path, "wb") as f:
        f.write(helper.make_model(g).SerializeToString())
    return path


@pytest.fixture()
def layout(tmp_path):
    model_dir = tmp_path / "models" / "m"
    (model_dir / "sub").mkdir(parents=True)
    secret = tmp_path / "secret.bin"  # outside the model's folder: the attack reads it
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    (model_dir / "weights.bin").write_bytes(np.full(4, 7, np.float32).tobytes())
    os.symlink(secret, model_dir / "link.bin")
    os.symlink(tmp_path, model_dir / "sub" / "up")
    return model_dir, secret


def test_external_data_inside_the_folder_loads(layout):
    model_dir, _ = layout
    inits, _ = read_initialisers(_model_with_external(str(model_dir), "weights.bin"))
    assert inits["w"].tolist() == [7.0] * 4


@pytest.mark.parametrize("location", ["../../secret.bin", "sub/../../../secret.bin", "link.bin", "sub/up/secret.bin",
                                      "ABSOLUTE", ""])
def test_external_data_outside_the_folder_is_refused(layout, location):
    model_dir, secret = layout
    if location == "ABSOLUTE":
        location = str(secret)
    path = _model_with_external(str(model_dir), location)
    with pytest.raises(WorkerError) as info:
        read_initialisers(path)
    assert info.value.code == "MODEL_INVALID"
    assert "inside the model's folder" in info.value.message and info.value.where["file"] == path


@pytest.mark.parametrize("location", ["pipe.bin", "sub"])
def test_external_data_that_is_a_fifo_or_folder_is_refused_without_blocking(layout, location):
    model_dir, _ = layout
    os.mkfifo(model_dir / "pipe.bin")
    with pytest.raises(WorkerError) as info:
        read_initialisers(_model_with_external(str(model_dir), location))
    assert "not a regular file" in info.value.message


@pytest.mark.parametrize("names", ["[" * 100_000 + "]" * 100_000, "{0: " * 50_000 + "1" + "}" * 50_000, "9" * 10_000])
def test_forged_names_metadata_falls_back_to_numbered_classes(names):
    from cvopt_trainer.io.onnx_import import _names

    model = helper.make_model(helper.make_graph([], "g", [], []))
    helper.set_model_props(model, {"names": names})
    assert _names(model, 2) == ["0", "1"]
