"""Image-completion metrics: L1, PSNR and SSIM (inside the holes and on the whole image) and a
boundary-seam measure.

All functions take uint8 RGB images ``(H, W, 3)`` (the course's currency: what
:func:`glcic_lib.complete` returns and what :func:`glcic_lib.imageio.read_image` reads) and,
for the hole metrics, a mask ``(H, W)`` (holes: True, 1, or at least half white, by
:func:`glcic_lib.imageio.hole_mask`).  Intensities are measured in **grey levels on [0, 255]**.

Why several numbers?  Completion has no single right answer: a plausible but different
texture scores badly on L1 and PSNR (they compare pixel by pixel with the one ground truth),
SSIM rewards matching local structure (mean, contrast, correlation in small windows), and
none of them sees the thing post-processing fixes, a visible *seam* along the hole border.
:func:`seam` measures exactly that, without needing the ground truth.  And L1, PSNR and SSIM
all *reward blur*: when the network cannot know the texture, the average of all plausible
textures (a smooth fill) is closest to the truth on average.  :func:`detail` measures what
they miss: is the hole as textured as its surroundings?  It is the ratio of gradient energy
inside the hole to the gradient energy in a ring around it, in octaves (log2: 0 = as much,
-1 = half as much); a blurry fill scores well below the ground truth's own value, a sharp
plausible texture close to it.  But :func:`detail` also rewards texture that is not there in
real photos: the completion network's 4x4 transposed convolutions (stride 1/2) leave a faint
period-4 checkerboard in its raw fills, which adds gradient energy.  :func:`grid_energy`
measures that grid alone: the percentage of the fine detail inside the hole that repeats with
period 2 or 4 pixels (about 0.3 % in real photos, tens of percent in a raw fill with the grid).

PSNR and SSIM come from scikit-image (:func:`skimage.metrics.peak_signal_noise_ratio`,
:func:`skimage.metrics.structural_similarity`), a well-tested library, rather than being
re-derived here:

* **PSNR** ``= 10 log10(255^2 / MSE)`` in dB; higher is better; identical images give ``inf``.
  Inside the holes, the MSE is taken over the hole pixels only (all three channels).
* **SSIM** uses the settings of Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5,
  population covariances, data range 255, computed per channel and averaged.  On the whole
  image it is scikit-image's mean SSIM; inside the holes it is scikit-image's full SSIM *map*
  averaged over the hole pixels (each pixel's value describes the window centred on it, so
  pixels near the border also see a little known context: that is intended, a hole whose
  content does not continue its surroundings should lose there).
* **L1** is the mean absolute difference, in grey levels.
"""
from __future__ import annotations

import warnings

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

#: SSIM settings of Wang et al. 2004 (Gaussian window, sigma 1.5, population statistics).
SSIM_SETTINGS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
#: Smallest image side SSIM's 11x11 Gaussian window fits in.
SSIM_MIN_SIDE = 11

#: The names of the numbers :func:`all_metrics` returns, in table order.
METRIC_NAMES = ("l1_hole", "psnr_hole", "ssim_hole", "l1", "psnr", "ssim", "seam", "detail", "grid")
#: Which direction is better for each metric (for tables and figures).  ``None``: neither;
#: the best value is the ground truth's own (``detail``: as textured as the real image, no
#: more, no less), which results report as ``<metric>_gt`` (:data:`GT_REFERENCE`).
HIGHER_IS_BETTER = {"l1_hole": False, "psnr_hole": True, "ssim_hole": True,
                    "l1": False, "psnr": True, "ssim": True, "seam": False, "detail": None, "grid": False}
#: Metrics whose value on the ground truth itself is a reference level, computed with the same
#: holes: a perfect completion scores exactly that (``seam_gt``, ``detail_gt``, ``grid_gt``).
GT_REFERENCE = ("seam", "detail", "grid")
#: Units, for axis labels.
UNITS = {"l1_hole": "grey levels", "psnr_hole": "dB", "ssim_hole": "", "l1": "grey levels",
         "psnr": "dB", "ssim": "", "seam": "grey levels", "detail": "log2 hole/ring",
         "grid": "% of hole Laplacian energy"}
