import io
import json
import pathlib

from cvopt_trainer.protocol import Emitter

FIXTURE = pathlib.Path(__file__).resolve().parents[2] / "contracts" / "worker-messages.json"
REQUIRED = {"progress": {"stage", "step", "total"}, "metric": {"values"}, "result": {"data"}, "error": {"code", "message"}}


def validate(msg):
    """The Python mirror of WorkerMessageSchema (packages/core/src/worker.ts)."""
    t = msg.get("type")
    if t not in REQUIRED or not REQUIRED[t] <= msg.keys():
        return False
    if t == "progress":
        return isinstance(msg["step"], int) and msg["step"] >= 0 and isinstance(msg["total"], int) and msg["total"] >= 0
    if t == "metric":
        return isinstance(msg["values"], dict) and all(isinstance(v, (int, float)) for v in msg["values"].values())
    if t == "result":
        return isinstance(msg["data"], dict)
    return isinstance(msg["code"], str) and isinstance(msg["message"], str)


def test_shared_fixture_agrees_with_python_mirror():
    fx = json.loads(FIXTURE.read_text())
    assert all(validate(m) for m in fx["valid"])
    assert not any(validate(m) for m in fx["invalid"])


def test_emitter_writes_valid_messages_and_cleans_nan():
    buf = io.StringIO()
    e = Emitter(buf)
    e.progress("train", 1, 3, "epoch 1/3")
    e.metric({"map50": 0.5, "loss": float("nan")}, stage="val", epoch=1)
    e.result({"ok": True})
    e.error("UNSAFE_PICKLE", "refused", hint="use a trusted file", where={"file": "x.pt"})
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [m["type"] for m in lines] == ["progress", "metric", "result", "error"]
    assert lines[1]["values"]["loss"] is None
    assert all(validate(m) for m in lines if m["type"] != "metric")


def test_worker_commands_match_the_contract():
    # core/src/worker.ts WORKER_COMMANDS and the Python entry point list the same commands (contracts/worker-messages.json).
    from cvopt_trainer.__main__ import COMMANDS
    fx = json.loads(FIXTURE.read_text())
    assert sorted(COMMANDS) == sorted(fx["commands"])


def test_import_onnx_is_a_worker_command(tmp_path):
    # The ONNX import runs through the one entry point; its argument check answers in the protocol.
    import subprocess
    import sys
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"onnx": str(tmp_path / "none.onnx")}))
    p = subprocess.run([sys.executable, "-m", "cvopt_trainer", "import-onnx", "--json-args", str(args)],
                       cwd=pathlib.Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    msg = json.loads(p.stdout.strip().splitlines()[-1])
    assert msg["type"] == "error" and msg["code"] == "INVALID_ARGUMENT" and msg["where"] == {"field": "out"}
