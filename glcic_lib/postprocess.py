"""The paper's post-processing: fast marching (Telea) then Poisson blending, per hole.

For every connected hole, the completed image is first filled by OpenCV's fast-marching
inpainting (``cv2.INPAINT_TELEA``, radius 1, as the authors' code does), which gives a
destination whose colours continue smoothly from the border; then the network's pixels are
Poisson-blended into it with ``cv2.seamlessClone(..., NORMAL_CLONE)``: the result keeps the
network's *gradients* inside the hole and matches the known pixels on its border, which is
what removes the visible seams of the raw output (the paper's Figure 9).

``seamlessClone`` fails or shifts its result when the mask touches the image border, and it
rounds the paste position; we therefore work on a padded copy (edge pixels replicated), on a
window around each hole that always leaves a margin, and place the clone so that its box lands
exactly where it came from.  Pixels outside the holes are never changed.
"""
from __future__ import annotations

import warnings

import cv2
import numpy as np

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
    return image, mask > 0


def _clone(src: np.ndarray, dst: np.ndarray, m: np.ndarray) -> np.ndarray:
    """seamlessClone src into dst inside mask m (uint8 0/255) with the box kept in place."""
    ys, xs = np.nonzero(m)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    # OpenCV places the mask's bounding box so that its corner is center - (size - 1) // 2 ... this
    # choice of center puts the corner exactly back at (x0, y0)
    center = (int(x0 + (x1 - x0 + 1) // 2), int(y0 + (y1 - y0 + 1) // 2))
    out = cv2.seamlessClone(src, dst, m, center, cv2.NORMAL_CLONE)
    return out


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
    src = cv2.copyMakeBorder(completed, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    hole_p = np.pad(hole, pad).astype(np.uint8) * 255
    telea = cv2.inpaint(src, hole_p, 1, cv2.INPAINT_TELEA)
    blended = telea.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * DILATE + 1, 2 * DILATE + 1))
    n, labels = cv2.connectedComponents(hole_p, connectivity=8)
    for k in range(1, n):
        comp = (labels == k).astype(np.uint8) * 255
        comp = cv2.dilate(comp, kernel)
        ys, xs = np.nonzero(comp)
        top, left = ys.min() - _MARGIN, xs.min() - _MARGIN
        bottom, right = ys.max() + _MARGIN + 1, xs.max() + _MARGIN + 1
        win = (slice(top, bottom), slice(left, right))
        m = comp[win]
        try:
            out = _clone(src[win], blended[win], m)
        except cv2.error as e:  # never seen after the padding and dilation above; keep Telea then
            warnings.warn(f"seamlessClone failed on a hole at ({top - pad}, {left - pad}); "
                          f"keeping the fast-marching fill there ({e})", RuntimeWarning)
            continue
        inside = m > 0
        blended[win][inside] = out[inside]
    crop = (slice(pad, pad + h), slice(pad, pad + w))
    blended, telea = blended[crop], telea[crop]
    # only the holes may change; the dilated ring's blend is discarded outside the holes
    result = completed.copy()
    result[hole] = blended[hole]
    if return_steps:
        t = completed.copy()
        t[hole] = telea[hole]
        return {"telea": t, "blended": result}
    return result
