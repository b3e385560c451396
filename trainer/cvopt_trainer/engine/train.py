"""The worker's ``train`` command: args in, checkpoints and metric messages out.

args: {model: preset name or checkpoint path, data: {task, names, train: [...], val: [...]}, out: dir,
epochs, imgsz, batch, device: 'cpu'|'cuda', seed, workers, hyp: {...}, resume: bool,
vram_limit_mb: int (0 = no cap; on CUDA the process may allocate at most this much, and running out is a clean
GPU_MEMORY_EXHAUSTED error, not a crash or a neighbour's OOM), patience: int (stop after this many epochs without a
better validation fitness; 0 = never; default 100 as the reference trainer)}

Besides the checkpoints, every epoch rewrites ``results.csv`` and ``results.svg`` in ``out``.

"""
from __future__ import annotations

import io
import os
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..data import ClassificationDataset, DetectionDataset, EpochLoader, default_workers
from ..loss import ClassificationLoss, DetectionLoss
from ..models import build_model, parse_preset
from ..protocol import Emitter, WorkerError, log
from .checkpoint import FORMAT, load_checkpoint, plain_state_dict, save_atomic
from .ema import ModelEMA
from .hyp import resolve_hyp
from .optim import build_optimizer, ignored_hyp, lr_lambda
from .results import ProgressFile, write_results_csv, write_results_svg
from .validate import fitness, validate_classify, validate_detect

MAX_GRAD_NORM = 10.0


def _int_arg(args: Dict[str, Any], key: str, default: int, lo: int, hi: int = 1 << 30) -> int:
    v = args.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise WorkerError("INVALID_ARGUMENT", f"{key} must be an integer in {lo}..{hi}, got {v!r}",
                          where={"field": key})
    return v


def parse_args(args: Dict[str, Any]) -> Dict[str, Any]:
    """Validate and complete the train arguments (defaults follow the reference trainer)."""
    data = args.get("data")
    if not isinstance(data, dict):
        raise WorkerError("INVALID_ARGUMENT", "data must be an object {task, names, train, val}",
                          where={"field": "data"})
    task = data.get("task")
    if task not in ("detect", "classify"):
        raise WorkerError("INVALID_ARGUMENT", f"data.task must be 'detect' or 'classify', got {task!r}",
                          where={"field": "data.task"})
    names = data.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise WorkerError("INVALID_ARGUMENT", "data.names must be a non-empty list of class names",
                          where={"field": "data.names"})
    for split in ("train", "val"):
        if not isinstance(data.get(split), list) or not data[split]:
            raise WorkerError("DATASET_INVALID", f"data.{split} is empty", where={"field": f"data.{split}"},
                              hint="the dataset needs at least one image in each of train and val")
    model = args.get("model")
    if not isinstance(model, str) or not model:
        raise WorkerError("INVALID_ARGUMENT", "model must be a preset name or a checkpoint path",
                          where={"field": "model"})
    out = args.get("out")
    if not isinstance(out, str) or not out:
        raise WorkerError("INVALID_ARGUMENT", "out must be a directory path", where={"field": "out"})
    device = args.get("device", "cpu")
    if device not in ("cpu", "cuda") and not (isinstance(device, str) and device.startswith("cuda:")):
        raise WorkerError("INVALID_ARGUMENT", f"device must be 'cpu' or 'cuda', got {device!r}",
                          where={"field": "device"})
    if device != "cpu" and not torch.cuda.is_available():
        raise WorkerError("INVALID_ARGUMENT", "device 'cuda' requested but PyTorch sees no CUDA device",
                          hint="use --device cpu, or install a CUDA build of PyTorch", where={"field": "device"})
    imgsz = _int_arg(args, "imgsz", 640 if task == "detect" else 224, 32, 8192)
    if imgsz % 32:
        raise WorkerError("INVALID_ARGUMENT", f"imgsz must be a multiple of 32, got {imgsz}",
                          where={"field": "imgsz"})
    hyp = args.get("hyp") or {}
    if not isinstance(hyp, dict):
        raise WorkerError("INVALID_ARGUMENT", "hyp must be an object of hyperparameters", where={"field": "hyp"})
    return {
        "model": model, "data": data, "out": out, "task": task, "names": list(names), "device": device,
        "epochs": _int_arg(args, "epochs", 100, 1, 100_000), "imgsz": imgsz,
        "batch": _int_arg(args, "batch", 16, 1, 4096), "seed": _int_arg(args, "seed", 0, 0, 2 ** 31 - 1),
        "workers": _int_arg(args, "workers", default_workers(), 0, 64), "hyp": resolve_hyp(hyp),
        "resume": bool(args.get("resume", False)),
        "vram_limit_mb": _int_arg(args, "vram_limit_mb", 0, 0),
        "patience": _int_arg(args, "patience", 100, 0),
        # TorchScript is a program: loaded only when the user says so (--trust-torchscript)
        "trust_torchscript": args.get("trust_torchscript") is True,
    }