#: Width in pixels of the ring of known pixels around the holes that :func:`detail` compares with.
DETAIL_RING = 16
#: Added to both gradient energies of :func:`detail` (grey levels squared): a flat hole in flat
#: surroundings scores 0 (a ratio of 1), not log 0/0, and noise of a level or so is not texture.
DETAIL_EPS = 1.0
#: Period in pixels of the grid :func:`grid_energy` looks for (the lattice of a stride-2 layer
#: after a stride-2 layer: periods 4 and 2, frequencies 1/4 and 1/2 cycle per pixel).
GRID_PERIOD = 4
#: :func:`grid_energy` ignores the hole pixels closer than this to a known pixel or the image
#: border (chessboard distance), so that the seam and the blend along the border do not count.
GRID_MARGIN = 3
#: Added per pixel and channel to the Laplacian energy :func:`grid_energy` divides by (grey
#: levels squared): a flat or smooth fill, whose Laplacian is only rounding noise, scores ~0.
GRID_EPS = 1.0
#: Fewer measured pixels than this (thin holes): :func:`grid_energy` returns NaN.
GRID_MIN_PIXELS = 64
#: Luma weights (ITU-R BT.601) of the grey image :func:`detail` differentiates.
_LUMA = np.array([0.299, 0.587, 0.114])


# --------------------------------------------------------------------------- input checks
def _check_pair(output, target) -> tuple[np.ndarray, np.ndarray]:
    output, target = np.asarray(output), np.asarray(target)
    for name, a in (("output", output), ("target", target)):
        if a.dtype != np.uint8:
            raise TypeError(f"metrics expect uint8 RGB images on [0, 255]; {name} has dtype {a.dtype}")
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"metrics expect (H, W, 3) RGB images; {name} has shape {a.shape}")
    if output.shape != target.shape:
        raise ValueError(f"output {output.shape} and target {target.shape} differ in size")
    return output, target


def _check_mask(mask, shape: tuple[int, ...], need_holes: bool = True) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.shape != tuple(shape[:2]):
        raise ValueError(f"mask shape {mask.shape} differs from the image size {tuple(shape[:2])}")
    from .imageio import hole_mask  # OpenCV, which metrics alone does not need

    hole = hole_mask(mask)
    if need_holes and not hole.any():
        raise ValueError("the mask has no hole pixels: hole metrics are undefined")
    return hole


# --------------------------------------------------------------------------- the metrics
def l1(output, target, mask=None) -> float:
    """Mean absolute difference in grey levels, over the hole pixels if ``mask`` is given."""
    output, target = _check_pair(output, target)
    diff = np.abs(output.astype(np.float64) - target.astype(np.float64))
    if mask is not None:
        diff = diff[_check_mask(mask, output.shape)]
    return float(diff.mean())


