"""evaluate() on a tiny random model and hand-made held-out items."""
import json
import math

import numpy as np
import pytest
import torch

from glcic_lib import evaluation, metrics
from glcic_lib.evaluation import EvalResult, evaluate, opencv_inpaint
from glcic_lib.models import CompletionNetwork


def _items(n=3, h=36, w=44):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    items = []
    for i in range(n):
        img = np.stack([40 + 2 * x + i, 50 + y + 2 * i, 90 + x + y], 2).astype(np.uint8)
        img = np.clip(img.astype(int) + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)
        mask = np.zeros((h, w), bool)
        mask[8 + i:22 + i, 10:26] = True
        items.append((f"img{i}", img, mask))
    return items


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return CompletionNetwork(width=0.25).eval()


@pytest.fixture(scope="module")
def result(tiny_model):
    return evaluate(tiny_model, _items(), postprocess="both", baselines=("telea", "ns"), progress=False)


def test_rows_for_every_image_and_method(result):
    assert result.methods == ["network", "network+post", "telea", "ns"]
    assert len(result.rows) == 3 * 4
    assert result.image_names == ["img0", "img1", "img2"]
    for r in result.rows:
        assert set(metrics.METRIC_NAMES) <= set(r)
        assert r["seconds"] >= 0


def test_rows_agree_with_the_metrics_of_the_kept_images(result):
    name, img, mask = _items()[1]
    for m in result.methods:
        out = result.images[name][m]
        assert out.dtype == np.uint8 and out.shape == img.shape
        assert np.array_equal(out[~mask], img[~mask])  # known pixels untouched by every method
        row = next(r for r in result.rows if r["image"] == name and r["method"] == m)
        assert row == pytest.approx({**row, **metrics.all_metrics(out, img, mask)})
        assert row["seam_gt"] == pytest.approx(metrics.seam(img, mask))
        assert row["grid_gt"] == pytest.approx(metrics.grid_energy(img, mask))
        assert row["detail_gt"] == pytest.approx(metrics.detail(img, mask))


def test_summary_is_mean_and_std_over_images(result):
    v = result.values("telea", "psnr_hole")
    assert v.shape == (3,)
    s = result.summary["telea"]["psnr_hole"]
    assert s["mean"] == pytest.approx(v.mean()) and s["std"] == pytest.approx(v.std()) and s["n"] == 3


def test_baselines_beat_a_random_network_on_smooth_images(result):
    """A smooth ramp is the easy case for diffusion-style inpainting; an untrained network is not."""
    s = result.summary
    assert s["telea"]["l1_hole"]["mean"] < s["network"]["l1_hole"]["mean"]
    assert s["ns"]["psnr_hole"]["mean"] > s["network"]["psnr_hole"]["mean"]


def test_postprocessing_reduces_the_seam_of_a_random_network(result):
    s = result.summary
    assert s["network+post"]["seam"]["mean"] < s["network"]["seam"]["mean"]


def test_postprocess_flag_picks_the_methods(tiny_model):
    items = _items(1)
    assert evaluate(tiny_model, items, progress=False).methods == ["network"]
    assert evaluate(tiny_model, items, postprocess=True, name="arm", progress=False).methods == ["arm+post"]
    assert evaluate(None, items, baselines=["ns"], progress=False).methods == ["ns"]


def test_the_network_result_matches_complete(tiny_model):
    from glcic_lib import complete

    name, img, mask = _items(1)[0]
    res = evaluate(tiny_model, [(name, img, mask)], postprocess="both", progress=False)
    assert np.array_equal(res.images[name]["network"], complete(tiny_model, img, mask))
    assert np.array_equal(res.images[name]["network+post"], complete(tiny_model, img, mask, postprocess=True))


def test_a_perfect_method_has_infinite_psnr_left_out_of_the_mean():
    name, img, mask = _items(1)[0]
    res = EvalResult([{"image": name, "method": "oracle", **metrics.all_metrics(img, img, mask),
                       "seam_gt": 0.0, "seconds": 0.0}], ["oracle"])
    assert res.rows[0]["psnr_hole"] == math.inf
    assert res.summary["oracle"]["psnr_hole"]["n"] == 0 and math.isnan(res.summary["oracle"]["psnr_hole"]["mean"])
    assert res.summary["oracle"]["ssim_hole"]["mean"] == pytest.approx(1.0)