def _is_preset(spec: str) -> bool:
    try:
        parse_preset(spec)
        return True
    except ValueError:
        return False


def _import_onnx(spec: str, out: str) -> str:
    """A YOLOv8 ONNX as a checkpoint in the run directory (rebuilt and dequantised by onnx_import)."""
    from ..io import onnx_import  # imported lazily: it needs the onnx package

    ckpt = os.path.join(out, "imported.pt")
    log(f"rebuilding {spec} as a PyTorch model: {ckpt}")
    onnx_import.run({"onnx": spec, "out": ckpt}, Emitter(io.StringIO()))
    return ckpt


def _load_model(spec: str, task: str, names, out: str, trust_torchscript: bool = False) -> Tuple[nn.Module, bool]:
    """The model to train, and whether its source had BatchNorm folded away (an ONNX export, or a checkpoint
    trained from one): its BN layers are identities whose statistics must stay frozen."""
    nc = len(names)
    if _is_preset(spec):
        model_task, _ = parse_preset(spec)
        if model_task != task:
            raise WorkerError("INVALID_ARGUMENT", f"model {spec} is a {model_task} model but the dataset is {task}",
                              where={"field": "model"})
        return build_model(spec, nc, names), False
    if not os.path.exists(spec):
        raise WorkerError("NOT_FOUND", f"model {spec!r} is neither a preset nor an existing file",
                          hint="use yolov8n, yolov8s-cls, … or a path to a .pt/.pkl checkpoint",
                          where={"field": "model"})
    from ..io import load_model  # imported lazily: only checkpoint paths need the restricted loader

    if spec.lower().endswith(".onnx"):
        spec = _import_onnx(spec, out)
    model, meta = load_model(spec, nc=nc, trust_torchscript=trust_torchscript)
    if getattr(model, "task", task) != task:
        raise WorkerError("INVALID_ARGUMENT", f"{spec} holds a {model.task} model but the dataset is {task}",
                          where={"field": "model"})
    model.names = list(names)
    # The loader hands out an inference model with frozen weights; training needs them back, except the DFL
    # integral, whose fixed bin weights are part of the architecture.
    for pname, p in model.named_parameters():
        p.requires_grad_(not pname.endswith("dfl.conv.weight"))
    return model, bool(meta.get("bnFolded"))


