"""From mouse strokes to a hole mask: the pure-Python half of the mask painter.

The painter's front-end (an HTML canvas in the browser, see :mod:`glcic_lib.widgets`) does not
send pixels.  It sends *strokes*, small JSON dicts that describe what the hand did::

    {"kind": "brush",   "points": [[x, y], ...], "radius": 12, "erase": false}
    {"kind": "rect",    "box": [x0, y0, x1, y1],               "erase": false}
    {"kind": "ellipse", "box": [x0, y0, x1, y1],               "erase": false}
    {"kind": "clear"}

Coordinates are image pixels: ``x`` is the column, ``y`` the row, pixel centres sit on whole
numbers, and fractions are allowed (a canvas shown smaller or larger than the image produces
them).  This module turns the list of strokes into the boolean mask the completion network
needs (``True`` = hole), replaying them in order with OpenCV:

* a **brush** stroke paints every pixel whose centre lies within ``radius`` (rounded to whole
  pixels) of the polyline through its points (rounded to pixel centres): OpenCV's filled
  circle at every point, joined by the exact "capsule" around each segment; a single point is
  a disc, ``radius=0`` a one-pixel-wide line;
* a **rect** fills the box between two corners, both corners included;
* an **ellipse** fills the ellipse inscribed in such a box (pixel centres inside it);
* ``"erase": true`` paints the shape back to "known" instead of "hole";
* **clear** empties the mask.  It is a stroke like the others, so *undo* brings the holes back.

Because the strokes are the state, undo is simply "drop the last stroke and replay", and the
same list can be saved, replayed from code (the notebooks do this where no mouse exists) and
tested without a browser.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import cv2
import numpy as np

KINDS = ("brush", "rect", "ellipse", "clear")

#: Coordinates further than this from the image are refused (OpenCV works in int32 and a
#: runaway value is always a bug upstream, never a real stroke).
MAX_COORD = 1_000_000


def _number(value, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {value!r}")
    if abs(v) > MAX_COORD:
        raise ValueError(f"{what} is {v:g}, too far outside any image (limit {MAX_COORD:,})")
    return v


@dataclass(frozen=True)
class Stroke:
    """One drawing action.  Build it with :meth:`brush`, :meth:`rect`, :meth:`ellipse`,
    :meth:`clear` or :meth:`from_json` (which validates what a front-end sent)."""

    kind: str
    points: tuple[tuple[float, float], ...] = ()
    radius: float = 0.0
    box: tuple[float, float, float, float] | None = None
    erase: bool = False

    # -- constructors ------------------------------------------------------------------
    @classmethod
    def brush(cls, points: Iterable[Sequence[float]], radius: float, erase: bool = False) -> "Stroke":
        """A freehand stroke through ``points`` ((x, y) pairs) with a round brush."""
        return cls.from_json({"kind": "brush", "points": [list(p) for p in points], "radius": radius,
                              "erase": erase})

    @classmethod
    def rect(cls, x0: float, y0: float, x1: float, y1: float, erase: bool = False) -> "Stroke":
        """A filled rectangle between corners (x0, y0) and (x1, y1), both included."""
        return cls.from_json({"kind": "rect", "box": [x0, y0, x1, y1], "erase": erase})

    @classmethod
    def ellipse(cls, x0: float, y0: float, x1: float, y1: float, erase: bool = False) -> "Stroke":
        """A filled ellipse inscribed in the box between (x0, y0) and (x1, y1)."""
        return cls.from_json({"kind": "ellipse", "box": [x0, y0, x1, y1], "erase": erase})

    @classmethod
    def clear(cls) -> "Stroke":
        return cls("clear")

    @classmethod
    def from_json(cls, data: dict) -> "Stroke":
        """Validate a stroke dict (as the canvas sends it) and build a :class:`Stroke`."""
        if isinstance(data, Stroke):
            return data
        if not isinstance(data, dict):
            raise ValueError(f"a stroke must be a dict, got {type(data).__name__}")
        kind = data.get("kind")
        if kind not in KINDS:
            raise ValueError(f"unknown stroke kind {kind!r}; expected one of {', '.join(KINDS)}")
        if kind == "clear":
            return cls("clear")
        erase = data.get("erase", False)
        if not isinstance(erase, (bool, np.bool_)):
            raise ValueError(f"'erase' must be true or false, got {erase!r}")
        if kind == "brush":
            pts = data.get("points")
            if not isinstance(pts, (list, tuple)) or len(pts) == 0:
                raise ValueError("a brush stroke needs at least one point")
            points = []
            for i, p in enumerate(pts):
                if not isinstance(p, (list, tuple)) or len(p) != 2:
                    raise ValueError(f"brush point {i} must be an (x, y) pair, got {p!r}")
                points.append((_number(p[0], f"brush point {i} x"), _number(p[1], f"brush point {i} y")))
            radius = _number(data.get("radius"), "brush radius")
            if radius < 0:
                raise ValueError(f"brush radius must be >= 0, got {radius:g}")
            return cls("brush", tuple(points), radius, None, bool(erase))
        box = data.get("box")
        if not isinstance(box, (list, tuple)) or len(box) != 4:
            raise ValueError(f"a {kind} needs a box [x0, y0, x1, y1], got {box!r}")
        b = tuple(_number(v, f"{kind} box[{i}]") for i, v in enumerate(box))
        return cls(kind, (), 0.0, b, bool(erase))

    def to_json(self) -> dict:
        """The stroke as the JSON-able dict the front-end uses."""
        if self.kind == "clear":
            return {"kind": "clear"}
        if self.kind == "brush":
            return {"kind": "brush", "points": [list(p) for p in self.points], "radius": self.radius,
                    "erase": self.erase}
        return {"kind": self.kind, "box": list(self.box), "erase": self.erase}

    # -- drawing ------------------------------------------------------------------------
    def draw(self, canvas: np.ndarray) -> None:
        """Apply this stroke in place to a uint8 (H, W) canvas (1 = hole, 0 = known)."""
        if self.kind == "clear":
            canvas[...] = 0
            return
        value = 0 if self.erase else 1
        if self.kind == "brush":
            r = int(round(self.radius))
            pts = [(int(round(x)), int(round(y))) for x, y in self.points]
            for p in pts:
                cv2.circle(canvas, p, r, value, thickness=-1, lineType=cv2.LINE_8)
            for p, q in zip(pts[:-1], pts[1:]):
                if p != q:
                    _segment(canvas, p, q, r, value)
            return
        x0, y0, x1, y1 = self.box
        left, right = sorted((int(round(x0)), int(round(x1))))
        top, bottom = sorted((int(round(y0)), int(round(y1))))
        h, w = canvas.shape
        t, b = max(top, 0), min(bottom, h - 1)     # the box clipped to the canvas
        l, r = max(left, 0), min(right, w - 1)
        if t > b or l > r:
            return
        if self.kind == "rect":
            canvas[t:b + 1, l:r + 1] = value
            return
        # ellipse inscribed in the box: pixel centres with ((x-cx)/ax)^2 + ((y-cy)/ay)^2 <= 1, where
        # the half-axes reach the box's outer pixel edges (so its extreme pixels are included).
        # Computed exactly (OpenCV's ellipse is a pixel off symmetric at some sizes).
        cx, cy = (left + right) / 2, (top + bottom) / 2
        ax, ay = (right - left) / 2 + 0.5, (bottom - top) / 2 + 0.5
        yy, xx = np.mgrid[t:b + 1, l:r + 1].astype(np.float64)
        inside = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0
        canvas[t:b + 1, l:r + 1][inside] = value


def _segment(canvas: np.ndarray, p, q, r: int, value: int) -> None:
    """Paint the pixels whose centres lie within ``r`` of the segment p-q (exactly).

    OpenCV's thick lines are a pixel wider than asked at some angles; a brush must paint the
    same pixels whichever way it moves, so the segment body is computed from distances."""
    h, w = canvas.shape
    x0, x1 = max(min(p[0], q[0]) - r, 0), min(max(p[0], q[0]) + r, w - 1)
    y0, y1 = max(min(p[1], q[1]) - r, 0), min(max(p[1], q[1]) + r, h - 1)
    if x0 > x1 or y0 > y1:
        return
    yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(np.int64)
    dx, dy = q[0] - p[0], q[1] - p[1]
    length2 = dx * dx + dy * dy
    # integer arithmetic, so pixels exactly at distance r are always in: the pixel projects
    # onto the segment (0 <= dot <= |pq|^2) and its distance to the line, cross / |pq|, is <= r.
    # Pixels that project beyond the ends are covered by the discs at the points.
    dot = (xx - p[0]) * dx + (yy - p[1]) * dy
    cross = (xx - p[0]) * dy - (yy - p[1]) * dx
    near = (dot >= 0) & (dot <= length2) & (cross * cross <= r * r * length2)
    canvas[y0:y1 + 1, x0:x1 + 1][near] = value


def rasterize(strokes: Iterable, shape: tuple[int, int], base: np.ndarray | None = None) -> np.ndarray:
    """Replay ``strokes`` (dicts or :class:`Stroke`) on an (H, W) mask; returns bool, True = hole.

    ``base`` is an optional starting mask (e.g. one loaded from a file) under the strokes.
    """
    h, w = _check_shape(shape)
    canvas = np.zeros((h, w), np.uint8)
    base = _as_base(base, (h, w))
    if base is not None:
        canvas[base] = 1
    for i, s in enumerate(strokes):
        try:
            Stroke.from_json(s).draw(canvas)
        except ValueError as e:
            raise ValueError(f"stroke {i}: {e}") from None
    return canvas.astype(bool)


def _as_base(base, shape: tuple[int, int]) -> np.ndarray | None:
    """An optional starting mask as bool (:func:`glcic_lib.imageio.hole_mask`: True, 1, or at
    least half white), checked against the mask's shape."""
    if base is None:
        return None
    from .imageio import hole_mask

    base = hole_mask(base)
    if base.shape != tuple(shape):
        raise ValueError(f"base mask has shape {base.shape}, expected {tuple(shape)}")
    return base


