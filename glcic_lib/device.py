"""Device selection, mixed precision and seeding, shared by inference and training."""
from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch


def pick_device(preference: str | torch.device | None = None) -> torch.device:
    """CUDA if available, else Apple MPS, else CPU; ``preference`` (or ``$GLCIC_DEVICE``) overrides."""
    preference = preference or os.environ.get("GLCIC_DEVICE") or None
    if preference is not None:
        dev = torch.device(preference)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but CUDA is not available")
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise RuntimeError("device 'mps' was requested but MPS is not available")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device | None = None) -> str:
    """One human line: which device, its name, and whether smoke mode is on."""
    from .config import smoke_mode

    device = device or pick_device()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        mem = torch.cuda.get_device_properties(device).total_memory / 2**30
        what = f"CUDA GPU: {name} ({mem:.0f} GiB)"
    elif device.type == "mps":
        what = "Apple GPU (MPS)"
    else:
        what = f"CPU ({torch.get_num_threads()} threads)"
    return f"device: {what} | torch {torch.__version__} | smoke mode: {'on' if smoke_mode() else 'off'}"


def autocast(device: torch.device, enabled: bool = True):
    """Mixed precision on CUDA (float16); a no-op context elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g
