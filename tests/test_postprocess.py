"""Post-processing: fast marching then Poisson blending, per hole, safe at the borders."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from conftest import random_image
from glcic_lib.postprocess import postprocess


def _smooth(h, w):
    """A smooth colour ramp (uint8): Poisson blending should reproduce it almost exactly."""
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    img = np.stack([40 + 150 * yy / max(h - 1, 1), 60 + 120 * xx / max(w - 1, 1),
                    200 - 80 * (yy + xx) / max(h + w - 2, 1)], axis=-1)
    return img.round().astype(np.uint8)


@pytest.fixture(autouse=True)
def _no_warnings():
    """seamlessClone must never fail here (the module would warn and keep the Telea fill)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _offset_fill(image, mask, offset=50):
    """A 'completion' whose holes hold the right content, shifted in brightness: a seam."""
    out = image.astype(int)
    out[mask] += offset
    return np.clip(out, 0, 255).astype(np.uint8)


MASKS = {
    "centre": lambda h, w: (slice(20, 40), slice(25, 45)),
    "top-left corner": lambda h, w: (slice(0, 15), slice(0, 18)),
    "bottom-right corner": lambda h, w: (slice(h - 12, h), slice(w - 20, w)),
    "whole left column": lambda h, w: (slice(0, h), slice(0, 6)),
    "bottom edge": lambda h, w: (slice(h - 1, h), slice(10, 50)),
}


@pytest.mark.parametrize("where", list(MASKS))
def test_blending_removes_a_brightness_seam_anywhere(where):
    h, w = 60, 70
    image = _smooth(h, w)
    mask = np.zeros((h, w), bool)
    mask[MASKS[where](h, w)] = True
    seamed = _offset_fill(image, mask)
    out = postprocess(seamed, mask)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], image[~mask])  # known pixels untouched
    err_before = np.abs(seamed[mask].astype(int) - image[mask]).mean()
    err_after = np.abs(out[mask].astype(int) - image[mask]).mean()
    assert err_before >= 45
    # Poisson blending keeps the gradients (the ramp's) and matches the border: the offset
    # goes (what remains is fast marching's own error on a ramp, a few levels)
    assert err_after < 8, (where, err_after)


@pytest.mark.parametrize("hh, ww", [(9, 14), (10, 10), (9, 13), (20, 7), (3, 3), (4, 5)])
def test_seamless_clone_puts_the_box_back_exactly(hh, ww):
    """OpenCV places the clone from a rounded centre: with the centre _clone picks, cloning an
    image into itself gives the image back, for odd and even box sizes (a box one pixel off
    would move random texture by ~85 grey levels).  postprocess() dilates every hole first: OpenCV
    rejects masks smaller than 3x3."""
    from glcic_lib.postprocess import _clone

    src = np.random.default_rng(hh * 100 + ww).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    m = np.zeros((40, 40), np.uint8)
    m[12:12 + hh, 9:9 + ww] = 255
    out = _clone(src, src.copy(), m)
    assert np.abs(out.astype(int) - src).max() <= 1
    assert m.max() == 255 and (m > 0).sum() == hh * ww  # the mask is not overwritten


def test_a_right_fill_stays_close():
    """If the network's pixels are already right, blending keeps them close, and closer than
    fast marching alone (Poisson blending keeps the network's gradients).  It is not exact:
    OpenCV's NORMAL_CLONE takes the guidance gradients near the mask's edge from the
    destination, the Telea fill: that is the blending the paper wants for real seams."""
    yy, xx = np.mgrid[:64, :64]
    image = np.stack([4 * yy, 4 * xx, 255 - 2 * (yy + xx)], axis=-1).clip(0, 255).astype(np.uint8)
    for y0, x0, hh, ww in [(10, 10, 9, 14), (30, 5, 20, 7), (20, 40, 11, 20)]:
        mask = np.zeros((64, 64), bool)
        mask[y0:y0 + hh, x0:x0 + ww] = True
        steps = postprocess(image, mask, return_steps=True)
        blended = np.abs(steps["blended"][mask].astype(int) - image[mask]).mean()
        telea = np.abs(steps["telea"][mask].astype(int) - image[mask]).mean()
        assert blended < 3 and blended < telea, (y0, x0, blended, telea)


def test_many_and_tiny_holes(rng):
    h, w = 80, 90
    image = _smooth(h, w)
    mask = np.zeros((h, w), bool)
    ys, xs = rng.integers(0, h, 150), rng.integers(0, w, 150)
    mask[ys, xs] = True  # 150 one-pixel holes, many at the border
    mask[40:46, 40:70] = True
    seamed = _offset_fill(image, mask, 60)
    steps = postprocess(seamed, mask, return_steps=True)
    assert set(steps) == {"telea", "blended"}
    for out in steps.values():
        assert np.array_equal(out[~mask], image[~mask])
        assert np.abs(out[mask].astype(int) - image[mask]).mean() < 4


@pytest.mark.parametrize("h, w", [(1, 30), (30, 1), (1, 1), (2, 3)])
def test_one_pixel_wide_images(rng, h, w):
    image = random_image(rng, h, w)
    mask = np.zeros((h, w), bool)
    mask.flat[: max(1, mask.size // 2)] = True
    if mask.all():
        mask.flat[-1] = False
    if h * w == 1:  # a 1x1 image has room for no hole but the whole image
        assert np.array_equal(postprocess(image, mask), image)
        return
    out = postprocess(image, mask)
    assert out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])


def test_telea_step_fills_from_the_border():
    image = np.full((30, 30, 3), 100, np.uint8)
    mask = np.zeros((30, 30), bool)
    mask[10:20, 10:20] = True
    garbage = image.copy()
    garbage[mask] = [255, 0, 255]
    steps = postprocess(garbage, mask, return_steps=True)
    assert np.abs(steps["telea"][mask].astype(int) - 100).max() <= 3  # a flat image stays flat


def test_empty_mask_and_errors(rng):
    image = random_image(rng, 10, 10)
    out = postprocess(image, np.zeros((10, 10), bool))
    assert np.array_equal(out, image) and out is not image
    with pytest.raises(ValueError, match="the mask covers the whole image: there are no known pixels"):
        postprocess(image, np.ones((10, 10), np.uint8))
    with pytest.raises(ValueError, match=r"postprocess expects a uint8 \(H, W, 3\) RGB image, got float32"):
        postprocess(image.astype(np.float32), np.zeros((10, 10)))
    with pytest.raises(ValueError, match=r"mask \(10, 9\) and image \(10, 10\) differ in size"):
        postprocess(image, np.zeros((10, 9)))
    with pytest.raises(ValueError, match="mask contains NaN"):
        postprocess(image, np.full((10, 10), np.nan))
    # masks as uint8 0/255 or (H, W, 1) work like bool
    m = np.zeros((10, 10), np.uint8)
    m[3:6, 3:6] = 255
    assert np.array_equal(postprocess(image, m), postprocess(image, m[..., None] > 0))
