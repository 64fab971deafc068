"""Hole sampling: the training distribution, the local boxes, and the evaluation masks."""
import numpy as np
import pytest

from glcic_lib import masks
from glcic_lib.masks import Box


def test_scaled_sizes_follow_the_paper():
    assert masks.scaled_hole_range(256) == (96, 128)
    assert masks.scaled_hole_range(128) == (48, 64)
    assert masks.scaled_hole_range(64) == (24, 32)
    assert masks.scaled_local_size(256) == 128
    assert masks.scaled_local_size(64) == 32


def test_sample_hole_sides_are_uniform_in_the_range_and_inside_the_image():
    rng = np.random.default_rng(0)
    holes = [masks.sample_hole(256, (96, 128), rng) for _ in range(4000)]
    h = np.array([b.height for b in holes])
    w = np.array([b.width for b in holes])
    assert h.min() == 96 and h.max() == 128 and w.min() == 96 and w.max() == 128
    # uniform over the 33 integer sides: mean 112, every side value appears
    assert abs(h.mean() - 112) < 1.0 and abs(w.mean() - 112) < 1.0
    assert len(set(h.tolist())) == 33
    counts = np.bincount(h - 96, minlength=33)
    assert counts.min() > 4000 / 33 * 0.6 and counts.max() < 4000 / 33 * 1.4
    for b in holes:
        assert 0 <= b.top and b.top + b.height <= 256 and 0 <= b.left and b.left + b.width <= 256
    # placed uniformly: the top-left corner spans the whole allowed range
    tops = np.array([b.top for b in holes])
    assert tops.min() == 0 and tops.max() >= 256 - 128 - 2


def test_sample_hole_is_seeded():
    assert masks.sample_hole(64, (24, 32), 5) == masks.sample_hole(64, (24, 32), 5)
    many = {masks.sample_hole(64, (24, 32), s) for s in range(20)}
    assert len(many) > 10
    with pytest.raises(ValueError, match="a seed or numpy Generator is required"):
        masks.sample_hole(64, (24, 32), None)


def test_sample_hole_rejects_holes_larger_than_the_image():
    with pytest.raises(ValueError, match="do not fit in a 64x64 image"):
        masks.sample_hole(64, (96, 128), 0)
    with pytest.raises(ValueError, match="1 <= lo <= hi"):
        masks.sample_hole(64, (30, 20), 0)


def test_local_box_is_centred_on_the_hole():
    hole = Box(100, 60, 100, 110)           # centre (150, 115)
    box = masks.local_box(hole, 128, 256)
    assert box == Box(150 - 64, 115 - 64, 128, 128)
    assert box.center == (150, 115)


def test_local_box_is_clamped_inside_the_image_and_keeps_the_hole():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        hole = masks.sample_hole(256, (96, 128), rng)
        box = masks.local_box(hole, 128, 256)
        assert box.height == box.width == 128
        assert 0 <= box.top <= 128 and 0 <= box.left <= 128
        # the hole is inside its patch
        assert box.top <= hole.top and hole.top + hole.height <= box.top + 128
        assert box.left <= hole.left and hole.left + hole.width <= box.left + 128
    corner = masks.local_box(Box(0, 0, 96, 96), 128, 256)
    assert corner == Box(0, 0, 128, 128)
    far = masks.local_box(Box(150, 140, 106, 116), 128, 256)
    assert far == Box(128, 128, 128, 128)


def test_random_box_for_real_images():
    rng = np.random.default_rng(2)
    boxes = [masks.random_box(32, 64, (24, 32), rng) for _ in range(500)]
    assert all(b.height == b.width == 32 and 0 <= b.top <= 32 and 0 <= b.left <= 32 for b in boxes)
    assert len({(b.top, b.left) for b in boxes}) > 100
    uniform = [masks.random_box(32, 64, None, rng) for _ in range(500)]
    assert {b.top for b in uniform} == set(range(33))
    with pytest.raises(ValueError, match="local box 80 does not fit"):
        masks.random_box(80, 64, None, rng)


