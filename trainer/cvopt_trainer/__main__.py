"""Entry point: python3 -m cvopt_trainer <train|export|bench|inspect|import-onnx> --json-args FILE.

Exit code 0 only after a `result` message; any failure is one `error` message and exit code 1.
"""
from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import traceback

from .protocol import Emitter, WorkerError, log

# command -> "module:function"; each function takes (args: dict, emit: Emitter) and returns the result dict.
COMMANDS = {
    "train": "cvopt_trainer.engine.train:run",
    "export": "cvopt_trainer.export:run",
    "bench": "cvopt_trainer.bench:run",
    "inspect": "cvopt_trainer.inspect_model:run",
    "import-onnx": "cvopt_trainer.io.onnx_import:run",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="cvopt_trainer")
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--json-args", required=True, help="path of a JSON file with the command's arguments")
    ns = parser.parse_args(argv)
    emit = Emitter()
    # Cancel (the caller's SIGTERM) unwinds like Ctrl-C: checkpoints stay whole, progress.json says cancelled,
    # and the protocol still ends with an error message.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with open(ns.json_args, "r", encoding="utf-8") as f:
            args = json.load(f)
        if not isinstance(args, dict):
            raise WorkerError("INVALID_ARGUMENT", "--json-args must hold a JSON object")
        module_name, func_name = COMMANDS[ns.command].split(":")
        func = getattr(importlib.import_module(module_name), func_name)
        result = func(args, emit)
        emit.result(result if isinstance(result, dict) else {"value": result})
        return 0
    except WorkerError as e:
        emit.error(e.code, e.message, e.hint, e.where)
        return 1
    except KeyboardInterrupt:
        emit.error("CANCELLED", f"{ns.command} was interrupted")
        return 1
    except Exception as e:  # noqa: BLE001 - the protocol must always end with a message
        log(traceback.format_exc())
        emit.error("WORKER_FAILED", f"{ns.command} failed: {type(e).__name__}: {e}")
        return 1


def _interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
