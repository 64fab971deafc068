"""The paper's post-processing: fast marching (Telea) then Poisson blending, per hole.

For every connected hole, the completed image is first filled by OpenCV's fast-marching
inpainting (``cv2.INPAINT_TELEA``, radius 1, as the authors' code does), which gives a
destination whose colours continue smoothly from the border; then the network's pixels are
Poisson-blended into it with ``cv2.seamlessClone(..., NORMAL_CLONE)``: the result keeps the
network's *gradients* inside the hole and matches the known pixels on its border, which is
what removes the visible seams of the raw output (the paper's Figure 9).

``seamlessClone`` has three traps, all handled here: it fails (or silently shifts its result)
when the mask touches the image border, so we work on a padded copy (edge pixels replicated)
and on a window around each hole that always leaves a margin; it derives the paste position
from a rounded centre, so we pick the centre that puts the box exactly back where it came from;
and (OpenCV 5) it *overwrites the mask array it is given*, so it only ever gets a copy.
Pixels outside the holes are never changed.
"""
from __future__ import annotations

import warnings

import cv2
import numpy as np

from .imageio import hole_mask

#: Pixels around each hole that the Poisson solve may use as its boundary (the hole mask is
#: dilated by this much, so the boundary values come from known pixels).
DILATE = 1
_MARGIN = 3


def _check(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"postprocess expects a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask.shape} and image {image.shape[:2]} differ in size")
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"mask must be bool, integer or float (holes: True, 1, or at least half white), "
                        f"got dtype {mask.dtype}")
    if mask.dtype.kind == "f" and np.isnan(mask).any():
        raise ValueError("mask contains NaN")
    hole = hole_mask(mask)
    if hole.all():
        raise ValueError("the mask covers the whole image: there are no known pixels to blend with")
    return np.ascontiguousarray(image), hole


def _clone(src: np.ndarray, dst: np.ndarray, m: np.ndarray) -> np.ndarray:
    """seamlessClone src into dst inside mask m (uint8 0/255) with the box kept in place."""
    ys, xs = np.nonzero(m)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    # OpenCV puts the mask's bounding box at a corner derived from ``center`` with rounding;
    # this centre puts it back exactly at (x0, y0) (checked in tests/test_postprocess.py)
    center = (int(x0 + (x1 - x0 + 1) // 2), int(y0 + (y1 - y0 + 1) // 2))
    # copies: seamlessClone writes into its mask argument, and wants contiguous arrays
    return cv2.seamlessClone(np.ascontiguousarray(src), np.ascontiguousarray(dst), m.copy(), center,
                             cv2.NORMAL_CLONE)


def postprocess(completed: np.ndarray, mask: np.ndarray, return_steps: bool = False):
    """Blend the completed region into its surroundings (fast marching, then Poisson).

    ``completed``: uint8 RGB (H, W, 3), the network's result with the known pixels pasted
    back; ``mask``: (H, W), non-zero in the holes.  Returns the blended uint8 image, or with
    ``return_steps=True`` a dict with ``"telea"`` (after fast marching) and ``"blended"``.
    """
    completed, hole = _check(completed, mask)
    if not hole.any():
        result = completed.copy()
        return {"telea": result.copy(), "blended": result} if return_steps else result
    h, w = hole.shape
    pad = _MARGIN + DILATE + 2
    # Telea runs on the image itself: on a padded copy the replicated hole pixels at the image
    # border would count as known and carry the network's seam into the fill.  The padding
    # then gives seamlessClone the margin it needs; the destination's padding replicates the
    # Telea fill, so a hole at the border gets context-coloured boundary values there too.
    telea = cv2.inpaint(completed, hole.astype(np.uint8) * 255, 1, cv2.INPAINT_TELEA)
    src = cv2.copyMakeBorder(completed, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    blended = cv2.copyMakeBorder(telea, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    hole_p = np.pad(hole, pad).astype(np.uint8) * 255
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * DILATE + 1, 2 * DILATE + 1))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hole_p, connectivity=8)
    grow = DILATE + _MARGIN  # the window around a hole: its dilation plus a margin of known pixels
    for k in range(1, n):
        x, y, bw, bh = stats[k, :4]
        top, left = y - grow, x - grow  # >= 0 thanks to the padding
        win = (slice(top, y + bh + grow), slice(left, x + bw + grow))
        m = cv2.dilate((labels[win] == k).astype(np.uint8) * 255, kernel)
        try:
            out = _clone(src[win], blended[win], m)
        except cv2.error as e:  # not seen with the padding and margins above; keep Telea's fill then
            warnings.warn(f"seamlessClone failed on a hole at ({top + grow - pad}, {left + grow - pad}); "
                          f"keeping the fast-marching fill there ({e})", RuntimeWarning)
            continue
        inside = m > 0
        blended[win][inside] = out[inside]
    blended = blended[pad:pad + h, pad:pad + w]
    # only the holes may change; the dilated ring's blend is discarded outside the holes
    result = completed.copy()
    result[hole] = blended[hole]
    if return_steps:
        t = completed.copy()
        t[hole] = telea[hole]
        return {"telea": t, "blended": result}
    return result
