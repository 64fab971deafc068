"""Shared fixtures (kept small: test files add their own where they need more)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from glcic_lib.models import CompletionNetwork

# complete()'s "auto" precision is bfloat16 on CPUs with AMX / AVX512-BF16 and float32 on others:
# pin it to float32 so that results do not depend on the machine the suite runs on (the tests of
# the bfloat16 default set the variable themselves; GLCIC_CPU_BF16=1 pytest runs it all in bfloat16).
os.environ.setdefault("GLCIC_CPU_BF16", "0")


def make_model(width: float = 0.25, seed: int = 0) -> CompletionNetwork:
    """A seeded random completion network in eval mode (fast on a CPU at small widths)."""
    torch.manual_seed(seed)
    return CompletionNetwork(width=width).eval()


@pytest.fixture(scope="session")
def small_model() -> CompletionNetwork:
    """A random ``CompletionNetwork(width=0.25)``, seeded, eval mode.  Do not modify it."""
    return make_model(0.25, seed=0)


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh seeded NumPy generator per test."""
    return np.random.default_rng(1234)


def random_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """uint8 (h, w, 3) RGB noise."""
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def gradient_images(tmp_path_factory):
    """A folder of four small synthetic training images (72x80 PNG): sine and ramp channels."""
    import cv2

    root = tmp_path_factory.mktemp("gradient_images")
    yy, xx = np.mgrid[0:72, 0:80].astype(np.float32)
    for i in range(4):
        img = (np.stack([0.5 + 0.5 * np.sin(xx / (9 + i)), yy / 72, xx / 80], -1) * 255).astype(np.uint8)
        cv2.imwrite(str(root / f"img{i}.png"), img)
    return root
