"""Fuzz driver for the worker's model loader, run once per batch by test/fuzz/fuzz.test.ts.

    python3 safe_load_batch.py TRAINER_DIR seed OUT_DIR          # writes the real base files to mutate
    python3 safe_load_batch.py TRAINER_DIR run CASE_DIR TIMEOUT_S  # loads every file; one JSON line per case

A case's outcome: ok, refused:<code> (a WorkerError, as the protocol would send it), hang (over TIMEOUT_S) or
crash:<type>: <message> (anything else, which the worker would report as WORKER_FAILED with a traceback).
"""
import json
import os
import pickle
import resource
import signal
import sys

sys.path.insert(0, sys.argv[1])

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cvopt_trainer.io import load_model, safe_load  # noqa: E402
from cvopt_trainer.io.load import CHECKPOINT_FORMAT  # noqa: E402
from cvopt_trainer.models import build_model  # noqa: E402
from cvopt_trainer.protocol import WorkerError  # noqa: E402


def seed(out):
    torch.manual_seed(0)
    sd = {"conv.weight": torch.randn(8, 3, 3, 3), "conv.bias": torch.zeros(8), "steps": torch.tensor(3)}
    torch.save(sd, os.path.join(out, "state-zip.pt"))
    torch.save(sd, os.path.join(out, "state-legacy.pt"), _use_new_zipfile_serialization=False)
    with open(os.path.join(out, "plain.pkl"), "wb") as f:
        pickle.dump({"names": ["a", "b"], "arr": np.arange(6, dtype=np.float32), "nested": [1, (2.5, "x")]}, f,
                    protocol=2)
    model = build_model("yolov8p", nc=2)
    torch.save({"format": CHECKPOINT_FORMAT, "preset": "yolov8p", "nc": 2, "names": ["a", "b"], "imgsz": 64,
                "state_dict": model.state_dict()}, os.path.join(out, "model-checkpoint.pt"))


class Hang(BaseException):
    pass


def _alarm(*_):
    raise Hang()


def run(case_dir, timeout_s):
    signal.signal(signal.SIGALRM, _alarm)
    for name in sorted(os.listdir(case_dir)):
        path = os.path.join(case_dir, name)
        signal.alarm(timeout_s)
        try:
            # files named model-* go through the whole loader (model rebuild included), the rest the unpickler
            if name.startswith("model-"):
                load_model(path)
            else:
                safe_load(path)
            outcome = "ok"
        except WorkerError as e:
            outcome = f"refused:{e.code}"
        except Hang:
            outcome = "hang"
        except BaseException as e:  # noqa: BLE001 - the point is to see every escape
            outcome = f"crash:{type(e).__name__}: {str(e)[:200]}"
        finally:
            signal.alarm(0)
        print(json.dumps({"name": name, "outcome": outcome}), flush=True)
    print(json.dumps({"maxRssKiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)


if __name__ == "__main__":
    if sys.argv[2] == "seed":
        seed(sys.argv[3])
    else:
        run(sys.argv[3], int(sys.argv[4]))
