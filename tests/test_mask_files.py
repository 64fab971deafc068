"""Masks: a pixel is a hole when it is at least half white (issue 13), so a JPEG-saved mask,
with compression noise around its strokes, marks exactly its strokes; one rule
(glcic_lib.imageio.hole_mask) for files, arrays and tensors, everywhere a mask is taken."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from conftest import random_image
from glcic_lib import complete
from glcic_lib.imageio import hole_mask, read_mask, write_image


@pytest.fixture
def holes() -> np.ndarray:
    """Two rectangles and a tilted ellipse (curved edges, so the JPEG has to approximate them)."""
    canvas = np.zeros((96, 128), np.uint8)
    canvas[16:48, 24:64] = 255
    canvas[60:90, 90:120] = 255
    cv2.ellipse(canvas, (40, 70), (15, 9), 30, 0, 360, 255, -1)
    return canvas > 0


def _jpeg(path, array, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", array, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    buf.tofile(str(path))
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize("quality", [50, 75, 95])
def test_a_jpeg_mask_marks_exactly_its_white_strokes(tmp_path, holes, quality):
    decoded = _jpeg(tmp_path / "mask.jpg", holes.astype(np.uint8) * 255, quality)
    noise = (decoded > 0) & ~holes
    assert noise.sum() > 100, "the test needs a JPEG with compression noise outside the holes"
    assert (decoded[holes] < 255).any()  # and inside them
    assert np.array_equal(read_mask(tmp_path / "mask.jpg"), holes)


def test_a_colour_jpeg_mask_uses_the_brightest_channel(tmp_path, holes):
    rgb = np.zeros(holes.shape + (3,), np.uint8)
    rgb[holes] = (255, 0, 0)  # red strokes: chroma subsampling smears them well beyond the holes
    decoded = _jpeg(tmp_path / "red.jpg", rgb[..., ::-1], 90)
    assert ((decoded.max(axis=2) > 0) & ~holes).sum() > holes.sum() // 2
    assert np.array_equal(read_mask(tmp_path / "red.jpg"), holes)


def test_mask_files_of_every_depth(tmp_path, holes):
    grey = holes.astype(np.uint8) * 200
    grey[0, 0] = 127  # just below half white: known
    assert np.array_equal(read_mask(write_image(tmp_path / "g.png", grey)), holes)
    assert np.array_equal(read_mask(write_image(tmp_path / "b.png", holes)), holes)  # bool -> 0/255
    assert cv2.imwrite(str(tmp_path / "one.png"), holes.astype(np.uint8))  # a 0/1 label image
    assert np.array_equal(read_mask(tmp_path / "one.png"), holes)
    deep = holes.astype(np.uint16) * 40000
    deep[1, 1] = 30000  # 16-bit: below half of 65535
    assert cv2.imwrite(str(tmp_path / "d.png"), deep)
    assert np.array_equal(read_mask(tmp_path / "d.png"), holes)
    soft = holes.astype(np.float32) * 0.6
    soft[2, 2] = 0.49
    assert cv2.imwrite(str(tmp_path / "f.tif"), soft)
    assert np.array_equal(read_mask(tmp_path / "f.tif"), holes)


def test_hole_mask_rules():
    b = np.array([[True, False]])
    assert hole_mask(b) is b  # bool masks as they are
    assert hole_mask(np.array([[0, 1, 1]], np.uint8)).tolist() == [[False, True, True]]
    assert hole_mask(np.array([[0, 1, 1]], np.int64)).tolist() == [[False, True, True]]
    assert hole_mask(np.array([[0, 3, 127, 128, 255]], np.uint8)).tolist() == [[False, False, False, True, True]]
    assert hole_mask(np.array([[0, 5, 200]])).tolist() == [[False, False, True]]  # plain ints: 0-255
    assert hole_mask(np.array([[0.0, 0.1, 0.49, 0.5, 1.0]])).tolist() == [[False, False, False, True, True]]
    assert hole_mask(np.array([[0, 32767, 32768]], np.uint16)).tolist() == [[False, False, True]]
    assert hole_mask(np.zeros((0, 3), np.uint8)).shape == (0, 3)
    with pytest.raises(TypeError, match="mask must be bool, integer or float, got dtype <U1"):
        hole_mask(np.array([["a"]]))


def test_noisy_masks_mean_the_same_everywhere(small_model, rng, holes):
    """complete(), post-processing, the metrics and the evaluation figures all read a noisy uint8
    mask (and its float and tensor forms) as its clean holes."""
    from glcic_lib import metrics
    from glcic_lib.evaluation import masked_input
    from glcic_lib.postprocess import postprocess

    noisy = holes.astype(np.uint8) * 255
    noisy[~holes] = rng.integers(0, 40, size=int((~holes).sum()))
    noisy[holes] = rng.integers(200, 256, size=int(holes.sum()))
    image = random_image(rng, *holes.shape)
    clean = complete(small_model, image, holes, precision="float32")
    assert np.array_equal(complete(small_model, image, noisy, precision="float32"), clean)
    assert np.array_equal(complete(small_model, image, noisy / 255.0, precision="float32"), clean)
    t = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    done = complete(small_model, t, torch.from_numpy(noisy), precision="float32")
    assert torch.equal(done, complete(small_model, t, torch.from_numpy(holes), precision="float32"))
    soft = torch.from_numpy(noisy / 255.0).to(torch.bfloat16)  # a reduced-precision float mask
    assert torch.equal(complete(small_model, t, soft, precision="float32"), done)
    assert np.array_equal(postprocess(clean, noisy), postprocess(clean, holes))
    assert metrics.all_metrics(clean, image, noisy) == metrics.all_metrics(clean, image, holes)
    assert np.array_equal(masked_input(image, noisy), masked_input(image, holes))
    from glcic_lib.painting import _as_base

    assert np.array_equal(_as_base(noisy, holes.shape), holes)  # the mask painter's starting mask
