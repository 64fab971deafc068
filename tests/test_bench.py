"""``python -m glcic_lib bench``: what it reports and how it counts (speed itself is printed,
never asserted: a shared CI machine is too noisy)."""
from __future__ import annotations

import json

import pytest
import torch

from glcic_lib import bench, cli
from glcic_lib.tables import count_macs


def test_bench_json_through_the_cli(capsys):
    code = cli.run(["bench", "--sizes", "16", "20", "--width", "0.05", "--repeats", "1", "--json", "--no-memory",
                   "--peak-size", "256"])
    assert code == 0
    res = json.loads(capsys.readouterr().out)
    assert res["device_type"] == "cpu" and res["precision"] == "float32" and res["width"] == 0.05
    assert res["peak_gflops"]["float32"] > 0
    rows = res["rows"]
    assert [r["size"] for r in rows] == [16, 20]
    for r in rows:
        assert r["gmacs"] == pytest.approx(count_macs("completion", r["size"], r["size"], 0.05) / 1e9)
        assert r["default_ms"] > 0 and r["plain_ms"] > 0 and r["telea_ms"] > 0 and r["ns_ms"] > 0
        assert r["default_gflops"] == pytest.approx(2 * r["gmacs"] / (r["default_ms"] / 1e3))
        assert r["speedup"] == pytest.approx(r["plain_ms"] / r["default_ms"])
        assert r["max_diff_levels"] <= 2  # the default path is the plain network's result


def test_bench_table_and_memory(capsys):
    result = bench.run_bench(sizes=[24], width=0.05, repeats=1, baseline=False, opencv=False, progress=False,
                             peak_size=256)
    text = bench.format_table(result)
    assert "machine peak (matrix multiply): float32" in text
    # which path the model gets and why (issue 22): the random stress model was never measured
    assert text.splitlines()[1].startswith("precision: float32: ")
    assert text.splitlines()[3].split()[:3] == ["size", "GMACs", "default"]
    row = result.rows[0]
    assert row.plain_ms is None and row.telea_ms is None
    # CPU peak memory: RSS of a fresh process, so at least the size of Python + torch
    assert row.peak_mb >= row.baseline_mb > 50
    with pytest.raises(ValueError, match=r"sizes must be at least 8 pixels, got \[4\]"):
        bench.run_bench(sizes=[4])
    with pytest.raises(ValueError, match="repeats must be at least 1, got 0"):
        bench.run_bench(sizes=[16], repeats=0)


def test_plain_baseline_is_table_1_with_the_models_weights():
    model = bench.stress_model(width=0.125, size=32)
    plain = bench.plain_sequential(model)
    kinds = [type(m).__name__ for m in plain]
    assert kinds.count("Conv2d") == 15 and kinds.count("ConvTranspose2d") == 2
    assert kinds.count("BatchNorm2d") == 16 and kinds[-1] == "Sigmoid"
    img, mask = torch.rand(1, 3, 32, 32), (torch.rand(1, 1, 32, 32) > 0.6).float()
    with torch.no_grad():
        torch.testing.assert_close(plain(model.prepare_input(img, mask)), model(img, mask))
        out = model(img, mask)
    assert out.min() < 0.1 and out.max() > 0.9  # the stress model uses the whole output range


def test_interleaved_times_alternates():
    calls = []
    res = bench.interleaved_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3,
                                  torch.device("cpu"))
    assert calls == ["a", "b"] * 3
    assert set(res) == {"a", "b"} and all(t >= 0 for t in res.values())


def test_bench_inputs_are_deterministic():
    a, m = bench.bench_inputs(64)
    b, n = bench.bench_inputs(64)
    assert a.dtype == "uint8" and a.shape == (64, 64, 3) and m.shape == (64, 64)
    assert (a == b).all() and (m == n).all()
    assert 0.06 < m.mean() < 0.2 and m[32, 32]  # a centred hole plus a few small ones


def test_ratio_to_the_plain_forward_is_printed():
    rows = [bench.BenchRow(size=256, gmacs=1.0, default_ms=50.0, plain_ms=300.0, ratio=50 / 300),
            bench.BenchRow(size=512, gmacs=4.0, default_ms=200.0, plain_ms=1000.0, ratio=0.2, compile_s=30.0,
                           compiled_ms=150.0, max_diff_levels=3, mean_diff_levels=0.25)]
    result = bench.BenchResult(device="cpu", device_type="cpu", torch="x", threads=2, width=1.0,
                               precision="bfloat16", model="m", peak_gflops={"float32": 100.0, "bfloat16": 200.0},
                               rows=rows)
    text = bench.format_table(result)
    assert ("complete() at 512x512: 200 ms = 0.20x the plain fp32 forward (1000 ms) of this run; "
            "meets the target <= 0.25x") in text
    assert ("complete(compile=True) at 512x512: 150 ms per call = 0.15x the plain forward, after 30.0 s for the "
            "first call; wins its compile time back after 600 calls") in text
    assert text.splitlines()[2].split()[:5] == ["size", "GMACs", "default", "ms", "compiled"]
    rows[1].ratio, rows[1].compiled_ms = 0.3, 250.0
    text = bench.format_table(result)
    assert "= 0.30x the plain fp32 forward (1000 ms) of this run; misses the target <= 0.25x" in text
    # 4 GMACs = 8 GFLOP at the 200 GFLOP/s bfloat16 peak: 40 ms, 0.04x the 1000 ms plain forward
    assert ("hardware bound: even at 100% of this machine's bfloat16 matrix-multiply peak (200 GFLOP/s) "
            "complete() would take 0.04x the plain forward\n") in text + "\n"
    rows[1].gmacs = 130.0   # 260 GFLOP: 1.3 s at the peak, more than a quarter of the plain forward
    assert ("complete() would take 1.30x the plain forward; the target needs a faster bfloat16 unit "
            "(e.g. Intel AMX), not other code") in bench.format_table(result)
    rows[1].gmacs = 4.0
    assert "never wins its compile time back (not faster per call)" in text
    result.rows = rows[:1]
    assert "ratio at 512x512: not measured (add 512 to --sizes and keep the baseline)" in bench.format_table(result)


def test_bench_compile_option(capsys, monkeypatch):
    """--compile times complete(compile=True) (torch.compile replaced by a stand-in: no timing here)."""
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: compiled.append(kw) or module)
    code = cli.run(["bench", "--sizes", "16", "--width", "0.05", "--repeats", "1", "--json", "--no-memory",
                    "--no-opencv", "--peak-size", "64", "--compile"])
    assert code == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert row["compile_s"] > 0 and row["compiled_ms"] > 0
    assert row["ratio"] == pytest.approx(row["default_ms"] / row["plain_ms"])
    assert 0 <= row["mean_diff_levels"] <= row["max_diff_levels"] <= 2
    assert compiled == [{"dynamic": False, "options": {"freezing": True}}]
