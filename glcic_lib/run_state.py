"""A training run's state on disk: what a checkpoint of a run holds (networks, optimisers,
gradient scalers, iteration, history, RNG states) and how a run is restored from it, exactly
enough that ``--resume`` continues bit for bit.  :class:`RunState` is a part of
:class:`glcic_lib.train.Trainer`.

Everything is stored as tensors and plain Python types, so that the checkpoint loads with
``weights_only=True`` (:mod:`glcic_lib.checkpoint`): numpy's random state becomes a dict with
its key as a tensor (:func:`numpy_rng_state`), restored exactly by :func:`set_numpy_rng_state`.
The final checkpoint of a run also stores the trained network's measured reduced-precision
error (:mod:`glcic_lib.precision_check`), which ``complete(precision="auto")`` reads.

A checkpoint that cannot be written (a full disk: ``ENOSPC``, or the ``RuntimeError`` torch
raises then, "[enforce fail at inline_container.cc] unexpected pos ...") stops the run with a
:class:`CheckpointWriteError`: one line naming the file and the free space; the previous
checkpoint is untouched (writes are atomic), so ``--resume`` continues once space is freed.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError, _load_state, read_checkpoint, save_checkpoint
from .schedule import RESUME_MUST_MATCH

#: Fragments of the messages of the RuntimeError torch's zip writer raises when a write fails
#: (a full disk shows as "[enforce fail at inline_container.cc:672] . unexpected pos N vs M").
_TORCH_WRITE_FAILURES = ("inline_container", "unexpected pos", "PytorchStreamWriter", "file write failed")


class CheckpointWriteError(CheckpointError):
    """A training checkpoint could not be written (full disk, ...); the previous one is intact."""


def numpy_rng_state() -> dict:
    """numpy's global random state (``np.random.get_state()``) as plain types and a tensor."""
    name, key, pos, has_gauss, cached = np.random.get_state()
    return {"bit_generator": str(name), "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def set_numpy_rng_state(saved) -> None:
    """Restore what :func:`numpy_rng_state` stored (or the tuple older checkpoints stored,
    its key an array or, after ``convert-checkpoint``, a tensor)."""
    if isinstance(saved, dict):
        saved = (saved["bit_generator"], saved["key"], saved["pos"], saved["has_gauss"], saved["cached_gaussian"])
    name, key, pos, has_gauss, cached = saved
    key = key.numpy() if isinstance(key, torch.Tensor) else np.asarray(key)
    np.random.set_state((name, key.astype(np.uint32), int(pos), int(has_gauss), float(cached)))


def _human_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def describe_write_failure(path: Path, error: BaseException, saved_iteration: int | None) -> str:
    """One line: which checkpoint could not be written, why, the free space, what is intact."""
    path = Path(path)
    if isinstance(error, OSError):
        why = error.strerror or str(error) or type(error).__name__
    else:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        why = f"the write failed ({first[:160]}; usually a full disk)"
    try:
        free = f"{_human_bytes(shutil.disk_usage(path.parent).free)} free on {path.parent}"
    except OSError:
        free = f"free space on {path.parent} unknown"
    if path.is_file():
        kept = (f"the previous checkpoint {path}" + (f" (iteration {saved_iteration})" if saved_iteration is not None
                                                     else "") + " is intact: free some space and continue with --resume")
    else:
        kept = "no earlier checkpoint of this run exists: free some space and start again"
    return f"cannot save the training checkpoint {path}: {why} ({free}); {kept}"


#: What runs saved before a field existed used (so their checkpoints still resume).
_DEFAULTS_BEFORE = {"holes": "rect", "augment": "none"}


class RunState:
    """Checkpoint I/O of :class:`glcic_lib.train.Trainer`."""

    def train_state(self) -> dict:
        state = {
            "iteration": self.iteration,
            "phase": self.config.phase_at(min(self.iteration, self.config.total - 1)),
            "config": self.config.to_dict(),
            "opt_c": self.opt_c.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "scaler_c": self.scaler_c.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "history": self.history,
            "skipped": self.skipped,
            "elapsed": self.elapsed,
            "rng": {"torch": torch.get_rng_state(), "numpy": numpy_rng_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        }
        return state

    def save(self, path: str | Path, final: bool = False) -> Path | None:
        """Write the checkpoint atomically (rank 0 only).  ``final``: the run's last checkpoint,
        which also stores the network's measured reduced-precision error (:meth:`precision_error`).
        A failed write (full disk, ...) is a :class:`CheckpointWriteError`."""
        if not self.is_main:
            return None
        meta = {"preset": self.config.preset, "iteration": self.iteration, "data_dir": str(self.data_root),
                "note": "glcic_lib training run"}
        if final:
            measured = self.precision_error()
            if measured:
                meta["reduced_precision"] = measured
        try:
            saved = save_checkpoint(path, self.completion, self.discriminator, self.train_state(), meta)
        except (OSError, RuntimeError) as e:
            if isinstance(e, RuntimeError) and not any(f in str(e) for f in _TORCH_WRITE_FAILURES):
                raise
            raise CheckpointWriteError(describe_write_failure(Path(path), e, self._saved_iteration)) from None
        self._saved_iteration = self.iteration
        return saved

    def precision_error(self) -> dict:
        """The trained completion network's reduced-precision error against float32 on the
        bundled held-out photographs (:func:`glcic_lib.precision_check.measure_precision`):
        bfloat16 on the CPU, and float16 on the training GPU when there is one; measured once
        per iteration count (a smoke run measures 2 images instead of 8).  It is also attached
        to the network, so that ``complete(trainer.completion, ...)`` can use it.  Without the
        held-out photographs (an installation without ``data/``) it warns and returns ``{}``:
        the checkpoint then has no measurement, and ``auto`` runs it in float32."""
        import sys

        from .precision_check import measure_precision

        cached = getattr(self, "_precision_error", None)
        if cached is not None and cached[0] == self.iteration:
            return cached[1]
        n = 2 if self.config.preset == "smoke" else 8
        try:
            result = measure_precision(self.completion, "cpu", images=n)
            if self.device.type == "cuda":   # float16 only: the CPU's bfloat16 entry is what a CPU decides from
                result.update(measure_precision(self.completion, self.device, precisions=("float16",), images=n))
        except (FileNotFoundError, ValueError) as e:
            print(f"warning: the reduced-precision error of this network was not measured ({e}); "
                  f"complete(precision='auto') will run it in float32", file=sys.stderr, flush=True)
            result = {}
        self.completion.reduced_precision = result or None
        self._precision_error = (self.iteration, result)
        return result

    def load(self, path: str | Path) -> None:
        """Restore a run from its checkpoint; a missing, corrupt or mismatched one is a CheckpointError."""
        path = Path(path)
        if not path.exists():
            raise CheckpointError(f"nothing to resume: {path} does not exist (start without --resume)")
        ckpt = read_checkpoint(path)
        state = ckpt.get("train_state")
        if not state:
            raise CheckpointError(f"{path} holds no training state (optimisers, iteration): it cannot be resumed")
        saved = state.get("config", {})
        mine = self.config.to_dict()
        for key in RESUME_MUST_MATCH:
            a, b = saved.get(key, _DEFAULTS_BEFORE.get(key)), mine[key]
            if isinstance(a, list):
                a = tuple(a)
            if a != b:
                raise CheckpointError(f"cannot resume {path}: it was trained with {key}={a!r} but this run has "
                                      f"{key}={b!r}")
        _load_state(self.completion, ckpt["completion"], "completion network", path)
        self.completion.adopt_modes(ckpt["completion"].get("config", {}))
        if self.discriminator is not None:
            if not ckpt.get("discriminator"):
                raise CheckpointError(f"cannot resume {path}: it has no discriminator")
            _load_state(self.discriminator, ckpt["discriminator"], "discriminator", path)
        try:
            self.opt_c.load_state_dict(state["opt_c"])
            if self.opt_d is not None:
                self.opt_d.load_state_dict(state["opt_d"])
            self.scaler_c.load_state_dict(state["scaler_c"])
            self.scaler_d.load_state_dict(state["scaler_d"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"cannot resume {path}: optimiser state does not fit ({e})") from e
        self.iteration = int(state["iteration"])
        self.history = [h for h in state.get("history", []) if h["iteration"] <= self.iteration]
        self.skipped = int(state.get("skipped", 0))
        self.elapsed = float(state.get("elapsed", 0.0))
        rng = state.get("rng") or {}
        if rng.get("torch") is not None:
            torch.set_rng_state(rng["torch"])
        if rng.get("numpy") is not None:
            set_numpy_rng_state(rng["numpy"])
        if rng.get("python") is not None:
            random.setstate(rng["python"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self._loader_iter = None