def _check_shape(shape) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(f"shape must be (H, W), got {shape!r}")
    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1:
        raise ValueError(f"image size must be positive, got {h}x{w}")
    return h, w


@dataclass
class StrokeHistory:
    """The painter's state: an image size, a list of strokes, undo and redo.

    ``mask`` replays the strokes (cached; appending a stroke only draws that stroke, undo
    replays from the start, which is instantaneous for hand-drawn masks).
    """

    shape: tuple[int, int]
    strokes: list[Stroke] = field(default_factory=list)
    base: np.ndarray | None = None

    def __post_init__(self):
        self.shape = _check_shape(self.shape)
        self.strokes = [Stroke.from_json(s) for s in self.strokes]
        self.base = _as_base(self.base, self.shape)
        self._redo: list[Stroke] = []
        self._cache: tuple[int, np.ndarray] | None = None

    # -- editing ------------------------------------------------------------------------
    def add(self, stroke) -> Stroke:
        """Append a stroke (dict or :class:`Stroke`); clears the redo list."""
        s = Stroke.from_json(stroke)
        self.strokes.append(s)
        self._redo.clear()
        return s

    def undo(self) -> Stroke | None:
        """Remove the last stroke (None when there is nothing to undo)."""
        if not self.strokes:
            return None
        s = self.strokes.pop()
        self._redo.append(s)
        self._cache = None
        return s

    def redo(self) -> Stroke | None:
        if not self._redo:
            return None
        s = self._redo.pop()
        self.strokes.append(s)
        return s

    def clear(self) -> None:
        """Empty the mask (undoable).  A no-op when the mask is already empty."""
        if self.mask.any():
            self.add(Stroke.clear())

    def reset(self, shape: tuple[int, int] | None = None, base: np.ndarray | None = None) -> None:
        """Forget every stroke (not undoable), e.g. when a new image is loaded."""
        if shape is not None:
            self.shape = _check_shape(shape)
        self.base = _as_base(base, self.shape)
        self.strokes = []
        self._redo = []
        self._cache = None

    def sync(self, strokes_json: Sequence[dict]) -> None:
        """Make the history equal to a front-end's full stroke list (validating every stroke)."""
        new = [Stroke.from_json(s) for s in strokes_json]
        if new != self.strokes:
            if new[:len(self.strokes)] != self.strokes:
                self._cache = None  # not an append: replay everything
            self.strokes = new
            self._redo.clear()

    def to_json(self) -> list[dict]:
        return [s.to_json() for s in self.strokes]

    # -- reading ------------------------------------------------------------------------
    @property
    def mask(self) -> np.ndarray:
        """The current mask, bool (H, W), True = hole (a fresh copy)."""
        n = len(self.strokes)
        if self._cache is not None and self._cache[0] <= n:
            done, canvas = self._cache
            canvas = canvas.copy()
        else:
            done, canvas = 0, np.zeros(self.shape, np.uint8)
            if self.base is not None:
                canvas[self.base] = 1
        for s in self.strokes[done:]:
            s.draw(canvas)
        self._cache = (n, canvas)
        return canvas.astype(bool)

    def __len__(self) -> int:
        return len(self.strokes)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) of the holes, inclusive; None for an empty mask."""
    ys, xs = np.nonzero(np.asarray(mask))
    if len(ys) == 0:
        return None
    return int(ys.min()), int(xs.min()), int(ys.max()), int(xs.max())


def describe_mask(mask: np.ndarray) -> str:
    """One line about a mask: hole pixels, share of the image, number of holes, bounding box."""
    mask = np.asarray(mask, bool)
    n = int(mask.sum())
    if n == 0:
        return f"no hole yet ({mask.shape[1]}x{mask.shape[0]} image)"
    holes = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1
    t, l, b, r = mask_box(mask)
    return (f"{n} hole pixels ({100 * n / mask.size:.1f}% of {mask.shape[1]}x{mask.shape[0]}), "
            f"{holes} hole{'s' if holes != 1 else ''}, box rows {t}-{b}, columns {l}-{r}")


def overlay(image: np.ndarray, mask: np.ndarray, color=(255, 0, 0), alpha: float = 0.5,
            hatch: bool = True) -> np.ndarray:
    """The image with the holes marked (uint8 RGB), for previews and figures.

    The hole pixels are tinted with ``color``.  With ``hatch`` (the default) every other
    diagonal stripe (4 pixels wide) is tinted white instead, and the pixels just outside each
    hole get a dashed black-and-white outline, so that a hole stays visible on any image, even
    one that has the tint's colour (a red tint alone vanishes on a red object).
    """
    image = np.asarray(image)
    mask = np.asarray(mask, bool)
    if image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} differ in size")
    out = image.astype(np.float32).copy()
    if not hatch:
        out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color, np.float32)
        return out.round().astype(np.uint8)
    yy, xx = np.indices(mask.shape)
    tint = np.where(((yy + xx) // 4 % 2 == 1)[..., None], np.float32(255), np.asarray(color, np.float32))
    out[mask] = (1 - alpha) * out[mask] + alpha * tint[mask]
    grown = mask.copy()                      # 4-neighbour dilation: the ring just outside the holes
    grown[1:] |= mask[:-1]; grown[:-1] |= mask[1:]; grown[:, 1:] |= mask[:, :-1]; grown[:, :-1] |= mask[:, 1:]
    ring = grown & ~mask
    dash = (yy + xx) // 2 % 2 == 0
    out[ring & dash] = 0
    out[ring & ~dash] = 255
    return out.round().astype(np.uint8)
