"""The classical baselines beside Telea and Navier-Stokes (Telea radius 5, biharmonic, FSR in its
own environment) and the flat-colour check of a completion network."""
import sys

import numpy as np
import pytest

from glcic_lib import evaluation, fsr, metrics
from glcic_lib.evaluation import (BASELINE_NAMES, biharmonic_inpaint, evaluate, flat_colours, flat_fill_error,
                                  flat_fill_table, flat_hole_masks, opencv_inpaint)

HAVE_FSR = fsr.available()


def _items(n=2, h=40, w=48):
    """Smooth colour ramps with a little noise and one rectangular hole each."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:h, 0:w]
    items = []
    for i in range(n):
        img = np.stack([30 + 3 * x + 5 * i, 60 + 2 * y, 200 - x - y], 2)
        img = np.clip(img + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)
        mask = np.zeros((h, w), bool)
        mask[10 + 2 * i:28 + 2 * i, 12:34] = True
        items.append((f"ramp{i}", img, mask))
    return items


def _flat_with_hole(value=(77, 120, 200), h=24, w=28):
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = value
    mask = np.zeros((h, w), bool)
    mask[6:16, 7:20] = True
    holed = img.copy()
    holed[mask] = 0
    return img, holed, mask


# --------------------------------------------------------------------------- telea5 and biharmonic
def test_every_baseline_is_described_and_the_old_names_stay():
    assert BASELINE_NAMES == ("telea", "telea5", "ns", "biharmonic", "fsr", "smooth", "harmonic")
    assert evaluation.CLASSICAL == ("telea", "telea5", "ns", "biharmonic", "fsr")   # "best classical" picks among these
    assert set(evaluation.BASELINES) == {"telea", "ns"}      # the default set the ablation iterates
    assert set(evaluation.OPENCV_BASELINES) == {"telea", "telea5", "ns"}


def test_smooth_baseline_is_the_push_pull_fill_and_never_the_best_classical():
    import torch

    from glcic_lib.pushpull import push_pull_fill
    from glcic_lib.regimes import best_baseline

    name, img, mask = _items(1)[0]
    out = evaluation.baseline_inpaint(img, mask, "smooth")
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    want = push_pull_fill(x, torch.from_numpy(mask)[None, None].float())[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(out.astype(float) - want)[mask].max() <= 0.5 + 1e-4      # rounded, nothing else
    assert np.array_equal(out[~mask], img[~mask])
    res = evaluation.evaluate(None, [(name, img, mask)], baselines=("telea", "smooth", "harmonic"), progress=False)
    assert best_baseline(res) == "telea"                                     # the fills are the models' own start


def test_harmonic_baseline_is_the_harmonic_fill():
    import torch

    from glcic_lib.pushpull import harmonic_fill

    name, img, mask = _items(1)[0]
    out = evaluation.baseline_inpaint(img, mask, "harmonic")
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    want = harmonic_fill(x, torch.from_numpy(mask)[None, None].float())[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(out.astype(float) - want)[mask].max() <= 0.5 + 1e-4
    assert np.array_equal(out[~mask], img[~mask])
    assert not np.array_equal(out, evaluation.baseline_inpaint(img, mask, "smooth"))   # another solver


def test_telea5_is_fast_marching_with_radius_5():
    name, img, mask = _items(1)[0]
    assert np.array_equal(opencv_inpaint(img, mask, "telea5"), opencv_inpaint(img, mask, "telea", radius=5))
    assert np.array_equal(opencv_inpaint(img, mask, "telea"), opencv_inpaint(img, mask, "telea", radius=3))
    assert not np.array_equal(opencv_inpaint(img, mask, "telea5"), opencv_inpaint(img, mask, "telea"))


def test_biharmonic_fills_flat_colours_and_linear_ramps_exactly():
    img, holed, mask = _flat_with_hole()
    assert np.array_equal(biharmonic_inpaint(holed, mask), img)
    # a linear function solves the biharmonic equation: it is continued through the hole
    y, x = np.mgrid[0:30, 0:36]
    ramp = np.stack([20 + 4 * x, 30 + 3 * y, 200 - 2 * x - 2 * y], 2).astype(np.uint8)
    m = np.zeros((30, 36), bool)
    m[8:22, 10:26] = True
    holed = ramp.copy()
    holed[m] = 255
    out = biharmonic_inpaint(holed, m)
    assert np.abs(out.astype(int) - ramp).max() <= 1 and np.array_equal(out[~m], ramp[~m])


def test_evaluate_runs_the_new_baselines_with_grid_columns():
    items = _items()
    res = evaluate(None, items, baselines=("telea", "telea5", "ns", "biharmonic"), progress=False)
    assert res.methods == ["telea", "telea5", "ns", "biharmonic"]
    for name, img, mask in items:
        for m in res.methods:
            out = res.images[name][m]
            assert np.array_equal(out[~mask], img[~mask])
            row = next(r for r in res.rows if r["image"] == name and r["method"] == m)
            assert row["grid"] == pytest.approx(metrics.grid_energy(out, mask))
            assert row["grid_gt"] == pytest.approx(metrics.grid_energy(img, mask))
    assert np.array_equal(res.images["ramp1"]["biharmonic"], biharmonic_inpaint(*items[1][1:]))
    # smooth ramps: biharmonic continues them best, and no classical fill has a grid: on these
    # small holes (12x16 measured pixels, 16 classes) the sampling floor is 100 * 15 / 192 = 7.8
    s = res.summary
    assert s["biharmonic"]["psnr_hole"]["mean"] > s["telea"]["psnr_hole"]["mean"]
    assert all(s[m]["grid"]["mean"] < 2 * 100 * 15 / 192 for m in res.methods)
    assert s["telea"]["grid_gt"]["mean"] == pytest.approx(s["ns"]["grid_gt"]["mean"])
    assert "grid ↓" in res.table().splitlines()[0]
    with pytest.raises(ValueError, match="must not repeat"):
        evaluate(None, items, baselines=("ns", "ns"))


# --------------------------------------------------------------------------- FSR
def test_fsr_missing_is_a_note_not_an_error(monkeypatch, capsys):
    monkeypatch.setattr(fsr, "find_python", lambda: None)
    items = _items()
    res = evaluate(None, items, baselines=("telea", "fsr"), progress=False)
    assert res.methods == ["telea"] and res.meta["skipped"] == ["fsr"]
    out = capsys.readouterr().out
    assert out.count("FSR baseline skipped") == 1
    assert "python3 -m venv .venv-fsr && .venv-fsr/bin/pip install opencv-contrib-python-headless numpy" in out
    only = evaluate(None, items, baselines=("fsr",), progress=False)
    assert only.methods == [] and only.rows == [] and only.meta["skipped"] == ["fsr"]
    with pytest.raises(fsr.FSRUnavailable, match="opencv-contrib-python-headless"):
        evaluation.baseline_inpaint(*items[0][1:], "fsr")


def test_a_broken_fsr_python_is_passed_over_and_named(monkeypatch, tmp_path):
    missing = str(tmp_path / "nowhere" / "python")
    monkeypatch.setenv(fsr.ENV_VAR, missing)
    assert fsr.candidates()[0] == missing and not fsr._probe(missing)
    assert f"{fsr.ENV_VAR}={missing} does not import cv2.xphoto" in fsr.unavailable_note()


@pytest.mark.skipif(fsr._current_has_xphoto(), reason="this interpreter has cv2.xphoto: the worker would succeed")
def test_a_failing_worker_is_a_clear_error():
    _, holed, mask = _flat_with_hole()
    with pytest.raises(RuntimeError, match="FSR worker .* failed with exit status"):
        fsr.fsr_inpaint([holed], [mask], python=sys.executable)


def test_fsr_checks_its_input():
    img, _, mask = _flat_with_hole()
    with pytest.raises(ValueError, match="uint8 RGB"):
        fsr.fsr_inpaint([img.astype(np.float32)], [mask], python=sys.executable)
    with pytest.raises(ValueError, match="differs from the image size"):
        fsr.fsr_inpaint([img], [mask[1:]], python=sys.executable)
    with pytest.raises(ValueError, match="1 images but 2 masks"):
        fsr.fsr_inpaint([img], [mask, mask], python=sys.executable)
    assert fsr.fsr_inpaint([], [], python=sys.executable) == []


@pytest.mark.skipif(not HAVE_FSR, reason=f"no Python with cv2.xphoto here ({fsr.INSTALL_HINT})")
def test_fsr_fills_flat_colours_and_keeps_known_pixels():
    img, holed, mask = _flat_with_hole((77, 120, 200))
    # the hole's content is ignored (xphoto's mask is non-zero for known pixels; this module
    # inverts the course's True-is-hole masks): 0 or 255 in the hole give the same fill
    other = holed.copy()
    other[mask] = 255
    (a, b), seconds = fsr.fsr_inpaint([holed, other], [mask, mask], with_seconds=True)
    assert np.array_equal(a, b) and len(seconds) == 2 and all(s >= 0 for s in seconds)
    assert np.abs(a.astype(int) - img).max() <= 2          # the colour is continued, channels not swapped
    assert np.array_equal(a[~mask], holed[~mask])


@pytest.mark.skipif(not HAVE_FSR, reason=f"no Python with cv2.xphoto here ({fsr.INSTALL_HINT})")
@pytest.mark.parametrize("h, w, rows, cols", [(24, 28, (6, 16), (7, 20)), (40, 50, (30, 40), (40, 50)),
                                              (37, 33, (20, 37), (2, 12))])
def test_fsr_fills_holes_in_a_partial_last_block(h, w, rows, cols):
    """OpenCV's FSR leaves the last partial 16-px block black; the module pads it away."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (200, 120, 77)
    mask = np.zeros((h, w), bool)
    mask[slice(*rows), slice(*cols)] = True
    out = fsr.fsr_inpaint([img], [mask])[0]
    assert np.abs(out.astype(int) - img).max() <= 2


