"""The paper's losses: masked MSE for the completion, binary cross-entropy GAN losses on logits.

* Reconstruction (eq. 1): ``|| M_c * (C(x, M_c) - x) ||^2``, only inside the holes.  We
  average over the hole pixels (and channels) instead of summing, so its size does not depend
  on the image or hole size; with a fixed hole size this only rescales the loss.
* Adversarial (eq. 2): ``log D(x, M_d) + log(1 - D(C(x, M_c), M_c))``.  The discriminator
  returns *logits* and the sigmoid lives inside ``binary_cross_entropy_with_logits``, which is
  the same maths, computed stably.
* Joint (eq. 3): ``L_MSE + alpha * L_GAN`` with ``alpha = 0.0004``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: The paper's weight of the adversarial term in the joint loss.
ALPHA = 0.0004


def masked_mse(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the hole pixels only (``mask`` is 1 in the holes).

    ``output``, ``target``: (N, C, H, W); ``mask``: (N, 1, H, W) or (N, C, H, W).  The sum of
    squared errors inside the holes divided by the number of hole values (pixels x channels).
    Pixels outside the holes have no influence at all, not even through the normalisation.
    """
    if output.shape != target.shape:
        raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} differ in shape")
    if mask.ndim != 4 or mask.shape[0] != output.shape[0] or mask.shape[-2:] != output.shape[-2:] \
            or mask.shape[1] not in (1, output.shape[1]):
        raise ValueError(f"mask {tuple(mask.shape)} does not fit output {tuple(output.shape)}: "
                         f"expected (N, 1, H, W) or (N, C, H, W)")
    # in float32 whatever the inputs: a half-precision count overflows past 65,504 hole values
    mask = mask.float().expand_as(output)
    count = mask.sum()
    if count == 0:
        raise ValueError("the mask has no hole pixels: the masked MSE is undefined")
    return ((output.float() - target.float()) ** 2 * mask).sum() / count


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE of the discriminator: real pairs labelled 1, completed pairs labelled 0.

    Returns ``(BCE(real, 1) + BCE(fake, 0)) / 2``, i.e. ``-(log D(real) + log(1 - D(fake))) / 2``
    averaged over the batch: the negative of the paper's GAN term (the discriminator maximises it).
    """
    return 0.5 * (_bce(real_logits, 1.0) + _bce(fake_logits, 0.0))


def generator_loss(fake_logits: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """The completion network's adversarial loss on the discriminator's logits for completed pairs.

    ``saturating=True`` is the paper's minimax form ``log(1 - D(fake))`` (minimised); its
    gradient vanishes when the discriminator is confident, so by default we use the usual
    non-saturating form ``-log D(fake)`` = ``BCE(fake, 1)``, which has the same fixed point.
    """
    if saturating:
        return -_bce(fake_logits, 0.0)
    return _bce(fake_logits, 1.0)


def joint_loss(mse: torch.Tensor, adversarial: torch.Tensor, alpha: float = ALPHA) -> torch.Tensor:
    """Eq. 3 for the completion network: ``mse + alpha * adversarial``."""
    return mse + alpha * adversarial


#: An orthonormal opponent-colour basis (rows): luminance, red-green, yellow-blue.  Squared
#: errors summed over these three equal the squared RGB errors, so weighting them (1, 1, 1) is
#: the plain MSE.
OPPONENT = torch.tensor([[1 / 3 ** 0.5, 1 / 3 ** 0.5, 1 / 3 ** 0.5],
                         [1 / 2 ** 0.5, -1 / 2 ** 0.5, 0.0],
                         [1 / 6 ** 0.5, 1 / 6 ** 0.5, -2 / 6 ** 0.5]])


def opponent_mse(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                 chroma_weight: float = 1.0) -> torch.Tensor:
    """:func:`masked_mse` with the error measured in an opponent-colour basis (:data:`OPPONENT`)
    and its two colour-difference channels weighted by ``chroma_weight``.

    In photographs the three RGB channels move together, so most of an RGB error is luminance:
    a network trained with the plain MSE learns brightness long before colour (a small model
    on a CPU budget fills a green bush with grey).  ``chroma_weight > 1`` gives the colour
    differences a gradient of their own; ``chroma_weight = 1`` is exactly :func:`masked_mse`.
    Needs RGB images (3 channels)."""
    if output.shape[1] != 3:
        raise ValueError(f"opponent_mse needs RGB images (3 channels), got {output.shape[1]}")
    if chroma_weight < 0:
        raise ValueError(f"chroma_weight must be >= 0, got {chroma_weight}")
    basis = OPPONENT.to(device=output.device, dtype=torch.float32)
    err = torch.einsum("ck,nkhw->nchw", basis, output.float() - target.float())
    weights = torch.tensor([1.0, chroma_weight, chroma_weight], device=output.device).view(1, 3, 1, 1)
    return masked_mse(err * weights.sqrt(), torch.zeros_like(err), mask)


def grid_penalty(output: torch.Tensor, mask: torch.Tensor, period: int = 4, margin: int = 3) -> torch.Tensor:
    """The energy of the period-``period`` grid in the holes of ``output``: a differentiable
    cousin of :func:`glcic_lib.metrics.grid_energy`, to be added to a loss.

    Per image and channel: the 5-point Laplacian of ``output`` on the hole pixels at least
    ``margin`` pixels from a known pixel or the image border; those pixels split into
    ``period x period`` classes of equal ``(row mod period, column mod period)``; the penalty is
    ``sum over classes of n_c (mean_c - mean)^2`` (the energy of the best-fitting periodic
    pattern, what a checkerboard of the transposed convolutions puts there) divided by the
    number of measured values.  Unlike ``grid_energy`` it is *not* divided by all the Laplacian
    energy, so it cannot be lowered by adding noise: only by removing the pattern.  Units:
    intensities in [0, 1]; a checkerboard of +-1 grey level scores ``64 / 255**2`` ~ 1e-3.

    ``output``: (N, C, H, W); ``mask``: (N, 1, H, W), 1 in the holes.  Images with no pixel
    far enough inside a hole contribute 0 (thin strokes); the result is the mean over images.
    """
    if output.ndim != 4 or mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != output.shape[0] \
            or mask.shape[-2:] != output.shape[-2:]:
        raise ValueError(f"grid_penalty needs output (N, C, H, W) and mask (N, 1, H, W) of the same size, "
                         f"got {tuple(output.shape)} and {tuple(mask.shape)}")
    if not isinstance(period, int) or period < 2:
        raise ValueError(f"period must be an integer of at least 2, got {period!r}")
    x = output.float()
    lap = 4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:]
    known = F.pad(1 - mask.float(), (margin,) * 4, value=1.0)   # the image border counts as known
    region = (1 - F.max_pool2d(known, 2 * margin + 1, stride=1))[:, 0, 1:-1, 1:-1]   # (N, H-2, W-2)
    h, w = lap.shape[-2:]
    ys = torch.arange(1, h + 1, device=x.device) % period   # absolute coordinates of the Laplacian's pixels
    xs = torch.arange(1, w + 1, device=x.device) % period
    classes = F.one_hot(ys[:, None] * period + xs[None, :], period * period).to(x.dtype)   # (h, w, P)
    n_c = torch.einsum("nhw,hwp->np", region, classes)                       # pixels per class
    s_c = torch.einsum("nchw,hwp->ncp", lap * region[:, None], classes)      # Laplacian sums per class
    n = n_c.sum(1)                                                            # (N,)
    mean_c = s_c / n_c.clamp(min=1)[:, None, :]
    mean = s_c.sum(2) / n.clamp(min=1)[:, None]
    between = (n_c[:, None, :] * (mean_c - mean[..., None]) ** 2).sum((1, 2))   # (N,)
    return (between / (n * x.shape[1]).clamp(min=1)).mean()