class Trainer:
    def __init__(self, args: Dict[str, Any], emit: Emitter):
        self.emit = emit
        resume_ckpt: Optional[Dict[str, Any]] = None
        if args.get("resume"):
            last = os.path.join(str(args.get("out", "")), "last.pt")
            if not os.path.exists(last):
                raise WorkerError("NOT_FOUND", f"nothing to resume: {last} does not exist", where={"field": "out"})
            resume_ckpt = load_checkpoint(last)
            if resume_ckpt.get("format") != FORMAT:
                raise WorkerError("MODEL_INVALID", f"{last} is not a cvopt checkpoint", where={"file": last})
            # The run continues with its own arguments; only where it runs may change.
            saved = dict(resume_ckpt["train_args"])
            for k in ("device", "workers", "vram_limit_mb", "patience"):
                if k in args:
                    saved[k] = args[k]
            saved["hyp"] = {k: v for k, v in resume_ckpt["hyp"].items()}
            args = saved
        self.args = a = parse_args(args)
        self.raw_args = {k: v for k, v in args.items() if k != "resume"}
        self.task, self.names, self.nc = a["task"], a["names"], len(a["names"])
        self.epochs, self.imgsz, self.batch, self.seed = a["epochs"], a["imgsz"], a["batch"], a["seed"]
        self.hyp = a["hyp"]
        self.device = torch.device(a["device"])
        self.cuda = self.device.type == "cuda"
        self.out = a["out"]
        os.makedirs(self.out, exist_ok=True)

        torch.manual_seed(self.seed)
        self.vram_limit_mb = a["vram_limit_mb"]
        if self.cuda:
            torch.cuda.manual_seed_all(self.seed)
            torch.backends.cudnn.benchmark = True
            _cap_vram(self.device, self.vram_limit_mb)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.vram_limit_mb:
            log(f"vram_limit_mb {self.vram_limit_mb} ignored: training on the CPU")
        model, self.freeze_bn = _load_model(a["model"], self.task, self.names, self.out,
                                                 a.get("trust_torchscript") is True)
        self.model = model.to(self.device)
        if self.freeze_bn:
            # Training-mode BN would renormalise every identity layer by batch statistics and wreck the function.
            log("the source's BatchNorm is folded into its convolutions: BatchNorm statistics stay frozen")
        self.preset = getattr(self.model, "preset", a["model"])

        ds_cls = DetectionDataset if self.task == "detect" else ClassificationDataset
        self.train_set = ds_cls(a["data"]["train"], self.nc, self.imgsz, self.hyp, True, self.seed, "train")
        self.val_set = ds_cls(a["data"]["val"], self.nc, self.imgsz, self.hyp, False, self.seed, "val")
        self.train_loader = EpochLoader(self.train_set, self.batch, True, a["workers"], self.seed, self.cuda)
        self.val_loader = EpochLoader(self.val_set, self.batch * 2, False, a["workers"], self.seed, self.cuda)
        self.nb = len(self.train_loader)

        if self.task == "detect":
            # A fresh preset's class prior depends on the grid size, so redo it for this imgsz.
            if resume_ckpt is None and _is_preset(a["model"]):
                self.model.head.bias_init(self.imgsz)
            self.criterion: nn.Module = DetectionLoss(self.nc, box=self.hyp["box"], cls=self.hyp["cls"],
                                                      dfl=self.hyp["dfl"]).to(self.device)
        else:
            self.criterion = ClassificationLoss(self.hyp["label_smoothing"])
        self.optimizer, self.opt_info = build_optimizer(self.model, self.hyp, self.batch, self.nc,
                                                        self.epochs * self.nb)
        self.patience = a["patience"]
        # Settings the chosen optimiser overrides are named, never dropped in silence.
        self.warnings = [] if resume_ckpt is not None else ignored_hyp(dict(args.get("hyp") or {}), self.opt_info)
        for w in self.warnings:
            log(f"warning: {w}")
        self.lf = lr_lambda(self.epochs, self.hyp["lrf"], self.hyp["cos_lr"])
        self.ema = ModelEMA(self.model)
        self.amp = self.cuda
        self.scaler = _grad_scaler(self.amp)
        self.start_epoch = 0
        self.stopped_early = 0
        self.progress_file = ProgressFile(os.path.join(self.out, "progress.json"), self.epochs)
        self.best_fitness = -1.0
        self.best_metrics: Dict[str, float] = {}
        self.history: list = []
        if resume_ckpt is not None:
            self._restore(resume_ckpt)

    def _restore(self, ck: Dict[str, Any]) -> None:
        self.model.load_state_dict(ck["model_state_dict"])
        self.ema.ema.load_state_dict(ck["state_dict"])
        self.ema.updates = int(ck["ema_updates"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.start_epoch = int(ck["epoch"]) + 1
        self.best_fitness = float(ck["best_fitness"])
        self.best_metrics = dict(ck.get("best_metrics") or {})
        self.history = list(ck.get("history") or [])
        torch.set_rng_state(ck["rng"]["torch"])
        if self.cuda and ck["rng"].get("cuda"):
            torch.cuda.set_rng_state_all(ck["rng"]["cuda"])
        if self.start_epoch >= self.epochs:
            raise WorkerError("INVALID_ARGUMENT", f"training to {self.epochs} epochs already finished; "
                              "nothing to resume", hint="start a new run, or train further from best.pt",
                              where={"field": "resume"})
        log(f"resuming from epoch {self.start_epoch + 1}/{self.epochs}")

    def _checkpoint(self, epoch: int, metrics: Dict[str, float]) -> Dict[str, Any]:
        return {
            "format": FORMAT, "preset": self.preset, "task": self.task, "nc": self.nc, "names": list(self.names),
            "imgsz": self.imgsz, "state_dict": plain_state_dict(self.ema.ema),
            # The raw (non-averaged) weights make a resume continue exactly where the run stopped.
            "model_state_dict": plain_state_dict(self.model),
            "epoch": epoch, "best_fitness": self.best_fitness, "best_metrics": dict(self.best_metrics),
            "hyp": dict(self.hyp), "train_args": self.raw_args, "optimizer": self.optimizer.state_dict(),
            "ema_updates": self.ema.updates,
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": list(torch.cuda.get_rng_state_all()) if self.cuda else [],
                    "numpy_seed": [self.seed, epoch]},
            "metrics": dict(metrics), "history": list(self.history),
            "optimizer_info": dict(self.opt_info), "bnFolded": self.freeze_bn,
        }

    def validate(self) -> Dict[str, float]:
        model = self.ema.ema
        if self.task == "detect":
            return validate_detect(model, self.val_loader, self.device, self.nc)
        return validate_classify(model, self.val_loader, self.device)

    def train(self) -> Dict[str, Any]:
        hyp = self.hyp
        nw = round(hyp["warmup_epochs"] * self.nb) if hyp["warmup_epochs"] > 0 else -1
        total = self.epochs * self.nb
        t0 = time.time()
        train_time, seen = 0.0, 0
        for epoch in range(self.start_epoch, self.epochs):
            self.model.train()
            if self.freeze_bn:
                for m in self.model.modules():
                    if isinstance(m, nn.BatchNorm2d):
                        m.eval()
            mosaic = epoch < self.epochs - int(hyp["close_mosaic"])
            sums: Dict[str, float] = {}
            n_batches = 0
            te = time.time()
            for i, (imgs, targets, _) in enumerate(self.train_loader.epoch(epoch, mosaic)):
                ni = i + self.nb * epoch
                if ni <= nw:
                    for j, g in enumerate(self.optimizer.param_groups):
                        start = self.opt_info["warmup_bias_lr"] if j == 0 else 0.0
                        g["lr"] = float(np.interp(ni, [0, nw], [start, g["initial_lr"] * self.lf(epoch)]))
                        if "momentum" in g:
                            g["momentum"] = float(np.interp(ni, [0, nw], [hyp["warmup_momentum"],
                                                                          self.opt_info["momentum"]]))
                        elif "betas" in g:
                            b1 = float(np.interp(ni, [0, nw], [hyp["warmup_momentum"], self.opt_info["momentum"]]))
                            g["betas"] = (b1, g["betas"][1])
                imgs = imgs.to(self.device, non_blocking=True).float() / 255
                with torch.autocast(device_type=self.device.type, enabled=self.amp):
                    preds = self.model(imgs)
                parts = self.criterion(preds, targets.to(self.device))  # in FP32, outside autocast
                self.scaler.scale(parts["loss"]).backward()
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), MAX_GRAD_NORM)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.ema.update(self.model)
                for k, v in parts.items():
                    if k != "loss":
                        sums[k] = sums.get(k, 0.0) + float(v.detach())
                n_batches += 1
                seen += imgs.shape[0]
                self.emit.progress("train", ni + 1, total, f"epoch {epoch + 1}/{self.epochs} batch {i + 1}/{self.nb}")
                self.progress_file.write("running", epoch + 1, ni + 1, total, f"batch {i + 1}/{self.nb}")
            train_time += time.time() - te
            # The schedule steps once per epoch; warm-up overrides it within its iterations.
            for g in self.optimizer.param_groups:
                g["lr"] = g["initial_lr"] * self.lf(epoch + 1)
            losses = {f"{k}_loss": v / max(n_batches, 1) for k, v in sums.items()}
            metrics = self.validate()
            fit = fitness(self.task, metrics)
            if fit > self.best_fitness:
                self.best_fitness, self.best_metrics = fit, dict(metrics, epoch=epoch)
                improved = True
            else:
                improved = False
            self.history.append(dict(losses, **metrics, fitness=fit, lr=self.optimizer.param_groups[1]["lr"], epoch=epoch))
            ck = self._checkpoint(epoch, metrics)
            save_atomic(ck, os.path.join(self.out, "last.pt"))
            if improved:
                save_atomic(ck, os.path.join(self.out, "best.pt"))
            self.emit.metric(dict(losses, lr=self.optimizer.param_groups[1]["lr"]), stage="train", epoch=epoch)
            self.emit.metric(dict(metrics, fitness=fit), stage="val", epoch=epoch)
            self.emit.progress("epoch", epoch + 1, self.epochs,
                               " ".join(f"{k}={v:.4f}" for k, v in dict(losses, **metrics).items()))
            self._write_results()
            self.progress_file.write("running", epoch + 1, (epoch + 1) * self.nb, total, "validated", force=True,
                                     metrics=dict(metrics, fitness=fit))
            best_epoch = int(self.best_metrics.get("epoch", epoch))
            if self.patience and epoch - best_epoch >= self.patience and epoch + 1 < self.epochs:
                self.stopped_early = epoch + 1
                log(f"early stop: no better validation fitness for {self.patience} epochs "
                    f"(best at epoch {best_epoch + 1}); best.pt holds it")
                break
        wall = time.time() - t0
        self.progress_file.write("finished", len(self.history), (self.start_epoch + len(self.history)) * self.nb,
                                 total, "early stop" if self.stopped_early else "done", force=True,
                                 metrics={k: v for k, v in self.best_metrics.items() if k != "epoch"})
        return {
            "best": os.path.abspath(os.path.join(self.out, "best.pt")),
            "last": os.path.abspath(os.path.join(self.out, "last.pt")),
            "epochs": self.epochs, "wallS": wall, "imagesPerSec": seen / train_time if train_time > 0 else 0.0,
            "metrics": {k: v for k, v in self.best_metrics.items() if k != "epoch"},
            "bestEpoch": int(self.best_metrics.get("epoch", -1)), "bestFitness": self.best_fitness,
            "task": self.task, "names": list(self.names), "imgsz": self.imgsz, "preset": self.preset,
            "optimizer": self.opt_info["optimizer"],
            "epochsRun": len(self.history), "stoppedEarly": self.stopped_early, "warnings": list(self.warnings),
            "resultsCsv": os.path.abspath(os.path.join(self.out, "results.csv")),
        }

    def _write_results(self) -> None:
        """results.csv and results.svg from the whole history; a failure to write them never stops training."""
        try:
            write_results_csv(os.path.join(self.out, "results.csv"), self.history)
            write_results_svg(os.path.join(self.out, "results.svg"), self.history,
                              f"{self.preset} · {self.task} · imgsz {self.imgsz}")
        except OSError as e:  # pragma: no cover - disk full or read-only out
            log(f"warning: could not write results.csv/svg: {e}")