@pytest.mark.skipif(not HAVE_FSR, reason=f"no Python with cv2.xphoto here ({fsr.INSTALL_HINT})")
def test_fsr_in_evaluate_matches_a_direct_call():
    items = _items()
    res = evaluate(None, items, baselines=("ns", "fsr"), progress=False)
    assert res.methods == ["ns", "fsr"] and "skipped" not in res.meta
    for name, img, mask in items:
        out = res.images[name]["fsr"]
        assert np.array_equal(out, fsr.fsr_inpaint([img], [mask])[0])
        assert np.array_equal(out[~mask], img[~mask])
    assert res.summary["fsr"]["psnr_hole"]["mean"] > 25     # a smooth ramp is easy


@pytest.mark.skipif(not HAVE_FSR or fsr.find_python() == sys.executable,
                    reason="needs a separate FSR interpreter (.venv-fsr or GLCIC_FSR_PYTHON)")
def test_fsr_runs_in_a_subprocess_through_an_npz_file(monkeypatch):
    """The worker file imports only numpy at the top, so a bare environment can run it."""
    python = fsr.find_python()
    assert python != sys.executable
    img, holed, mask = _flat_with_hole((10, 200, 90))
    out = fsr.fsr_inpaint([holed], [mask], python=python)[0]
    assert out.dtype == np.uint8 and np.abs(out.astype(int) - img).max() <= 2


