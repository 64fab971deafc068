"""``glcic doctor``: check that this machine can run the course, in a few seconds.

Run it first on a new Colab runtime or laptop (``python -m glcic_lib doctor``, or
:func:`run_doctor` in a notebook).  Each check prints one line: ``ok``, ``WARN`` (works, but
something is worth knowing) or ``ERROR`` (something the course needs does not work), with what
is wrong and what to do about it.  The checks, in order:

* ``python``, ``torch``: versions (the package needs Python 3.10 and torch 2.1 or newer).
* ``device``: the device picked automatically (:func:`glcic_lib.device.pick_device`, or
  ``--device``) and what it is: the GPU's name and memory, Apple MPS, or the CPU with the torch
  thread count :func:`glcic_lib.threads.choose_threads` picked (measured, or ``GLCIC_THREADS``).
* ``precision``: the mixed-precision dtype training uses there
  (:func:`glcic_lib.schedule.amp_dtype`) and the precision :func:`glcic_lib.complete` picks for
  the demo model, with the reason (its stored reduced-precision measurement, or its absence).
* ``data``, ``widgets``: whether the training images are found, and whether the packages the
  notebooks' widgets need (ipywidgets, anywidget) import.
* ``trainer``, ``train: completion`` / ``discriminator`` / ``joint``: the real
  :class:`glcic_lib.train.Trainer` (``smoke`` preset, quarter width) on a few synthetic images,
  one warm-up step and ``steps`` timed steps of each phase (autocast and loss scaling
  included where training uses them); images per second and finite losses.
* ``peak memory``: of those training steps on a GPU, of the whole process on a CPU.
* ``inference``: the bundled demo model completes a small image; the output must be finite and
  the pixels outside the hole exactly the input's.

A check never raises: an exception inside it becomes an ``ERROR`` line naming the check.
"""
from __future__ import annotations

import argparse
import html
import importlib
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .device import synchronize

STATUSES = ("ok", "warning", "error")
_LABELS = {"ok": "ok", "warning": "WARN", "error": "ERROR"}
#: Every check's name, in report order (also the width of the name column).
CHECK_NAMES = ("python", "torch", "device", "precision", "data", "widgets", "trainer", "train: completion",
               "train: discriminator", "train: joint", "peak memory", "inference")
_NAME_WIDTH = max(map(len, CHECK_NAMES))
MIN_PYTHON = (3, 10)
MIN_TORCH = (2, 1)
HEADER = "glcic doctor: checking this setup"
COLAB_GPU_HINT = "in Colab choose Runtime > Change runtime type > a GPU (e.g. T4), then re-run"


@dataclass
class Check:
    """One line of the report: ``status`` is ``ok``, ``warning`` or ``error``; ``message`` says
    what was found and, when it is not ok, what to do; ``details`` holds the numbers."""

    name: str
    status: str
    message: str
    details: dict = field(default_factory=dict)
    seconds: float = 0.0

    def row(self) -> str:
        """The check as one aligned line of the report."""
        return f"  {_LABELS.get(self.status, self.status):<5}  {self.name:<{_NAME_WIDTH}}  {self.message}"


