"""Holes: where the completion network must invent pixels, and where the local discriminator looks.

Training (Section 3 of the paper)
    One rectangular hole per image, each side a random length in ``[96, 128]`` for a 256x256
    crop, placed uniformly at random (:func:`sample_hole`).  The local discriminator sees a
    128x128 box *centred on the hole*, shifted to stay inside the image (:func:`local_box`).
    For a real image the paper draws a second, independent hole ``M_d`` and takes the box
    around it: a box at a random place (:func:`random_box`).

Evaluation and test
    The network was trained on one rectangle but works on any holes: several rectangles
    (:func:`rect_holes`), free-form brush strokes (:func:`free_form_mask`) and holes that touch
    the image border (:func:`border_hole`), one of the paper's failure cases.

Every function takes a ``rng``: a :class:`numpy.random.Generator` or an integer seed, so a
mask is reproducible from its seed.  Boxes are ``Box(top, left, height, width)`` in pixels;
masks are numpy ``bool`` arrays (True = hole).
"""
from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

#: The paper's numbers for 256x256 crops: hole sides in [96, 128], local patch 128.
PAPER_CROP = 256
PAPER_HOLE_RANGE = (96, 128)
PAPER_LOCAL_SIZE = 128


class Box(NamedTuple):
    """An axis-aligned rectangle: rows ``top:top+height``, columns ``left:left+width``."""

    top: int
    left: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices, so ``image[..., box.slices[0], box.slices[1]]`` crops it."""
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)

    @property
    def center(self) -> tuple[float, float]:
        """Centre ``(y, x)`` in pixel coordinates (a half for even sizes)."""
        return self.top + self.height / 2, self.left + self.width / 2


def as_rng(rng) -> np.random.Generator:
    """A numpy Generator from a Generator, an int seed, or a sequence of ints (``[seed, step]``)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError("a seed or numpy Generator is required: every random choice is seeded")
    return np.random.default_rng(rng)


def scaled_hole_range(crop_size: int) -> tuple[int, int]:
    """The paper's hole sides [96, 128] scaled from 256 to ``crop_size`` (e.g. 64 -> [24, 32])."""
    lo = max(1, int(round(PAPER_HOLE_RANGE[0] * crop_size / PAPER_CROP)))
    hi = max(lo, int(round(PAPER_HOLE_RANGE[1] * crop_size / PAPER_CROP)))
    return lo, hi


def scaled_local_size(crop_size: int) -> int:
    """The local patch side 128 scaled to ``crop_size`` (half the crop; 64 -> 32)."""
    return max(1, int(round(PAPER_LOCAL_SIZE * crop_size / PAPER_CROP)))


