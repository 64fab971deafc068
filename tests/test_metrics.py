"""Metrics on hand-made cases whose answers are known in closed form."""
import math

import numpy as np
import pytest

from glcic_lib import metrics


def _noise(h=32, w=40, seed=0):
    return np.random.default_rng(seed).integers(20, 236, (h, w, 3), dtype=np.uint8)


def _box(h=32, w=40, y0=8, y1=24, x0=10, x1=30):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def _ramp(h=32, w=40):
    """A smooth image: a linear ramp in x (different slope per channel) plus one in y."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([40 + 3 * x + y, 60 + 2 * x + 2 * y, 30 + x + 3 * y], axis=2)
    assert img.max() <= 235
    return img.round().astype(np.uint8)


def test_identical_images_give_infinite_psnr_and_ssim_one():
    img, mask = _noise(), _box()
    assert metrics.psnr(img, img) == math.inf
    assert metrics.psnr(img, img, mask) == math.inf
    assert metrics.ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert metrics.ssim(img, img, mask) == pytest.approx(1.0, abs=1e-12)
    assert metrics.l1(img, img) == 0.0 and metrics.l1(img, img, mask) == 0.0


@pytest.mark.parametrize("e", [1, 5, 17])
def test_constant_error_gives_the_known_psnr(e):
    target = _noise()
    output = target.copy()
    output[..., 1] += e  # values are <= 235, so no clipping; error e on every pixel... of one channel
    output[..., 0] -= e
    output[..., 2] += e
    expected = 20 * math.log10(255 / e)
    assert metrics.psnr(output, target) == pytest.approx(expected, rel=1e-12)
    assert metrics.l1(output, target) == pytest.approx(e)


def test_hole_metrics_look_only_inside_the_hole():
    target, mask = _noise(), _box()
    output = target.copy()
    output[mask] = output[mask] + 4  # error 4 inside the hole only
    n_hole, n_all = mask.sum(), mask.size
    assert metrics.psnr(output, target, mask) == pytest.approx(20 * math.log10(255 / 4), rel=1e-12)
    assert metrics.l1(output, target, mask) == pytest.approx(4.0)
    # whole image: MSE = 16 * n_hole / n_all
    assert metrics.psnr(output, target) == pytest.approx(10 * math.log10(255 ** 2 / (16 * n_hole / n_all)), rel=1e-12)
    assert metrics.l1(output, target) == pytest.approx(4.0 * n_hole / n_all)


def test_hole_ssim_is_the_ssim_map_averaged_over_the_hole():
    target, mask = _noise(), _box()
    output = target.copy()
    output[mask] = _noise(seed=1)[mask]
    smap = metrics.ssim_map(output, target)
    assert smap.shape == mask.shape
    # far from the hole (more than the 5-pixel window radius) the map is exactly 1
    assert np.allclose(smap[:2], 1.0)
    assert metrics.ssim(output, target, mask) == pytest.approx(smap[mask].mean())
    assert metrics.ssim(output, target, mask) < metrics.ssim(output, target) < 1.0


def test_seam_is_zero_for_a_seamless_paste():
    img, mask = _ramp(), _box()
    assert metrics.seam(img, mask) == pytest.approx(0.0, abs=1e-12)
    # a quadratic profile is seamless too (the measure is a third-order difference):
    # triangular numbers x (x - 1) / 2 are an integer quadratic
    x = np.arange(22)
    quad = np.broadcast_to((20 + x * (x - 1) // 2)[None, :, None], (32, 22, 3)).astype(np.uint8)
    assert metrics.seam(quad, _box(32, 22, 8, 24, 6, 16)) == 0.0


@pytest.mark.parametrize("c", [3, -8, 20])
def test_seam_of_a_patch_pasted_with_a_brightness_offset_is_the_offset(c):
    img, mask = _ramp(), _box()
    pasted = img.astype(int)
    pasted[mask] += c
    pasted = pasted.astype(np.uint8)
    assert metrics.seam(pasted, mask) == pytest.approx(abs(c), abs=1e-12)


def test_seam_of_a_patch_pasted_with_a_spatial_offset_is_larger():
    rng = np.random.default_rng(3)
    # a textured but correlated image: smoothed noise
    base = rng.normal(size=(48, 48, 3))
    for _ in range(3):
        base = (base + np.roll(base, 1, 0) + np.roll(base, 1, 1) + np.roll(base, (1, 1), (0, 1))) / 4
    img = (128 + 400 * base).clip(0, 255).astype(np.uint8)
    mask = _box(48, 48, 12, 36, 12, 36)
    shifted = img.copy()
    shifted[mask] = np.roll(img, (7, 5), (0, 1))[mask]  # the right texture from the wrong place
    assert metrics.seam(shifted, mask) > 2 * metrics.seam(img, mask)


def test_seam_edges_positions_are_outside_pixels_next_to_the_hole():
    mask = _box()
    vals, where = metrics.seam_edges(_ramp(), mask)
    assert vals.shape == (len(where), 3)
    assert not mask[where[:, 0], where[:, 1]].any()
    # a 16x20 box has 2*16 + 2*20 border edges, all measurable here
    assert len(where) == 2 * 16 + 2 * 20


def test_all_metrics_returns_every_named_metric():
    target, mask = _noise(), _box()
    out = metrics.all_metrics(target, target, mask)
    assert tuple(out) == metrics.METRIC_NAMES
    assert out["psnr"] == math.inf and out["ssim"] == pytest.approx(1.0)


def test_bad_inputs_are_named():
    img = _noise()
    with pytest.raises(TypeError, match="uint8 RGB images on \\[0, 255\\]; output has dtype float32"):
        metrics.psnr(img.astype(np.float32), img)
    with pytest.raises(ValueError, match="differ in size"):
        metrics.l1(img, img[:10])
    with pytest.raises(ValueError, match="no hole pixels"):
        metrics.psnr(img, img, np.zeros(img.shape[:2], bool))
    with pytest.raises(ValueError, match="mask shape \\(3, 3\\) differs"):
        metrics.ssim(img, img, np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(img[:8, :8], img[:8, :8])
    thin = np.zeros(img.shape[:2], bool)
    thin[np.arange(5, 20), np.arange(5, 20)] = True  # a diagonal line: no edge has two hole pixels
    with pytest.raises(ValueError, match="at least 2 pixels wide"):
        metrics.seam(img, thin)


# --------------------------------------------------------------------------- detail (gradient-energy ratio)
def _grey_stripes(h=48, w=48, hole_slope=4, ring_slope=2):
    """Grey image: horizontal ramp of ``ring_slope`` levels per pixel outside the central box,
    ``hole_slope`` inside it (x-differences only; every row is the same, so y-differences are 0)."""
    x = np.arange(w, dtype=np.float64)
    out = np.tile(40 + ring_slope * x, (h, 1))
    box = _box(h, w, 16, 32, 16, 32)
    inner = np.tile(40 + hole_slope * (x - 16), (h, 1))
    out[box] = inner[box]
    return np.repeat(out[..., None], 3, axis=2).round().astype(np.uint8), box


def test_detail_is_the_ratio_of_mean_squared_gradients_computed_by_hand():
    img, box = _grey_stripes(hole_slope=4, ring_slope=2)
    e_hole, e_ring = metrics.detail_energies(img, box, ring=4)
    # x-steps are the slope, y-steps 0; the counts: hole 16 rows x 15 x-steps + 15 x 16 y-steps
    assert e_hole == pytest.approx(16 * 15 * 16 / (16 * 15 * 2))
    assert e_ring == pytest.approx(4 * 0.5)  # half the steps are slope 2 (x), half 0 (y): a 4-px ring
    assert metrics.detail(img, box, ring=4, eps=0) == pytest.approx(np.log2(e_hole / e_ring))   # 2 octaves
    assert metrics.detail(img, box, ring=4) == pytest.approx(np.log2((8 + 1) / (2 + 1)))


def test_detail_ignores_the_step_across_the_hole_border():
    flat = np.full((40, 40, 3), 100, np.uint8)
    box = _box(40, 40, 10, 30, 10, 30)
    pasted = flat.copy()
    pasted[box] = 180   # a huge seam, but flat on both sides
    assert metrics.detail(pasted, box) == pytest.approx(0.0)
    assert metrics.seam(pasted, box) > 50   # the seam measure is the one that sees it


def test_blur_lowers_detail_and_the_ground_truth_scores_near_one_on_uniform_texture():
    import cv2

    texture = _noise(96, 96, seed=3)
    box = _box(96, 96, 32, 64, 32, 64)
    assert metrics.detail(texture, box) == pytest.approx(0.0, abs=0.15)
    blurred = texture.copy()
    blurred[box] = cv2.GaussianBlur(texture, (0, 0), 1)[box]
    flat = texture.copy()
    flat[box] = texture[box].reshape(-1, 3).mean(0).astype(np.uint8)
    _, e_ring = metrics.detail_energies(flat, box)
    assert metrics.detail(flat, box) == pytest.approx(np.log2(1 / (e_ring + 1)))   # only eps is left in the hole
    assert metrics.detail(flat, box) < -7 < metrics.detail(blurred, box) < -2
    assert "detail" in metrics.all_metrics(blurred, texture, box)


def test_detail_bad_inputs_are_named():
    img, box = _noise(), _box()
    with pytest.raises(ValueError, match="covers the whole image"):
        metrics.detail(img, np.ones(img.shape[:2], bool))
    with pytest.raises(ValueError, match="single pixels"):
        one = np.zeros(img.shape[:2], bool)
        one[5, 5] = True
        metrics.detail(img, one)
    with pytest.raises(ValueError, match="ring must be a positive"):
        metrics.detail(img, box, ring=0)
    with pytest.raises(ValueError, match="uint8"):
        metrics.detail(img.astype(np.float32), box)


# --------------------------------------------------------------------------- grid energy (period-4 lattice)
def _cosine(h=64, w=64, amplitude=40, period=4, axis=1):
    """128 + amplitude * cos(2 pi t / period) along ``axis`` (exact integers for period 4)."""
    t = np.arange(w if axis == 1 else h)
    wave = np.rint(128 + amplitude * np.cos(2 * np.pi * t / period))
    grey = np.tile(wave, (h, 1)) if axis == 1 else np.tile(wave[:, None], (1, w))
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def test_grid_region_is_the_hole_eroded_by_the_margin():
    box = _box(40, 40, 10, 30, 5, 35)
    assert np.array_equal(metrics.grid_region(box, 3), _box(40, 40, 13, 27, 8, 32))
    edge = _box(40, 40, 0, 20, 0, 40)   # a hole touching the image border: the border counts as known
    assert np.array_equal(metrics.grid_region(edge, 2), _box(40, 40, 2, 18, 2, 38))


def test_a_pure_period_4_cosine_scores_the_maximum_computed_by_hand():
    img, box = _cosine(amplitude=40), _box(64, 64, 9, 55, 9, 55)
    # the cosine is 168, 128, 88, 128 along x; its Laplacian 2*40 - 0 - 0 = 80, 0, -80, 0: every
    # value is its class's mean, so the pattern holds all the energy, 3200 per pixel and channel
    assert metrics.grid_energy(img, box, eps=0) == pytest.approx(100.0)
    assert metrics.grid_energy(img, box) == pytest.approx(100 * 3200 / (3200 + 1))
    assert metrics.grid_energy(_cosine(axis=0), box) == pytest.approx(100 * 3200 / 3201)
    # a period-2 checkerboard (the other frequency of the lattice): Laplacian +-160
    y, x = np.mgrid[0:64, 0:64]
    checker = np.repeat((128 + 20 * (-1) ** (x + y))[..., None], 3, axis=2).astype(np.uint8)
    assert metrics.grid_energy(checker, box) == pytest.approx(100 * 160 ** 2 / (160 ** 2 + 1))


def test_constant_ramps_and_quadratic_shading_score_zero():
    box = _box(32, 16, 2, 30, 1, 15)
    flat = np.full((32, 16, 3), 90, np.uint8)
    y, x = np.mgrid[0:32, 0:16]
    ramp = np.stack([40 + 2 * x + y, 200 - 3 * y, 10 + 5 * x], 2).astype(np.uint8)
    bowl = np.repeat((10 + x * x)[..., None], 3, axis=2).astype(np.uint8)   # Laplacian -2 everywhere
    for img in (flat, ramp, bowl):
        assert metrics.grid_energy(img, box) == 0.0
        assert metrics.grid_energy(img, box, eps=0) == 0.0   # no energy at all: 0, not 0/0


def test_grid_equals_the_laplacian_power_share_of_the_lattice_frequencies():
    """With a 40x40 measured rectangle (a multiple of 4), the class means are exactly the
    Fourier bins (k/4, l/4) of the Laplacian: check against numpy's FFT."""
    img, box = _noise(64, 64, seed=5), _box(64, 64, 9, 55, 9, 55)   # measured: rows/cols 12..51
    f = img.astype(np.float64)
    lap = 4 * f[1:-1, 1:-1] - f[:-2, 1:-1] - f[2:, 1:-1] - f[1:-1, :-2] - f[1:-1, 2:]
    crop = lap[11:51, 11:51]                  # lap[i] is pixel i + 1: pixels 12..51
    power = np.abs(np.fft.fft2(crop, axes=(0, 1))) ** 2
    power[0, 0] = 0                           # the mean is not a grid
    lattice = np.zeros((40, 40), bool)
    lattice[::10, ::10] = True                # bins 0, 10, 20, 30 of 40: 0, 1/4, 1/2, 3/4 cycle per pixel
    expected = 100 * power[lattice].sum() / power.sum()
    assert metrics.grid_energy(img, box, eps=0) == pytest.approx(expected)
    assert expected < 100 * 3 * 15 / (40 * 40)   # white noise: near the floor of 15 / K per cent


