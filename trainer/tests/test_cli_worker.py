"""The worker as the TypeScript side runs it: a subprocess speaking the line protocol."""
import json
import os
import pathlib
import pickle
import subprocess
import sys

TRAINER = pathlib.Path(__file__).resolve().parents[1]


def _worker(command, args, tmp_path):
    a = tmp_path / "args.json"
    a.write_text(json.dumps(args))
    p = subprocess.run([sys.executable, "-m", "cvopt_trainer", command, "--json-args", str(a)], cwd=TRAINER,
                       capture_output=True, text=True, timeout=300)
    return p.returncode, [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def test_inspect_refuses_evil_pickle_through_the_protocol(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"model": Evil()}))
    rc, msgs = _worker("inspect", {"path": str(evil)}, tmp_path)
    assert rc == 1 and msgs[-1]["type"] == "error" and msgs[-1]["code"] == "UNSAFE_PICKLE"
    assert "posix.system" in msgs[-1]["message"] and msgs[-1]["where"] == {"file": str(evil)}
    assert not marker.exists()


def test_inspect_preset_result(tmp_path):
    rc, msgs = _worker("inspect", {"path": "yolov8p-cls", "nc": 3}, tmp_path)
    assert rc == 0 and msgs[-1]["type"] == "result"
    assert msgs[-1]["data"]["task"] == "classify" and msgs[-1]["data"]["nc"] == 3
