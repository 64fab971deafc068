"""Helpers for the first cell of every notebook: device line, seeding, smoke mode, figures."""
from __future__ import annotations

import sys

import torch

from .config import smoke_mode
from .device import describe_device, pick_device, seed_everything


def in_colab() -> bool:
    return "google.colab" in sys.modules


def setup(seed: int = 0, quiet: bool = False) -> torch.device:
    """Seed everything, pick the device and print one line about the environment.

    Returns the device the notebook should use.  In smoke mode (``GLCIC_SMOKE=1``) the line
    says so: the notebook then runs with small sizes and few iterations.
    """
    seed_everything(seed)
    device = pick_device()
    if not quiet:
        where = "Colab" if in_colab() else "local Jupyter"
        print(f"{describe_device(device)} | {where} | seed {seed}")
        if smoke_mode():
            print("smoke mode: small images, narrow networks and few iterations (unset GLCIC_SMOKE for the full run)")
    return device


def colab_badge(notebook: str) -> str:
    """Markdown for an "Open in Colab" badge pointing at ``notebooks/<notebook>``."""
    from .config import REPO_URL

    path = REPO_URL.replace("https://github.com/", "")
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{path}/blob/main/notebooks/{notebook})")