def test_grid_rises_when_a_faint_grid_is_added_and_falls_with_blur():
    import cv2

    rng = np.random.default_rng(7)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (96, 96, 3)).astype(np.float64), (0, 0), 1.2) * 3 - 250
    photo = np.clip(photo, 0, 255).astype(np.uint8)   # some smooth texture with edges
    box = _box(96, 96, 24, 72, 16, 80)
    grid = np.tile(np.array([[3, -1, 2, -2], [-1, 1, -3, 0], [2, -2, 1, -1], [0, 2, -1, 1]]), (24, 24))
    gridded = photo.copy()
    gridded[box] = np.clip(photo.astype(int) + grid[..., None], 0, 255)[box]
    blurred = photo.copy()
    blurred[box] = cv2.GaussianBlur(photo, (0, 0), 3)[box]
    g_photo, g_grid, g_blur = (metrics.grid_energy(i, box) for i in (photo, gridded, blurred))
    assert g_photo < 2 and g_grid > 5 * g_photo and g_blur < 1
    assert metrics.all_metrics(gridded, photo, box)["grid"] == pytest.approx(g_grid)


def test_grid_is_nan_for_thin_holes_and_names_bad_input():
    img = _noise()
    stroke = _box(32, 40, 10, 14, 2, 38)   # 4 px thin: nothing 3 px inside
    assert math.isnan(metrics.grid_energy(img, stroke))
    assert math.isnan(metrics.all_metrics(img, img, stroke)["grid"])
    with pytest.raises(ValueError, match="uint8"):
        metrics.grid_energy(img.astype(np.float32), _box())
    with pytest.raises(ValueError, match="margin must be a positive"):
        metrics.grid_energy(img, _box(), margin=0)
    with pytest.raises(ValueError, match="period must be"):
        metrics.grid_energy(img, _box(), period=1)
    with pytest.raises(ValueError, match="no hole pixels"):
        metrics.grid_energy(img, np.zeros((32, 40), bool))