# --------------------------------------------------------------------------- flat colours
def test_flat_colours_are_the_named_ones_and_seeded_random_ones():
    c = flat_colours(3, seed=1)
    assert list(c)[:6] == ["grey", "blue", "green", "red", "near-black", "near-white"]
    assert c["blue"] == (20, 100, 160) and c["green"] == (60, 140, 60) and c["red"] == (200, 50, 50)
    assert len(c) == 9 and c == flat_colours(3, seed=1) and c != flat_colours(3, seed=2)


def test_flat_hole_masks():
    m = flat_hole_masks(256, (64, 96), small_holes=6, small=8)
    assert list(m) == ["64x96", "6x8px"]
    ys, xs = np.nonzero(m["64x96"])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (96, 159, 80, 175)
    from scipy.ndimage import label

    labels, n = label(m["6x8px"])
    assert n == 6 and m["6x8px"].sum() == 6 * 64
    with pytest.raises(ValueError, match="must fit inside"):
        flat_hole_masks(64, (64, 10))
    with pytest.raises(ValueError, match="no holes"):
        flat_hole_masks(64, None, small_holes=0)


def test_flat_fill_error_of_a_constant_fill_computed_by_hand():
    def fake(images, holes):   # fills every hole with (130, 120, 128), whatever the colour
        out = images.copy()
        out[holes] = (130, 120, 128)
        return out

    rows = flat_fill_error(fake, {"grey": (128, 128, 128), "blue": (20, 100, 160)}, size=64, hole=(16, 24),
                           small_holes=6, small=4)
    assert [(r["colour"], r["holes"]) for r in rows] == [("grey", "16x24"), ("blue", "16x24"),
                                                         ("grey", "6x4px"), ("blue", "6x4px")]
    grey, blue = rows[0], rows[1]
    assert grey["fill"] == pytest.approx((130, 120, 128))
    assert grey["max_channel_error"] == pytest.approx(8) and grey["mae"] == pytest.approx((2 + 8 + 0) / 3)
    assert blue["max_channel_error"] == pytest.approx(110) and blue["mae"] == pytest.approx((110 + 20 + 32) / 3)
    assert rows[2] == {**grey, "holes": "6x4px"}
    table = flat_fill_table(rows).splitlines()
    assert len(table) == 2 + 4 and "| grey | (128, 128, 128) | 16x24 | (130, 120, 128) | 8.0 | 3.3 |" in table


