"""Photometric augmentation of training crops: darker and flatter photographs.

A completion network learns what holes look like from its training photographs.  The course's
small training set is mostly well-exposed daylight scenes; on dark or hazy photographs (night
skies, fog, dusk) a network trained only on those adds corrections it learnt on bright,
contrasty images: the model card measured its MSE-stage network losing 5 dB, in the darkest
quarter of the held-out photographs, between iterations 500 and 2,500 while it gained on the
rest.  ``augment="exposure"`` (:class:`glcic_lib.train.TrainConfig`) shows it such images: each
training crop, independently with probability :data:`P_EXPOSURE` and :data:`P_CONTRAST`,

* is darkened by a factor drawn from :data:`EXPOSURE_RANGE` (``x * s``: an under-exposed shot),
* has its contrast reduced around its own mean by a factor drawn from :data:`CONTRAST_RANGE`
  (``mean + c (x - mean)``: haze).

The factors are drawn per image from ``(seed, iteration, micro-batch)`` like the holes, so a
resumed run and any number of processes see the same images.  Both maps keep [0, 1].
"""
from __future__ import annotations

import numpy as np
import torch

AUGMENTS = ("none", "exposure")
P_EXPOSURE = 0.5
EXPOSURE_RANGE = (0.3, 1.0)
P_CONTRAST = 0.3
CONTRAST_RANGE = (0.4, 1.0)


def draw_factors(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 2)`` factors ``(exposure, contrast)`` for ``n`` images; 1 means unchanged."""
    out = np.ones((n, 2))
    for i in range(n):
        if rng.random() < P_EXPOSURE:
            out[i, 0] = rng.uniform(*EXPOSURE_RANGE)
        if rng.random() < P_CONTRAST:
            out[i, 1] = rng.uniform(*CONTRAST_RANGE)
    return out


def apply_factors(images: torch.Tensor, factors) -> torch.Tensor:
    """``images`` (N,3,H,W) in [0, 1], each darkened then flattened by its row of ``factors``."""
    f = torch.as_tensor(np.asarray(factors), dtype=images.dtype, device=images.device)
    if f.shape != (images.shape[0], 2):
        raise ValueError(f"factors must have shape ({images.shape[0]}, 2), got {tuple(f.shape)}")
    s, c = f[:, 0].view(-1, 1, 1, 1), f[:, 1].view(-1, 1, 1, 1)
    x = images * s
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (mean + c * (x - mean)).clamp(0, 1)
