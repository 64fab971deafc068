"""Issue 22: precision is a property of the model.  The measurement of a network's reduced-precision
error (glcic_lib.precision_check), where it is stored, and what bench and doctor say about it."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from conftest import make_model
from glcic_lib import bench, cli, doctor, inpaint
from glcic_lib.checkpoint import load_completion, read_checkpoint, save_checkpoint
from glcic_lib.precision_check import add_measurement, describe, measure_precision
from glcic_lib.pretrained import demo_checkpoint_path, load_pretrained


@pytest.fixture(scope="module")
def demo():
    return load_pretrained("demo")


def test_float32_against_itself_measures_zero_and_bfloat16_a_small_nonzero_error(demo):
    result = measure_precision(demo, "cpu", precisions=("float32", "bfloat16"), images=4)
    f32, bf16 = result["float32"], result["bfloat16"]
    assert f32["mean"] == 0 and f32["p999"] == 0 and f32["max"] == 0
    assert f32["pixels"] == bf16["pixels"] > 10_000 and f32["images"] == 4 and f32["device"] == "cpu"
    assert 0 < bf16["mean"] <= inpaint.AUTO_MAX_MEAN_LEVELS          # the trained demo: small, not zero
    assert 0 < bf16["p999"] <= inpaint.AUTO_MAX_P999_LEVELS
    assert bf16["p999"] <= bf16["max"] <= 16 and not bf16["overflowed"]
    assert all(type(v) in (int, float, str, bool) for v in bf16.values())   # plain types for a checkpoint


def test_measure_precision_input_checks(demo):
    with pytest.raises(ValueError, match="precisions must be among"):
        measure_precision(demo, "cpu", precisions=("int8",), images=1)
    with pytest.raises(ValueError, match="images must be at least 1"):
        measure_precision(demo, "cpu", images=0)


def test_the_bundled_demo_model_stores_its_measurement_and_auto_uses_it(demo, monkeypatch):
    stored = read_checkpoint(demo_checkpoint_path())["meta"]["reduced_precision"]
    entry = stored["bfloat16"]
    assert entry["device"] == "cpu" and entry["images"] >= 4 and not entry["overflowed"]
    assert 0 < entry["mean"] <= 1.0 and 0 < entry["p999"] <= 4.0
    assert demo.reduced_precision == stored
    monkeypatch.setenv("GLCIC_CPU_BF16", "1")
    precision, why = inpaint.precision_choice(demo, "cpu")
    assert precision == "bfloat16" and f"{entry['mean']:.2f} grey levels on average" in why
    monkeypatch.setenv("GLCIC_CPU_BF16", "0")
    assert inpaint.precision_choice(demo, "cpu")[0] == "float32"


def test_every_shipped_model_loaded_with_auto_carries_a_measurement():
    from pathlib import Path

    data = Path(demo_checkpoint_path()).parent.parent
    for path in [demo_checkpoint_path(), *sorted((data / "ablation_photos").glob("*.pt")),
                 data / "finetune" / "finetuned.pt"]:
        entry = load_completion(path).reduced_precision["bfloat16"]
        # measured (a residual network that barely changes its float32 fill can round to exactly 0)
        assert entry["images"] > 0 and entry["mean"] >= 0 and entry["p999"] >= entry["mean"], path


def test_add_measurement_rewrites_only_the_meta(tmp_path, capsys, monkeypatch):
    model = make_model(0.25, seed=2)
    path = save_checkpoint(tmp_path / "m.pt", model, meta={"note": "kept", "reduced_precision": {
        "float16": {"mean": 0.01, "p999": 1.0, "max": 1, "device": "cuda"}}})
    before = read_checkpoint(path)
    stored = add_measurement(path, "cpu", images=2)
    assert set(stored) == {"float16", "bfloat16"}          # merged with what was there
    after = torch.load(path, weights_only=True)
    assert after["meta"]["note"] == "kept" and after["meta"]["reduced_precision"] == stored
    for k, v in before["completion"]["state_dict"].items():
        assert torch.equal(v, after["completion"]["state_dict"][k]), k
    assert after["completion"]["config"] == before["completion"]["config"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]   # no temporary file, no .prev copy
    # the command line: rewrites in place, and says what auto now picks and why
    copy = shutil.copy(path, tmp_path / "c.pt")
    monkeypatch.setenv("GLCIC_CPU_BF16", "1")
    assert cli.run(["measure-precision", str(copy), "--images", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{copy}: float16 on cuda: ") and "; bfloat16 on cpu: " in out
    assert "complete(precision='auto') on cpu: bfloat16: its stored bfloat16 error is" in out
    assert "bfloat16" in load_completion(copy).reduced_precision


def test_describe():
    assert describe(None) == "no reduced-precision measurement"
    line = describe({"bfloat16": {"mean": 0.2, "p999": 2.0, "max": 4, "device": "cpu", "images": 8}})
    assert line == "bfloat16 on cpu: 0.20 mean, 2.0 p99.9, 4 max grey levels in the holes (8 images)"


def test_bench_says_which_precision_the_model_gets_and_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GLCIC_CPU_BF16", "1")
    kw = dict(sizes=[16], width=0.05, repeats=1, baseline=False, opencv=False, memory=False, progress=False,
              peak_size=64, device="cpu")
    random = bench.run_bench(**kw)     # the random stress model: never measured, so float32
    assert random.precision == "float32" and "no stored bfloat16 measurement" in random.precision_reason
    assert f"precision: {random.precision_reason}" in bench.format_table(random).splitlines()[1]
    model = make_model(0.125)
    path = save_checkpoint(tmp_path / "m.pt", model, meta={"reduced_precision": {
        "bfloat16": {"mean": 0.1, "p999": 1.0, "max": 2, "device": "cpu"}}})
    measured = bench.run_bench(checkpoint=str(path), **kw)
    assert measured.precision == "bfloat16" and measured.precision_reason.startswith("bfloat16: its stored")
    asked = bench.run_bench(precision="float32", checkpoint=str(path), **kw)
    assert asked.precision == "float32" and asked.precision_reason == "float32: asked for (--precision)"


def test_doctor_says_which_precision_the_demo_model_gets_and_why(monkeypatch):
    monkeypatch.setenv("GLCIC_CPU_BF16", "1")
    status, message, details = doctor.check_precision(torch.device("cpu"), True)
    assert status == "ok" and details["inference"] == "bfloat16"
    assert "complete() on the demo model: bfloat16: its stored bfloat16 error is" in message
    monkeypatch.setenv("GLCIC_CPU_BF16", "0")
    status, message, details = doctor.check_precision(torch.device("cpu"), True)
    assert details["inference"] == "float32" and "no bfloat16 hardware" in message


def test_a_model_whose_bfloat16_error_is_large_runs_float32_under_auto(monkeypatch):
    """The issue's case, in small: a chaotic network (bench.stress_model) measured as it is; if its
    error is beyond the limits, auto keeps float32 and the completion is float32's, pixel for pixel."""
    model = bench.stress_model(width=0.5, size=32)
    model.reduced_precision = measure_precision(model, "cpu", images=2)
    entry = model.reduced_precision["bfloat16"]
    monkeypatch.setenv("GLCIC_CPU_BF16", "1")
    ok = entry["mean"] <= 1.0 and entry["p999"] <= 4.0
    assert inpaint.default_precision(torch.device("cpu"), model) == ("bfloat16" if ok else "float32")
    from glcic_lib.data import load_heldout

    item = load_heldout()[0]
    auto = inpaint.complete(model, item.image, item.mask)
    want = inpaint.complete(model, item.image, item.mask, precision="bfloat16" if ok else "float32")
    assert np.array_equal(auto, want)