def test_files_and_figures(result, tmp_path):
    paths = result.save(tmp_path)
    assert {"csv", "json", "table", "grid", "metrics"} <= set(paths)
    lines = paths["csv"].read_text().splitlines()
    assert lines[0].startswith("image,method,l1_hole,psnr_hole") and len(lines) == 1 + 12
    back = EvalResult.from_json(paths["json"])
    assert back.methods == result.methods
    assert back.summary["ns"]["ssim"]["mean"] == pytest.approx(result.summary["ns"]["ssim"]["mean"])
    assert json.loads(paths["json"].read_text())["meta"]["n_images"] == 3
    table = paths["table"].read_text()
    assert table.splitlines()[0].startswith("| method | l1_hole ↓ | psnr_hole ↑")
    assert "| telea |" in table
    for key in ("grid", "metrics"):
        assert paths[key].stat().st_size > 1000


def test_merge_and_rename(result):
    a = evaluate(None, _items(), baselines=["telea"], keep_images=True, progress=False).renamed({"telea": "T"})
    merged = result.merge(a)
    assert merged.methods[-1] == "T" and "T" in merged.images["img0"]
    with pytest.raises(ValueError, match="both have the methods \\['ns'\\]"):
        result.merge(evaluate(None, _items(), baselines=["ns"], progress=False))


def test_opencv_inpaint_fills_a_flat_image():
    img = np.full((20, 20, 3), 77, np.uint8)
    mask = np.zeros((20, 20), bool)
    mask[5:12, 6:15] = True
    hole_img = img.copy()
    hole_img[mask] = 0
    assert np.array_equal(opencv_inpaint(hole_img, mask, "ns"), img)
    # fast marching's weighted gradient extrapolation is only nearly exact on a flat image
    telea = opencv_inpaint(hole_img, mask, "telea").astype(int)
    assert np.abs(telea - 77).max() <= 3 and np.array_equal(telea[~mask], img[~mask])


def test_bad_input_is_named(tiny_model):
    name, img, mask = _items(1)[0]
    with pytest.raises(ValueError, match="unknown baseline 'patchmatch'"):
        evaluate(tiny_model, [(name, img, mask)], baselines=["patchmatch"])
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(None, [(name, img, mask)])
    with pytest.raises(ValueError, match="held-out item 'img0': the mask has no hole pixels"):
        evaluate(None, [(name, img, np.zeros_like(mask))], baselines=["ns"])
    with pytest.raises(ValueError, match="the held-out set is empty"):
        evaluate(None, [], baselines=["ns"])
    with pytest.raises(ValueError, match="postprocess must be False, True or 'both'"):
        evaluate(tiny_model, [(name, img, mask)], postprocess="yes")
    with pytest.raises(TypeError, match="must be a CompletionNetwork"):
        evaluate(torch.nn.Linear(2, 2), [(name, img, mask)])
    with pytest.raises(ValueError, match="unknown OpenCV inpainting method 'fast'"):
        opencv_inpaint(img, mask, "fast")


def test_cli_writes_the_files(tmp_path, tiny_model, monkeypatch):
    """`python -m glcic_lib evaluate` on a checkpoint and a held-out folder built here."""
    from glcic_lib.checkpoint import save_checkpoint
    from glcic_lib.cli import run

    ckpt = save_checkpoint(tmp_path / "tiny.pt", tiny_model)
    monkeypatch.setattr(evaluation, "_items", lambda data: _items(2))  # no held-out folder needed
    rc = run(["evaluate", "--checkpoint", str(ckpt), "--out", str(tmp_path / "ev")])
    assert rc == 0
    rows = (tmp_path / "ev" / "rows.csv").read_text().splitlines()
    # raw + post + every baseline (FSR only where its environment exists)
    from glcic_lib import fsr

    n_methods = 2 + len(evaluation.BASELINE_NAMES) - (0 if fsr.available() else 1)
    assert len(rows) == 1 + 2 * n_methods
    assert "grid_gt" in rows[0].split(",")


def test_exported_at_the_package_level():
    import glcic_lib

    assert glcic_lib.evaluate is evaluate