def test_flat_fill_error_separates_cast_from_blotches():
    def half(images, holes):   # half the hole 10 levels too bright, half 10 too dark: no cast
        out = images.astype(int)
        cols = np.arange(images.shape[2])
        out[holes & (cols % 2 == 0)] += 10
        out[holes & (cols % 2 == 1)] -= 10
        return out.astype(np.uint8)

    (row,) = flat_fill_error(half, [(100, 100, 100)], size=64, hole=(16, 24))
    assert row["colour"] == "(100,100,100)"
    assert row["max_channel_error"] == pytest.approx(0) and row["mae"] == pytest.approx(10)


def test_flat_fill_error_runs_a_network(small_model):
    import time

    from glcic_lib import complete

    t0 = time.perf_counter()
    rows = flat_fill_error(small_model, size=64, hole=(16, 24))
    assert time.perf_counter() - t0 < 10
    assert len(rows) == 10
    # |mean fill - colour| per channel <= mean |fill - colour| per channel: the cast is at most 3 x mae
    assert all(0 <= r["max_channel_error"] <= 3 * r["mae"] + 1e-9 for r in rows)
    # the same raw fill as complete() on one image
    img = np.zeros((64, 64, 3), np.uint8)
    img[:] = (20, 100, 160)
    hole = flat_hole_masks(64, (16, 24), 0)["16x24"]
    mean = complete(small_model, img, hole, precision="float32")[hole].astype(float).mean(0)
    assert rows[1]["fill"] == pytest.approx(tuple(mean), abs=0.01)


def test_flat_fill_error_bad_input():
    with pytest.raises(TypeError, match="must be a CompletionNetwork"):
        flat_fill_error(42, size=64, hole=(16, 24))
    with pytest.raises(ValueError, match="RGB triple"):
        flat_fill_error(lambda i, h: i, {"x": (300, 0, 0)}, size=64, hole=(16, 24))
    with pytest.raises(ValueError, match="the fill must be uint8"):
        flat_fill_error(lambda i, h: i.astype(float), size=64, hole=(16, 24))