def _grad_scaler(enabled: bool):
    """torch >= 2.3 has the device-generic scaler (torch.cuda.amp's is deprecated there); 1.13 only the CUDA one."""
    amp = getattr(torch, "amp", None)
    if amp is not None and hasattr(amp, "GradScaler"):
        return amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def _cap_vram(device: torch.device, limit_mb: int) -> None:
    """Cap what PyTorch's caching allocator may take on this device; beyond it an allocation raises OOM here
    instead of taking memory another job on the same card was promised."""
    if not limit_mb:
        return
    index = device.index if device.index is not None else torch.cuda.current_device()
    total_mb = torch.cuda.get_device_properties(index).total_memory / 2 ** 20
    if limit_mb > total_mb:
        raise WorkerError("INVALID_ARGUMENT", f"vram_limit_mb {limit_mb} is more than the GPU has ({total_mb:.0f} MiB)",
                          where={"field": "vram_limit_mb"}, hint=f"use at most {int(total_mb)}, or 0 for no cap")
    torch.cuda.set_per_process_memory_fraction(limit_mb / total_mb, index)
    log(f"GPU memory capped at {limit_mb} MiB of {total_mb:.0f} MiB")


def run(args: Dict[str, Any], emit: Emitter) -> Dict[str, Any]:
    trainer = Trainer(args, emit)
    try:
        return _train_or_explain(trainer)
    except BaseException as e:
        # A run that ends for any reason other than success says so to whoever watches progress.json.
        state = "cancelled" if isinstance(e, KeyboardInterrupt) else "failed"
        trainer.progress_file.write(state, len(trainer.history), 0, 0, str(e)[:200], force=True)
        raise


def _train_or_explain(trainer: Trainer) -> Dict[str, Any]:
    try:
        return trainer.train()
    except torch.cuda.OutOfMemoryError:
        peak = torch.cuda.max_memory_allocated(trainer.device) / 2 ** 20
        budget = f"its {trainer.vram_limit_mb} MiB budget" if trainer.vram_limit_mb else "the GPU's free memory"
        raise WorkerError("GPU_MEMORY_EXHAUSTED",
                          f"training at batch {trainer.batch}, imgsz {trainer.imgsz} needs more than {budget} "
                          f"(peak allocated {peak:.0f} MiB before the failing allocation)",
                          hint="lower --batch or --imgsz, or raise --vram-mb", where={"field": "batch"}) from None