def psnr(output, target, mask=None) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` when the pixels compared are identical).

    With ``mask``, only the hole pixels are compared: they are handed to scikit-image as one
    flat list of values, so the mean squared error is taken over the holes alone.
    """
    output, target = _check_pair(output, target)
    if mask is not None:
        hole = _check_mask(mask, output.shape)
        output, target = output[hole], target[hole]
    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        # identical inputs: MSE 0 -> 255^2 / 0 = inf, which is the right answer, not a problem
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(peak_signal_noise_ratio(target, output, data_range=255))


def _ssim(output, target) -> tuple[float, np.ndarray]:
    """scikit-image's mean SSIM and its SSIM map (H, W), averaged over the channels, in one call."""
    output, target = _check_pair(output, target)
    if min(output.shape[:2]) < SSIM_MIN_SIDE:
        raise ValueError(f"SSIM needs images of at least {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} pixels "
                         f"(its Gaussian window), got {output.shape[1]}x{output.shape[0]}")
    mean, full = structural_similarity(target, output, channel_axis=2, data_range=255, full=True,
                                       **SSIM_SETTINGS)
    return float(mean), full.mean(axis=2)


def ssim_map(output, target) -> np.ndarray:
    """scikit-image's SSIM map ``(H, W)`` (averaged over the three channels), values in [-1, 1]."""
    return _ssim(output, target)[1]


def ssim(output, target, mask=None) -> float:
    """Structural similarity: scikit-image's mean SSIM, or its SSIM map averaged over the holes."""
    output, target = _check_pair(output, target)
    if mask is None:
        return _ssim(output, target)[0]
    hole = _check_mask(mask, output.shape)
    return float(_ssim(output, target)[1][hole].mean())


_DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))


def seam_edges(image, mask) -> tuple[np.ndarray, np.ndarray]:
    """The per-edge seam mismatch behind :func:`seam`.

    Returns ``(values, where)``: ``values`` (K, 3) the signed mismatch of every measured
    boundary edge (see :func:`seam`), ``where`` (K, 2) the ``(row, col)`` of its *outside*
    pixel, for plotting.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"seam expects a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    hole = _check_mask(mask, image.shape)
    h, w = hole.shape
    P = 2  # pad so that the shifts -1 .. +2 below stay inside the arrays
    img = np.pad(image.astype(np.float64), ((P, P), (P, P), (0, 0)))
    hol = np.pad(hole, P)
    inside_image = np.pad(np.ones_like(hole), P)

    def at(a, k, d):  # a[x + k*d] for every pixel x of the original grid
        dy, dx = d
        return a[P + k * dy:P + k * dy + h, P + k * dx:P + k * dx + w]

    values, where = [], []
    for d in _DIRECTIONS:
        known = lambda k: at(inside_image, k, d) & ~at(hol, k, d)  # noqa: E731
        in_hole = lambda k: at(inside_image, k, d) & at(hol, k, d)  # noqa: E731
        ok = known(-1) & known(0) & in_hole(1) & in_hole(2)
        if not ok.any():
            continue
        i_m1, i_0, i_1, i_2 = (at(img, k, d)[ok] for k in (-1, 0, 1, 2))
        crossing = i_1 - i_0
        expected = 0.5 * ((i_0 - i_m1) + (i_2 - i_1))
        values.append(crossing - expected)
        where.append(np.argwhere(ok))
    if not values:
        raise ValueError("the hole has no border edge with two known pixels outside and two hole pixels "
                         "inside (holes must be at least 2 pixels wide and not fill the image)")
    return np.concatenate(values), np.concatenate(where)


def seam(image, mask) -> float:
    """Boundary-seam measure: how much the image *jumps* where it crosses the hole border.

    Take every pair of 4-neighbours ``q`` (known, outside the hole) and ``p = q + d`` (inside
    the hole), for the four directions ``d``.  Along that line there are four pixels::

        q - d      q   |   p      p + d
        known   known  |  hole    hole
                   border

    and three steps: ``g_out = I(q) - I(q-d)`` just outside, ``g_cross = I(p) - I(q)`` across
    the border and ``g_in = I(p+d) - I(p)`` just inside.  In a seamless image the step across
    the border is like its neighbours; a seam is a step that is not.  The mismatch of the edge
    is ``g_cross - (g_out + g_in) / 2`` (a third-order difference: it is exactly zero when the
    intensity along the line is any quadratic, e.g. a smooth ramp), and

        seam = mean over edges and RGB channels of | g_cross - (g_out + g_in) / 2 |

    in grey levels.  Edges whose four pixels do not all exist (image border, holes 1 pixel
    thin) are skipped.  Properties the tests check: a hole filled seamlessly (a smooth ramp
    continued through it) scores 0; the same hole pasted with a brightness offset ``c`` scores
    exactly ``|c|``.  Real images score above 0 even for their own pixels (texture and edges
    cross the border), so compare with the ground truth's seam on the same mask.

    The measure needs no ground truth: it looks at the completed image alone.
    """
    values, _ = seam_edges(image, mask)
    return float(np.abs(values).mean())


def _gradient_energy(grey: np.ndarray, region: np.ndarray) -> tuple[float, int]:
    """Sum of squared forward differences (horizontal and vertical) between two pixels that are
    both in ``region``, and how many such differences there are."""
    total, count = 0.0, 0
    for axis in (0, 1):
        d = np.diff(grey, axis=axis)
        both = region[1:, :] & region[:-1, :] if axis == 0 else region[:, 1:] & region[:, :-1]
        total += float((d[both] ** 2).sum())
        count += int(both.sum())
    return total, count


def detail_energies(image, mask, ring: int = DETAIL_RING) -> tuple[float, float]:
    """``(hole, ring)``: the mean squared gradient of the grey (luma) image inside the holes and in
    the ring of known pixels at most ``ring`` pixels (Euclidean) away from them, in grey levels
    squared per pixel step.  Only steps between two pixels of the same region count, so the
    step *across* the hole border (the seam) is in neither."""
    from scipy.ndimage import distance_transform_edt

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"detail expects a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    if not isinstance(ring, (int, np.integer)) or ring < 1:
        raise ValueError(f"ring must be a positive number of pixels, got {ring!r}")
    hole = _check_mask(mask, image.shape)
    if hole.all():
        raise ValueError("the mask covers the whole image: there is no ring of known pixels to compare with")
    grey = image.astype(np.float64) @ _LUMA
    near = ~hole & (distance_transform_edt(~hole) <= ring)
    (e_hole, n_hole), (e_ring, n_ring) = _gradient_energy(grey, hole), _gradient_energy(grey, near)
    if n_hole == 0:
        raise ValueError("the holes are single pixels: there is no gradient inside them to measure")
    if n_ring == 0:
        raise ValueError("no two neighbouring known pixels around the holes: the ring is empty")
    return e_hole / n_hole, e_ring / n_ring


def detail(image, mask, ring: int = DETAIL_RING, eps: float = DETAIL_EPS) -> float:
    """Texture inside the holes relative to their surroundings: a measure that does not reward blur.

    ``detail = log2((E_hole + eps) / (E_ring + eps))``, where ``E`` is the mean squared
    gradient of the grey image (:func:`detail_energies`) inside the holes and in the ring of
    known pixels up to ``ring`` pixels around them.  0 means the hole is exactly as textured
    as its surroundings, -1 half as much gradient energy, -3 an eighth; a constant fill goes
    to ``log2(eps / (E_ring + eps))`` (very negative), noise pasted into a smooth region far
    above 0.  The logarithm makes a mean over images a geometric mean of the ratios, so one
    image with a nearly flat ring cannot dominate it.  Real images are not uniform, so the
    value to compare with is the ground truth's own ``detail`` on the same holes
    (``detail_gt`` in evaluation results): a completion close to it has the right amount of
    texture, which PSNR and SSIM cannot tell (they prefer the blurry fill).

    Like :func:`seam`, it looks at the completed image alone; the ground truth only gives the
    reference level.  It does not say whether the texture is the *right* one: read it next to
    PSNR/SSIM, and look at the images.
    """
    e_hole, e_ring = detail_energies(image, mask, ring)
    return float(np.log2((e_hole + eps) / (e_ring + eps)))


def grid_region(mask, margin: int = GRID_MARGIN) -> np.ndarray:
    """The pixels :func:`grid_energy` measures: the holes eroded by ``margin`` pixels (3x3
    square, the image border counting as known), so every pixel is at least ``margin`` pixels
    from the nearest known pixel and the 5-point Laplacian there reads only hole pixels."""
    from scipy.ndimage import binary_erosion

    if not isinstance(margin, (int, np.integer)) or margin < 1:
        raise ValueError(f"margin must be a positive number of pixels, got {margin!r}")
    hole = np.asarray(mask, bool)
    return binary_erosion(hole, np.ones((3, 3), bool), iterations=int(margin), border_value=0)


def grid_energy(image, mask, margin: int = GRID_MARGIN, eps: float = GRID_EPS,
                period: int = GRID_PERIOD) -> float:
    """How much of the fine detail inside the holes is a period-``period`` grid, in percent.

    Transposed convolutions with 4x4 kernels and stride 1/2 (the completion network's two
    upsampling layers) paint every output pixel from a different subset of kernel weights
    depending on its position modulo 2 and 4: unless training balances the weights exactly,
    the output carries a faint checkerboard that repeats every 2 and 4 pixels.  In the Fourier
    domain it is power at 1/4 and 1/2 cycle per pixel along each axis and their combinations;
    in the image it is a pattern that depends only on ``(row mod 4, column mod 4)``.

    The measure, per RGB channel, on the hole pixels at least ``margin`` pixels inside
    (:func:`grid_region`; the seam and the image border stay out):

    1. high-pass the image with the 5-point Laplacian ``L = 4 I(y, x) - I(y±1, x) - I(y, x±1)``
       (zero on any linear ramp, constant on a quadratic one, so smooth shading does not count);
    2. split the measured pixels into the ``period x period = 16`` classes of equal
       ``(y mod 4, x mod 4)`` (absolute image coordinates) and take each class's mean
       Laplacian: the best period-4 pattern fitting the hole;
    3. ``grid = 100 * between / (total + eps * K)``, with ``between = sum over classes of
       n_c (mean_c - mean)^2`` the energy of that pattern, ``total = sum over pixels of
       (L - mean)^2`` all the Laplacian energy, summed over the channels, and ``K`` the number
       of (pixel, channel) values.

    Without ``eps`` it is the share of the classes in the variance (ANOVA's eta squared); with
    a rectangle whose sides are multiples of 4 it equals the share of the Laplacian's power
    spectrum in the 15 non-zero frequency bins ``(k/4, l/4)``.  Hence: a pure period-4 (or
    period-2) pattern scores ~100; a constant or a linear ramp 0; a smooth quadratic shading 0
    (its Laplacian is constant); random texture with no grid about ``100 * 15 / K`` (the
    sampling floor: ~0.3 for a 64x96 hole); blur near 0 (little Laplacian energy, and ``eps``
    of 1 grey level squared per pixel keeps rounding noise from counting).  Real photos score
    about as much as the floor (JPEG's 8x8 blocks add a little); the raw output of a network
    with the checkerboard tens of percent.  Compare with the ground truth's own value on the
    same holes (``grid_gt`` in evaluation results); lower is better down to that level.

    Returns NaN when fewer than :data:`GRID_MIN_PIXELS` hole pixels are far enough inside
    (holes or strokes thinner than about ``2 * margin + 1`` pixels).  Only the crop around the
    holes is computed.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"grid_energy expects a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    if not isinstance(period, (int, np.integer)) or period < 2:
        raise ValueError(f"period must be an integer of at least 2 pixels, got {period!r}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")
    region = grid_region(_check_mask(mask, image.shape), margin)
    ys, xs = np.nonzero(region)
    if ys.size < GRID_MIN_PIXELS:
        return float("nan")
    img = image.astype(np.float64)  # the erosion keeps every measured pixel >= 1 px off the border
    lap = 4 * img[ys, xs] - img[ys - 1, xs] - img[ys + 1, xs] - img[ys, xs - 1] - img[ys, xs + 1]  # (K, 3)
    cls = (ys % period) * period + xs % period
    n = np.bincount(cls, minlength=period * period).astype(np.float64)
    used = n > 0
    centred = lap - lap.mean(axis=0)
    between = 0.0
    for c in range(3):
        means = np.bincount(cls, weights=centred[:, c], minlength=period * period)[used] / n[used]
        between += float((n[used] * means ** 2).sum())
    total = float((centred ** 2).sum())
    denominator = total + eps * centred.size
    return 100.0 * between / denominator if denominator > 0 else 0.0  # eps = 0 and a constant fill: 0


def all_metrics(output, target, mask) -> dict[str, float]:
    """Every metric of :data:`METRIC_NAMES` for one completed image (seam of ``output``).

    The inputs are checked once and SSIM is computed once (its mean and its map over the holes).
    """
    output, target = _check_pair(output, target)
    hole = _check_mask(mask, output.shape)
    mean_ssim, ssim_full = _ssim(output, target)
    return {
        "l1_hole": l1(output, target, hole), "psnr_hole": psnr(output, target, hole),
        "ssim_hole": float(ssim_full[hole].mean()), "l1": l1(output, target), "psnr": psnr(output, target),
        "ssim": mean_ssim, "seam": seam(output, hole), "detail": detail(output, hole),
        "grid": grid_energy(output, hole),
    }
