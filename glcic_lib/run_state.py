"""A training run's state on disk: what a checkpoint of a run holds (networks, optimisers,
gradient scalers, iteration, history, RNG states) and how a run is restored from it, exactly
enough that ``--resume`` continues bit for bit.  :class:`RunState` is a part of
:class:`glcic_lib.train.Trainer`."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError, _load_state, read_checkpoint, save_checkpoint
from .schedule import RESUME_MUST_MATCH


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
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        }
        return state

    def save(self, path: str | Path) -> Path | None:
        """Write the checkpoint atomically (rank 0 only)."""
        if not self.is_main:
            return None
        meta = {"preset": self.config.preset, "iteration": self.iteration, "data_dir": str(self.data_root),
                "note": "glcic_lib training run"}
        saved = save_checkpoint(path, self.completion, self.discriminator, self.train_state(), meta)
        self._saved_iteration = self.iteration
        return saved

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
            a, b = saved.get(key), mine[key]
            if isinstance(a, list):
                a = tuple(a)
            if a != b:
                raise CheckpointError(f"cannot resume {path}: it was trained with {key}={a!r} but this run has "
                                      f"{key}={b!r}")
        _load_state(self.completion, ckpt["completion"], "completion network", path)
        self.completion.input_mode = ckpt["completion"].get("config", {}).get("input_mode", self.completion.input_mode)
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
            np.random.set_state(rng["numpy"])
        if rng.get("python") is not None:
            random.setstate(rng["python"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self._loader_iter = None