@dataclass
class DoctorReport:
    """What :func:`run_doctor` found: ``checks`` in order; ``ok`` is True when none is an error."""

    checks: list[Check]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Check]:
        return [c for c in self.checks if c.status == "error"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warning"]

    def get(self, name: str) -> Check | None:
        """The check called ``name`` (None if it did not run)."""
        return next((c for c in self.checks if c.name == name), None)

    def summary(self) -> str:
        n_err, n_warn = len(self.errors), len(self.warnings)
        if n_err:
            verdict = f"{n_err} error{'s' * (n_err > 1)}, {n_warn} warning{'s' * (n_warn != 1)}: fix the ERROR lines"
        elif n_warn:
            verdict = f"ready, with {n_warn} warning{'s' * (n_warn > 1)}"
        else:
            verdict = "ready: every check passed"
        return f"{verdict} ({len(self.checks)} checks, {self.seconds:.1f} s)"

    def table(self) -> str:
        return "\n".join([HEADER, *(c.row() for c in self.checks), self.summary()])

    __str__ = table

    def _repr_html_(self) -> str:
        colours = {"ok": "#1a7f37", "warning": "#9a6700", "error": "#cf222e"}
        rows = "".join(f"<tr><td style='color:{colours.get(c.status, 'black')};font-weight:bold'>"
                       f"{_LABELS.get(c.status, c.status)}</td><td>{html.escape(c.name)}</td>"
                       f"<td style='text-align:left'>{html.escape(c.message)}</td></tr>" for c in self.checks)
        return f"<b>{HEADER}</b><table>{rows}</table><p>{html.escape(self.summary())}</p>"


# ---------------------------------------------------------------------------- helpers

def _version_tuple(version: str) -> tuple[int, ...]:
    """``"2.13.0+cpu"`` -> ``(2, 13)``."""
    parts = []
    for piece in str(version).split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _in_colab() -> bool:
    """In a Colab notebook, or in a command it runs (``!python -m glcic_lib doctor``: a subprocess
    that has not imported ``google.colab``, but inherits Colab's ``COLAB_*`` variables)."""
    from .notebook import in_colab

    return in_colab() or any(k.startswith("COLAB_") for k in os.environ)


def _has_nvidia_gpu() -> bool:
    """An NVIDIA driver is installed (whether or not this torch can use it)."""
    return os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi") is not None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def _failure(name: str, e: Exception) -> str:
    """The message of a check that raised ``e``: the error and what to try."""
    if isinstance(e, torch.cuda.OutOfMemoryError):
        todo = "out of GPU memory: use a smaller --batch-size or --size, or restart the runtime to free the GPU"
    elif isinstance(e, MemoryError):
        todo = "out of memory: use a smaller --batch-size or --size, or close other programs"
    elif isinstance(e, ImportError):
        todo = "a module is missing or broken: reinstall the project (pip install -e .)"
    else:
        todo = "fix what it names, or report this line with the rest of this report"
    return f"{name} failed: {_first_line(e)}; {todo}"


def _run(name: str, fn: Callable, *args) -> Check:
    """Run one check function (it returns ``(status, message, details)``), timing it; an
    exception becomes an error naming the check.  Warnings raised inside are not printed."""
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            status, message, details = fn(*args)
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
    except Exception as e:   # noqa: BLE001 - the doctor reports, it never crashes
        status, message, details = "error", _failure(name, e), {"exception": repr(e)}
    return Check(name, status, message, details, time.perf_counter() - t0)


# ---------------------------------------------------------------------------- the checks

def check_python() -> tuple:
    """The Python version: the package needs 3.10 or newer."""
    v = sys.version_info
    text = f"Python {v.major}.{v.minor}.{v.micro} ({platform.system() or 'unknown OS'} {platform.machine()})"
    if (v.major, v.minor) < MIN_PYTHON:
        return "error", f"{text} is older than 3.10: use Python 3.10 or newer", {"version": text}
    return "ok", text, {"version": text}


def check_torch() -> tuple:
    """The torch version (2.1 or newer) and the build: CUDA version or CPU only."""
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    text = f"torch {torch.__version__} ({build})"
    details = {"version": str(torch.__version__), "cuda": torch.version.cuda}
    if _version_tuple(torch.__version__) < MIN_TORCH:
        return "error", f"torch {torch.__version__} is older than 2.1: pip install -U 'torch>=2.1'", details
    return "ok", text, details


def check_device(requested: str | None) -> tuple:
    """The device :func:`~glcic_lib.device.pick_device` chooses (CUDA, then MPS, then CPU)
    or the one asked for, and what it is.  No GPU is a warning in Colab or when an NVIDIA
    driver is present but this torch cannot use it; on a laptop CPU it is fine (just slower)."""
    from .device import cpu_has_bfloat16, pick_device

    given = f"--device {requested}" if requested else (
        f"GLCIC_DEVICE={os.environ['GLCIC_DEVICE']}" if os.environ.get("GLCIC_DEVICE") else None)
    try:
        device = pick_device(requested)
    except RuntimeError as e:
        hint = COLAB_GPU_HINT if "cuda" in str(e) and _in_colab() else "leave it out to use the best available device"
        return "error", (f"{given}: {str(e).splitlines()[0]}; {hint} (the training and inference checks need "
                         f"a device and were skipped)"), {"device": None}
    details = {"device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        details.update(name=props.name, memory_gib=props.total_memory / 2**30,
                       capability=f"{props.major}.{props.minor}")
        return "ok", (f"cuda: {props.name}, {props.total_memory / 2**30:.1f} GiB, compute capability "
                      f"{props.major}.{props.minor}"), details
    if device.type == "mps":
        return "ok", "mps: Apple GPU (Metal)", details
    from .threads import choose_threads

    bf16 = cpu_has_bfloat16()
    choice = choose_threads()   # the thread count setup() uses: measured here, or GLCIC_THREADS / OMP_NUM_THREADS
    threads = choice.threads
    details.update(threads=threads, threads_source=choice.source, thread_timings=dict(choice.timings), bfloat16=bf16)
    what = f"cpu: {choice.describe()}, bfloat16 hardware {'yes' if bf16 else 'no'}"
    if requested or os.environ.get("GLCIC_DEVICE"):
        return "ok", f"{what} (asked for by {given})", details
    if _has_nvidia_gpu() and not torch.cuda.is_available():
        build = "a CPU build" if not torch.version.cuda else f"built for CUDA {torch.version.cuda}"
        return "warning", (f"{what}; this machine has an NVIDIA driver but torch ({build}) cannot use it: "
                           f"install a CUDA build of torch that matches the driver"), details
    if _in_colab():
        return "warning", f"{what}; CUDA is not available: {COLAB_GPU_HINT}", details
    return "ok", f"{what} (no GPU found: training works, slowly; use the cpu or smoke preset)", details


def check_precision(device: torch.device, amp: bool | str) -> tuple:
    """The dtypes used on ``device``: training's autocast (float16 with loss scaling on CUDA,
    float32 elsewhere) and what :func:`glcic_lib.complete`'s ``auto`` precision picks for the
    bundled demo model there, and why (:func:`glcic_lib.inpaint.precision_choice`: reduced
    precision only for a model whose stored measurement allows it)."""
    from .inpaint import precision_choice
    from .schedule import amp_dtype

    train = amp_dtype(amp, device)
    train_text = "float32" if train is None else f"{str(train).replace('torch.', '')} autocast"
    if train == torch.float16:
        train_text += " + loss scaling (GradScaler)"
    model = _demo_model()
    infer, why = precision_choice(model, device)
    details = {"train": str(train).replace("torch.", "") if train else "float32", "inference": infer,
               "inference_reason": why}
    message = f"training {train_text}; complete() on the demo model: {why}"
    if device.type == "cuda" and train is None:
        return "warning", f"{message}: mixed precision is off, training runs ~2x slower (drop --no-amp)", details
    return "ok", message, details


def _demo_model():
    """The bundled demo model, or None when it is missing (the inference check reports that)."""
    from .checkpoint import CheckpointError
    from .pretrained import load_pretrained

    try:
        return load_pretrained()
    except CheckpointError:
        return None


def check_data() -> tuple:
    """The training images: ``$GLCIC_DATA`` or the bundled ``data/train``.  Missing is a
    warning (``train --data DIR`` still works), not an error."""
    from .data import default_train_dir, list_images

    root = default_train_dir()
    source = "GLCIC_DATA" if os.environ.get("GLCIC_DATA") else "bundled"
    if not root.is_dir():
        fix = ("point GLCIC_DATA at a folder of images" if source == "GLCIC_DATA"
               else "re-clone the repository, or set GLCIC_DATA / pass --data to train on your own images")
        return "warning", f"no training images: {root} ({source}) is not a folder; {fix}", {"path": str(root)}
    n = len(list_images(root)[0])
    if n == 0:
        return "warning", f"{root} ({source}) holds no jpg/png/webp images; add some or set GLCIC_DATA", {
            "path": str(root)}
    return "ok", f"{n} training images in {root} ({source})", {"path": str(root), "images": n}


def check_widgets() -> tuple:
    """ipywidgets and anywidget, which the notebooks' interactive widgets need."""
    found, missing = [], []
    for name in ("ipywidgets", "anywidget"):
        try:
            found.append(f"{name} {getattr(importlib.import_module(name), '__version__', '?')}")
        except Exception as e:  # noqa: BLE001 - a broken install is as bad as a missing one
            missing.append(f"{name} ({_first_line(e)})")
    if missing:
        return "warning", (f"cannot import {', '.join(missing)}: the widgets of notebooks 01 and 08 will not show; "
                           f"pip install ipywidgets anywidget"), {"found": found}
    return "ok", ", ".join(found), {"found": found}


def _synthetic_images(folder: Path, size: int, n: int = 4) -> None:
    """``n`` smooth colour images of ``size`` x ``size`` (gradients and a blob) as PNG files."""
    from .imageio import write_image

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(n):
        img = np.stack([0.5 + 0.5 * np.sin(6 * xx + i), yy, np.exp(-((xx - 0.2 * i) ** 2 + (yy - 0.5) ** 2) * 8)], -1)
        write_image(folder / f"synthetic_{i}.png", (img * 255).astype(np.uint8))


def build_trainer(folder: Path, device: torch.device, size: int, batch_size: int, amp: bool | str):
    """A real :class:`~glcic_lib.train.Trainer` (the ``smoke`` preset at ``size``) on synthetic
    images in ``folder``; one iteration of each phase; nothing is written outside ``folder``."""
    from .schedule import preset
    from .train import Trainer

    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    _synthetic_images(images, size)
    cfg = preset("smoke", data_dir=str(images), out_dir=str(folder / "run"), device=str(device), crop_size=size,
                 batch_size=batch_size, t_c=1, t_d=1, t_joint=1, amp=amp, mean_pixel=(0.5, 0.5, 0.5))
    return Trainer(cfg, progress=False)


def check_trainer(state: dict, folder: Path, device: torch.device, size: int, batch_size: int,
                  amp: bool | str) -> tuple:
    """Build the trainer and load one batch through its data loader (kept in ``state``)."""
    if size < 64 or size % 64:
        return "error", (f"--size {size} is not a multiple of 64 (the global discriminator halves it six times): "
                         f"use --size 64 or 128"), {}
    if batch_size < 1:
        return "error", f"--batch-size {batch_size} must be at least 1", {}
    trainer = build_trainer(folder, device, size, batch_size, amp)
    state["trainer"], state["micros"] = trainer, trainer.next_micros(0)
    cfg = trainer.config
    n_params = sum(p.numel() for p in trainer.completion.parameters())
    return "ok", (f"smoke preset: {size}x{size} crops, holes {cfg.hole_range[0]}-{cfg.hole_range[1]} px, batch "
                  f"{batch_size}, width {cfg.width} ({n_params / 1e6:.2f} M parameters)"), {"parameters": n_params}


def check_phase(state: dict, phase: str, steps: int) -> tuple:
    """One warm-up and ``steps`` timed iterations of ``phase`` with :meth:`Trainer.step`, the
    trainer's own code path; every loss and every weight must stay finite."""
    trainer, micros = state["trainer"], state["micros"]
    cfg = trainer.config
    iteration = {"completion": 0, "discriminator": cfg.t_c, "joint": cfg.t_c + cfg.t_d}[phase]
    dtype = str(trainer.amp_dtype).replace("torch.", "") if trainer.use_amp else "float32"
    fix = ("try --no-amp (float32 training)" if trainer.amp_dtype == torch.float16
           else "float32 training should not do this: check the data, or report this line")
    times, logs = [], {}
    for _ in range(steps + 1):  # the first step warms up (allocations, kernel selection)
        synchronize(trainer.device)
        t0 = time.perf_counter()
        logs = trainer.step(iteration, micros)
        synchronize(trainer.device)
        times.append(time.perf_counter() - t0)
        if logs.get("phase") != phase:
            raise RuntimeError(f"iteration {iteration} ran the {logs.get('phase')} phase instead of {phase}")
        bad = {k: v for k, v in logs.items() if k != "phase" and not math.isfinite(v)}
        if bad:
            k, v = next(iter(bad.items()))
            return "error", f"loss {k} is {v} in the {phase} phase with {dtype}: {fix}", {"losses": logs}
    nets = [trainer.completion] + ([trainer.discriminator] if trainer.discriminator is not None else [])
    if not all(torch.isfinite(p).all() for net in nets for p in net.parameters()):
        return "error", f"weights are not finite after the {phase} phase with {dtype}: {fix}", {"losses": logs}
    seconds = sum(times[1:])
    per_s = steps * cfg.images_per_iteration / seconds
    losses = {k: v for k, v in logs.items() if k != "phase"}
    shown = ", ".join(f"{k} {v:.4g}" for k, v in losses.items())
    return "ok", (f"{per_s:.1f} images/s ({steps} step{'s' * (steps > 1)} of {cfg.batch_size} in {seconds:.2f} s, "
                  f"{dtype}); {shown}"), {"images_per_s": per_s, "losses": losses, "seconds": seconds}


def check_memory(device: torch.device) -> tuple:
    """Peak memory: on CUDA what torch allocated during the training steps (the statistics are
    reset before them), on a CPU the peak resident memory of the whole process so far."""
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        total = torch.cuda.get_device_properties(device).total_memory / 2**20
        return "ok", f"{peak:.0f} MiB allocated on the GPU during the training steps (of {total / 1024:.1f} GiB)", {
            "peak_mb": peak, "how": "torch.cuda.max_memory_allocated"}
    if device.type == "mps":
        current = getattr(torch.mps, "driver_allocated_memory", lambda: float("nan"))() / 2**20
        return "ok", f"{current:.0f} MiB held by the MPS driver (no peak statistics on MPS)", {
            "peak_mb": current, "how": "torch.mps.driver_allocated_memory"}
    from .bench import _rss_peak_mb

    peak = _rss_peak_mb()
    return "ok", f"{peak:.0f} MiB peak resident memory of this process (Python and torch included)", {
        "peak_mb": peak, "how": "peak RSS"}


def check_inference(device: torch.device, size: int) -> tuple:
    """The bundled demo model completes a ``size`` x ``size`` image with one square hole on
    ``device`` in :func:`glcic_lib.complete`'s automatic precision: the output must be finite
    and the known pixels exactly the input's.  A reduced-precision overflow (which ``complete``
    repairs by running again in float32) is a warning."""
    from .inpaint import complete, precision_choice
    from .pretrained import load_pretrained

    model = load_pretrained()
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    image = torch.stack([xx, yy, (xx + yy) / 2])[None]
    mask = torch.zeros(1, 1, size, size)
    lo, hi = size // 4, size // 4 + size * 3 // 8
    mask[..., lo:hi, lo:hi] = 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        out = complete(model, image, mask, device=device)
        seconds = time.perf_counter() - t0
    precision, why = precision_choice(model, device)
    details = {"seconds": seconds, "precision": precision, "reason": why}
    if out.shape != image.shape or not torch.isfinite(out).all():
        return "error", (f"the demo model's output is not finite ({precision} on {device}): try "
                         f"complete(..., precision='float32') / a CPU, or report this line"), details
    known = (mask == 0).expand_as(image)
    if not torch.equal(out[known], image[known]):
        return "error", "pixels outside the hole changed: this is a bug in complete(), please report it", details
    message = (f"demo model completed a {size}x{size} image with a {hi - lo}x{hi - lo} hole in "
               f"{seconds * 1000:.0f} ms ({precision})")
    overflow = [w for w in caught if "overflowed" in str(w.message)]
    if overflow:
        return "warning", (f"{message}, but {overflow[0].message}: pass precision='float32' to skip the "
                           f"first pass"), details
    return "ok", message, details


# ---------------------------------------------------------------------------- the report

def default_size(device: torch.device | None) -> int:
    """The training image size of the doctor's steps: 128 on a CUDA GPU, 64 elsewhere."""
    return 128 if device is not None and device.type == "cuda" else 64


def run_doctor(device: str | None = None, size: int | None = None, batch_size: int = 4, steps: int = 2,
               amp: bool | str = True, progress: Callable[[Check], None] | None = None) -> DoctorReport:
    """Run every check (see the module docstring) and return the :class:`DoctorReport`.

    ``device``: as ``--device`` (None: the best available).  ``size`` (a multiple of 64; default
    128 on CUDA, 64 elsewhere) and ``batch_size``: of the training steps.  ``steps``: timed
    iterations per phase after one warm-up.  ``amp``: as :attr:`TrainConfig.amp` (True: float16
    on CUDA, float32 elsewhere; False: float32, as ``--no-amp``; ``"float16"`` forces the CUDA
    code path, loss scaling included, on any device).
    ``progress``: called with each check as it finishes (the command line prints them as they come).
    Never raises (a check's exception is an error line), except on a keyboard interrupt.
    """
    t_start = time.perf_counter()
    checks: list[Check] = []

    def add(check: Check) -> Check:
        checks.append(check)
        if progress is not None:
            progress(check)
        return check

    for name, fn in (("python", check_python), ("torch", check_torch)):
        add(_run(name, fn))
    dev_check = add(_run("device", check_device, device))
    dev = torch.device(dev_check.details["device"]) if dev_check.details.get("device") else None
    if dev is not None:
        add(_run("precision", check_precision, dev, amp))
    add(_run("data", check_data))
    add(_run("widgets", check_widgets))
    if dev is None:  # the device check already says what is wrong; nothing can run without one
        return DoctorReport(checks, time.perf_counter() - t_start)

    size = size or default_size(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    state: dict = {}
    with tempfile.TemporaryDirectory(prefix="glcic_doctor_") as tmp:
        built = add(_run("trainer", check_trainer, state, Path(tmp), dev, size, batch_size, amp))
        if built.status != "error":
            for phase in ("completion", "discriminator", "joint"):
                add(_run(f"train: {phase}", check_phase, state, phase, max(1, int(steps))))
        state.clear()  # the networks and batches, before the folder goes
    add(_run("peak memory", check_memory, dev))
    add(_run("inference", check_inference, dev, size))
    return DoctorReport(checks, time.perf_counter() - t_start)


# ---------------------------------------------------------------------------- command line

def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--size", type=int, default=None,
                   help="image size of the training steps, a multiple of 64 (default: 128 on CUDA, 64 elsewhere)")
    p.add_argument("--batch-size", type=int, default=4, help="images per training step (default: 4)")
    p.add_argument("--steps", type=int, default=2, help="timed steps per training phase after a warm-up (default: 2)")
    p.add_argument("--no-amp", action="store_true", help="train in float32 (no mixed precision on CUDA)")


def main(args: argparse.Namespace) -> int:
    """Print the report line by line as the checks finish; exit 1 when any check is an error."""
    print(HEADER, flush=True)
    report = run_doctor(device=args.device, size=args.size, batch_size=args.batch_size, steps=args.steps,
                        amp=not args.no_amp, progress=lambda c: print(c.row(), flush=True))
    print(report.summary())
    return 0 if report.ok else 1
