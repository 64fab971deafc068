"""A fast smooth fill of the holes (push-pull), in PyTorch, for any batch, size and device.

The paper's completion network sees its holes filled with the data set's mean colour: every
hole starts as the same flat grey-brown, and the network has to learn to carry the colours of
the surroundings across the hole before it can learn anything else.  A network of the course's
size, trained for a few thousand iterations, never quite does (the model card measures it).

:func:`push_pull_fill` gives the network a better start: each hole pixel takes a smooth blend of
the known colours around it, the way a pyramid of ever coarser averages fills a hole from its
edges inwards (Gortler et al. 1996's "push-pull"; close to the membrane or Laplace fill of
classical inpainting, at a cost of a few image-sized passes):

1. **pull**: halve the resolution again and again with 2x2 averages of ``colour x known`` and
   of ``known`` (the weight), until the image is one pixel; a coarse pixel knows the average of
   every known fine pixel under it;
2. **push**: from the coarsest level down, each level keeps its own average where it has
   enough known weight and otherwise takes the bilinear upsampling of the coarser fill, blended
   by the weight;
3. **relax**: at every level of the push, :data:`RELAX_STEPS` Jacobi steps replace each pixel
   that is not fully known by the mean of its four neighbours (known pixels stay fixed).  Push-
   pull alone leaves the blocky trace of the pyramid; the steps smooth it, and since each level
   starts from the coarser level's answer, a few steps per level converge towards the harmonic
   (membrane) fill, the smoothest surface through the hole's border, as a multigrid solver does.

Measured on 44 held-out photographs at 256x256 (hole PSNR, 1-2 rectangles of 48-96 px / one of
96-128 px / free-form strokes / a border rectangle): push-pull alone 19.77 / 18.00 / 23.40 /
20.01 dB, with 5 steps per level 20.03 / 18.02 / 23.40 / 20.09, with 20 steps 20.50 / 18.51 /
24.14 / 20.58, with 40 (the default) 20.69 / 18.92 / 24.49 / 20.90; scikit-image's biharmonic
inpainting scores 20.24 / 18.04 / 24.78 / 20.29.  40 steps cost about 0.1 s for a batch of 16
crops of 128x128 on one CPU core.

Known pixels keep their exact values; the fill only depends on the known pixels (never on
what the holes held).  An image with no known pixel at all has nothing to spread: that is a
``ValueError``, as everywhere in this package.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: a pyramid pixel whose known weight reaches this share uses its own average alone
FULL_WEIGHT = 0.5
#: Jacobi steps per pyramid level in the push phase (0: plain push-pull)
RELAX_STEPS = 40


def _relax(fill: torch.Tensor, fixed: torch.Tensor, values: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` Jacobi steps of the Laplace equation: every pixel where ``fixed`` is 0 becomes
    the mean of its four neighbours (edges replicated); pixels where it is 1 keep ``values``."""
    if steps <= 0:
        return fill
    fixed = fixed.expand_as(fill) > 0
    for _ in range(steps):
        p = F.pad(fill, (1, 1, 1, 1), mode="replicate")
        mean = (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]) * 0.25
        fill = torch.where(fixed, values, mean)
    return fill


def push_pull_fill(image: torch.Tensor, mask: torch.Tensor, relax_steps: int = RELAX_STEPS) -> torch.Tensor:
    """``image`` (N,C,H,W) with every pixel where ``mask`` (N,1,H,W) is 1 replaced by a smooth
    fill from the known pixels (module docstring).  Known pixels are returned unchanged.
    ``relax_steps``: Jacobi steps per level (0: plain push-pull)."""
    if image.ndim != 4 or mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"push_pull_fill needs image (N,C,H,W) and mask (N,1,H,W), got "
                         f"{tuple(image.shape)} and {tuple(mask.shape)}")
    if image.shape[0] != mask.shape[0] or image.shape[-2:] != mask.shape[-2:]:
        raise ValueError(f"image {tuple(image.shape)} and mask {tuple(mask.shape)} differ in batch or size")
    with torch.no_grad():
        known = (mask < 0.5).to(image.dtype)
        if bool((known.flatten(1).sum(1) == 0).any()):
            raise ValueError("a mask covers the whole image: there is no known pixel to fill the holes from")
        values, weights = [image * known], [known]
        while max(values[-1].shape[-2:]) > 1:
            values.append(F.avg_pool2d(values[-1], 2, ceil_mode=True))
            weights.append(F.avg_pool2d(weights[-1], 2, ceil_mode=True))
        fill = values[-1] / weights[-1].clamp_min(1e-12)
        for v, w in zip(reversed(values[:-1]), reversed(weights[:-1])):
            coarse = F.interpolate(fill, size=v.shape[-2:], mode="bilinear", align_corners=False)
            own = v / w.clamp_min(1e-12)
            share = (w / FULL_WEIGHT).clamp(max=1.0)
            fill = _relax(share * own + (1 - share) * coarse, (w > 1 - 1e-6).to(w), own, relax_steps)
        return torch.where(known > 0, image, fill)