def test_box_mask_and_slices():
    m = masks.box_mask([Box(1, 2, 3, 4), Box(0, 0, 1, 1)], (6, 8))
    assert m.dtype == np.bool_ and m.sum() == 12 + 1
    assert m[1:4, 2:6].all() and m[0, 0]
    img = np.arange(48).reshape(6, 8)
    assert img[Box(1, 2, 3, 4).slices].shape == (3, 4)


def test_evaluation_masks_are_seeded_bool_and_non_empty():
    for fn in (masks.rect_holes, masks.free_form_mask, masks.border_hole):
        a, b = fn(96, 128, rng=3), fn(96, 128, rng=3)
        assert a.dtype == np.bool_ and a.shape == (96, 128)
        assert np.array_equal(a, b)
        assert 0 < a.mean() < 0.6
        assert not np.array_equal(a, fn(96, 128, rng=4))


def test_rect_holes_count():
    m = masks.rect_holes(200, 200, count=1, size_range=(0.2, 0.2), rng=0)
    assert m.sum() == 40 * 40
    with pytest.raises(ValueError, match="count must be at least 1"):
        masks.rect_holes(64, 64, count=0, rng=0)


@pytest.mark.parametrize("side", masks.SIDES)
def test_border_hole_touches_its_edge(side):
    m = masks.border_hole(100, 80, side=side, depth=0.25, rng=0)
    edge = {"top": m[0], "bottom": m[-1], "left": m[:, 0], "right": m[:, -1]}[side]
    assert edge.any()
    opposite = {"top": m[-1], "bottom": m[0], "left": m[:, -1], "right": m[:, 0]}[side]
    assert not opposite.any()
    depth = {"top": m.any(1).sum(), "bottom": m.any(1).sum(), "left": m.any(0).sum(), "right": m.any(0).sum()}[side]
    assert depth == (25 if side in ("top", "bottom") else 20)
    with pytest.raises(ValueError, match="side must be one of"):
        masks.border_hole(10, 10, side="middle", rng=0)


def test_mixed_training_holes_cover_every_family_and_stay_sane():
    from glcic_lib.masks import MIXED_HOLES, MaskHole, bounding_box, sample_training_hole

    rng = np.random.default_rng(0)
    holes = [sample_training_hole(128, (32, 80), rng) for _ in range(300)]
    touches_border = small = 0
    for h in holes:
        assert isinstance(h, MaskHole) and h.mask.dtype == bool and h.mask.shape == (128, 128)
        assert h.mask.any() and not h.mask.all()
        assert h.box == bounding_box(h.mask)
        rows, cols = h.box.slices
        assert h.mask[rows, cols].any() and not h.mask[: h.box.top].any()
        touches_border += bool(h.mask[0].any() or h.mask[-1].any() or h.mask[:, 0].any() or h.mask[:, -1].any())
        small += h.mask.mean() < 0.05
    # the border family (20%) always touches an edge; strokes and rectangles sometimes do too
    assert touches_border >= 0.2 * len(holes) * 0.7
    assert small >= 10                                      # small rectangles and thin strokes
    assert abs(sum(p for _, p in MIXED_HOLES) - 1) < 1e-12
    again = [sample_training_hole(128, (32, 80), np.random.default_rng(0)) for _ in range(1)]
    assert again[0] == holes[0] and holes[0] != holes[1]    # seeded


def test_bounding_box_by_hand_and_of_an_empty_mask():
    from glcic_lib.masks import Box, bounding_box

    m = np.zeros((10, 12), bool)
    m[2, 3] = m[6, 9] = True
    assert bounding_box(m) == Box(2, 3, 5, 7)
    with pytest.raises(ValueError, match="no hole pixels"):
        bounding_box(np.zeros((4, 4), bool))