def _height_width(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """``S`` or ``(H, W)`` -> ``(H, W)``."""
    return (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)


def _check_size(name: str, value: int) -> int:
    if int(value) != value or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def sample_hole(image_size: int | tuple[int, int], hole_range: tuple[int, int] = PAPER_HOLE_RANGE,
                rng=None) -> Box:
    """One training hole: each side uniform in ``hole_range`` (inclusive), placed uniformly.

    ``image_size`` is ``S`` or ``(H, W)``.  The top-left corner is uniform over all positions
    that keep the hole inside the image, so every pixel position of the hole is equally likely
    along each axis (up to the edges).
    """
    h_img, w_img = _height_width(image_size)
    h_img, w_img = _check_size("image height", h_img), _check_size("image width", w_img)
    lo, hi = int(hole_range[0]), int(hole_range[1])
    if not 1 <= lo <= hi:
        raise ValueError(f"hole_range must be (lo, hi) with 1 <= lo <= hi, got {hole_range}")
    if hi > min(h_img, w_img):
        raise ValueError(f"holes up to {hi} px do not fit in a {h_img}x{w_img} image; "
                         f"scale hole_range with the crop (see scaled_hole_range)")
    rng = as_rng(rng)
    h, w = (int(v) for v in rng.integers(lo, hi + 1, size=2))
    top = int(rng.integers(0, h_img - h + 1))
    left = int(rng.integers(0, w_img - w + 1))
    return Box(top, left, h, w)


def _local_side(local_size: int, h_img: int, w_img: int) -> int:
    """The local box's side, checked to fit in an ``h_img`` x ``w_img`` image."""
    s = _check_size("local_size", local_size)
    if s > min(h_img, w_img):
        raise ValueError(f"local box {s} does not fit in a {h_img}x{w_img} image")
    return s


def local_box(hole: Box, local_size: int = PAPER_LOCAL_SIZE, image_size: int | tuple[int, int] = PAPER_CROP) -> Box:
    """The local discriminator's ``local_size`` square centred on ``hole``, clamped inside the image.

    Centring: the box's centre is the hole's centre, rounded down to whole pixels.  When that
    box would cross an image edge it is shifted (not shrunk) to lie inside, so it always has
    the full size; the hole may then be off-centre, but it stays inside the box as long as it
    is no larger than the box.
    """
    h_img, w_img = _height_width(image_size)
    s = _local_side(local_size, h_img, w_img)
    top = hole.top + hole.height // 2 - s // 2
    left = hole.left + hole.width // 2 - s // 2
    top = min(max(top, 0), h_img - s)
    left = min(max(left, 0), w_img - s)
    return Box(int(top), int(left), s, s)


def random_box(local_size: int = PAPER_LOCAL_SIZE, image_size: int | tuple[int, int] = PAPER_CROP,
               hole_range: tuple[int, int] | None = PAPER_HOLE_RANGE, rng=None) -> Box:
    """A local box for a *real* image, at a random place.

    As in Algorithm 1, a second hole ``M_d`` is drawn with :func:`sample_hole` and the box is
    :func:`local_box` around it, so real and completed patches have the same distribution of
    positions.  ``hole_range=None`` instead places the box uniformly.
    """
    h_img, w_img = _height_width(image_size)
    rng = as_rng(rng)
    if hole_range is None:
        s = _local_side(local_size, h_img, w_img)
        return Box(int(rng.integers(0, h_img - s + 1)), int(rng.integers(0, w_img - s + 1)), s, s)
    return local_box(sample_hole((h_img, w_img), hole_range, rng), local_size, (h_img, w_img))


def box_mask(boxes: Box | list[Box], image_size: int | tuple[int, int]) -> np.ndarray:
    """A bool mask (H, W) that is True inside the box(es)."""
    h_img, w_img = _height_width(image_size)
    mask = np.zeros((h_img, w_img), dtype=bool)
    for b in [boxes] if isinstance(boxes, Box) else boxes:
        mask[b.slices] = True
    return mask


# ----------------------------------------------------------------------------- evaluation masks

def rect_holes(height: int, width: int, count: int = 3, size_range: tuple[float, float] = (0.15, 0.3),
               rng=None) -> np.ndarray:
    """``count`` rectangles (they may overlap), each side a random fraction ``size_range`` of
    the image's shorter side, placed uniformly; a bool (H, W) mask."""
    rng = as_rng(rng)
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    short = min(height, width)
    lo, hi = max(1, int(size_range[0] * short)), max(1, int(size_range[1] * short))
    return box_mask([sample_hole((height, width), (lo, max(lo, hi)), rng) for _ in range(count)], (height, width))


def free_form_mask(height: int, width: int, strokes: int = 4, vertices: tuple[int, int] = (3, 7),
                   brush: tuple[float, float] = (0.04, 0.08), rng=None) -> np.ndarray:
    """Free-form brush strokes, like a user painting over an object; a bool (H, W) mask.

    Each stroke is a random walk of ``vertices`` segments drawn with a round brush whose
    diameter is a random fraction ``brush`` of the shorter side.
    """
    rng = as_rng(rng)
    short = min(height, width)
    canvas = np.zeros((height, width), dtype=np.uint8)
    for _ in range(strokes):
        thickness = max(1, int(rng.uniform(*brush) * short))
        y, x = rng.uniform(0, height), rng.uniform(0, width)
        for _ in range(int(rng.integers(vertices[0], vertices[1] + 1))):
            angle = rng.uniform(0, 2 * np.pi)
            length = rng.uniform(0.1, 0.25) * short
            ny = float(np.clip(y + length * np.sin(angle), 0, height - 1))
            nx = float(np.clip(x + length * np.cos(angle), 0, width - 1))
            cv2.line(canvas, (int(x), int(y)), (int(nx), int(ny)), 255, thickness, lineType=cv2.LINE_8)
            cv2.circle(canvas, (int(nx), int(ny)), thickness // 2, 255, -1)
            y, x = ny, nx
    return canvas > 0


SIDES = ("top", "bottom", "left", "right")


def border_hole(height: int, width: int, side: str | None = None, depth: float = 0.25,
                span: tuple[float, float] = (0.3, 0.6), rng=None) -> np.ndarray:
    """A rectangle touching one image edge (the paper's failure case); a bool (H, W) mask.

    ``side`` is one of ``top/bottom/left/right`` (random when None); the hole reaches
    ``depth`` of the image into it and covers a random fraction ``span`` of that edge.
    """
    rng = as_rng(rng)
    side = side or SIDES[int(rng.integers(0, 4))]
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    along = width if side in ("top", "bottom") else height
    across = height if side in ("top", "bottom") else width
    d = max(1, int(depth * across))
    length = max(1, int(rng.uniform(*span) * along))
    start = int(rng.integers(0, along - length + 1))
    mask = np.zeros((height, width), dtype=bool)
    if side == "top":
        mask[:d, start:start + length] = True
    elif side == "bottom":
        mask[height - d:, start:start + length] = True
    elif side == "left":
        mask[start:start + length, :d] = True
    else:
        mask[start:start + length, width - d:] = True
    return mask


# ----------------------------------------------------------------------------- training holes beyond the paper

#: Hole families of :func:`sample_training_hole` with their probabilities (``holes="mixed"``).
MIXED_HOLES = (("rect", 0.35), ("small_rects", 0.15), ("free", 0.30), ("border", 0.20))


class MaskHole(NamedTuple):
    """A training hole of any shape: its bool ``mask`` (H, W) and the ``box`` bounding it (the
    local discriminator's patch is centred on the box)."""

    mask: np.ndarray
    box: Box

    def __eq__(self, other):
        return isinstance(other, MaskHole) and self.box == other.box and np.array_equal(self.mask, other.mask)

    def __ne__(self, other):
        return not self == other

    __hash__ = None


def bounding_box(mask: np.ndarray) -> Box:
    """The smallest Box holding every True pixel of a bool (H, W) mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("the mask has no hole pixels: it has no bounding box")
    return Box(int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1))


def sample_training_hole(image_size: int, hole_range: tuple[int, int], rng=None) -> MaskHole:
    """One hole of the ``mixed`` training regime (not the paper's, which is :func:`sample_hole`):

    * ``rect`` (35%): the paper's rectangle, sides in ``hole_range``;
    * ``small_rects`` (15%): 2-4 rectangles with sides in ``[lo / 4, hi / 2]``, so the network
      also learns small holes right next to known pixels;
    * ``free`` (30%): 1-4 free-form brush strokes (:func:`free_form_mask`), as a user paints;
    * ``border`` (20%): a ``hole_range`` rectangle flush with one image edge (or a corner).

    The hole is never empty and never covers the whole image."""
    rng = as_rng(rng)
    s = _check_size("image size", image_size)
    lo, hi = int(hole_range[0]), int(hole_range[1])
    names, probs = zip(*MIXED_HOLES)
    kind = names[int(rng.choice(len(names), p=probs))]
    if kind == "rect":
        box = sample_hole(s, (lo, hi), rng)
        return MaskHole(box_mask(box, s), box)
    if kind == "small_rects":
        small = (max(1, lo // 4), max(1, lo // 4, hi // 2))
        mask = box_mask([sample_hole(s, small, rng) for _ in range(int(rng.integers(2, 5)))], s)
    elif kind == "free":
        mask = free_form_mask(s, s, strokes=int(rng.integers(1, 5)), brush=(0.04, 0.10), rng=rng)
    else:
        h, w = (int(v) for v in rng.integers(lo, hi + 1, size=2))
        top = 0 if rng.random() < 0.5 else s - h
        left = int(rng.integers(0, s - w + 1))
        if rng.random() < 0.5:   # flush with a left/right edge instead (a corner half the time)
            left = 0 if rng.random() < 0.5 else s - w
            if rng.random() < 0.5:
                top = int(rng.integers(0, s - h + 1))
        mask = box_mask(Box(int(top), int(left), h, w), s)
    if mask.all():   # a brush can in principle paint everything: keep one known corner
        mask[: max(1, s // 8), : max(1, s // 8)] = False
    return MaskHole(mask, bounding_box(mask))
