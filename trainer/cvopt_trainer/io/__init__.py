"""Model import: presets, cvopt checkpoints, state dicts, TorchScript and Ultralytics checkpoints, read safely."""
from .load import CHECKPOINT_FORMAT, WEIGHTS_ENV, infer_from_state_dict, is_preset, load_model, sha256_file
from .unpickle import RestrictedUnpickler, safe_load

__all__ = ["CHECKPOINT_FORMAT", "WEIGHTS_ENV", "RestrictedUnpickler", "infer_from_state_dict", "is_preset",
           "load_model", "safe_load", "sha256_file"]
