"""glcic_lib.notebook.claim, the demo discriminator loader and its extraction script."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from glcic_lib.notebook import claim

REPO = Path(__file__).resolve().parent.parent


def test_claim_prints_the_verdict_and_returns_it(monkeypatch, capsys):
    monkeypatch.delenv("GLCIC_SMOKE", raising=False)
    monkeypatch.delenv("GLCIC_CLAIMS_SOFT", raising=False)
    assert claim("two is more than one", 2 > 1) is True
    assert capsys.readouterr().out == "CLAIM ok: two is more than one\n"


def test_a_false_claim_raises_in_full_mode_only(monkeypatch, capsys):
    monkeypatch.delenv("GLCIC_CLAIMS_SOFT", raising=False)
    monkeypatch.delenv("GLCIC_SMOKE", raising=False)
    with pytest.raises(AssertionError, match="one is more than two"):
        claim("one is more than two", 1 > 2)
    assert "CLAIM FAILED: one is more than two" in capsys.readouterr().out
    monkeypatch.setenv("GLCIC_SMOKE", "1")
    assert claim("one is more than two", 1 > 2) is False
    monkeypatch.delenv("GLCIC_SMOKE")
    monkeypatch.setenv("GLCIC_CLAIMS_SOFT", "1")
    assert claim("one is more than two", 1 > 2) is False
    assert capsys.readouterr().out.count("CLAIM FAILED: one is more than two") == 2


def test_claim_accepts_numpy_and_torch_booleans(monkeypatch):
    import numpy as np
    import torch

    monkeypatch.delenv("GLCIC_SMOKE", raising=False)
    assert claim("numpy", np.bool_(True)) is True and claim("torch", torch.tensor(True)) is True


def test_demo_discriminator_loads_with_the_demo_shape():
    from glcic_lib.pretrained import demo_discriminator_path, load_demo_discriminator

    if not demo_discriminator_path().exists():
        pytest.skip("data/checkpoints/demo_discriminator.pt is not here")
    disc, meta = load_demo_discriminator(with_meta=True)
    assert disc.config() == {"arch": "ContextDiscriminator", "arms": "both", "width": 0.25,
                             "global_size": 128, "local_size": 96}
    assert not disc.training and "source_file" in meta


def test_a_missing_demo_discriminator_says_how_to_make_it(monkeypatch, tmp_path):
    from glcic_lib import pretrained
    from glcic_lib.checkpoint import CheckpointError

    monkeypatch.setattr(pretrained, "bundled_data_dir", lambda: tmp_path)
    with pytest.raises(CheckpointError, match="extract_discriminator.py"):
        pretrained.load_demo_discriminator()


def test_extract_discriminator_script(tmp_path):
    import torch

    from glcic_lib import CompletionNetwork, ContextDiscriminator
    from glcic_lib.checkpoint import load_discriminator, save_checkpoint

    c = CompletionNetwork(width=0.25)
    d = ContextDiscriminator(arms="both", width=0.25, global_size=128, local_size=96)
    src = save_checkpoint(tmp_path / "run.pt", c, d, train_state={
        "iteration": 7, "phase": "discriminator", "elapsed": 3.0,
        "history": [{"iteration": 7, "phase": "discriminator", "d_loss": 1.2, "d_real": 0.5, "d_fake": 0.4}]})
    out = tmp_path / "demo_discriminator.pt"
    script = REPO / "data" / "checkpoints" / "extract_discriminator.py"
    res = subprocess.run([sys.executable, str(script), str(src), "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    back = load_discriminator(out)
    for k, v in d.state_dict().items():   # stored as float16, loaded back into a float32 network
        b = back.state_dict()[k]
        assert b.dtype == v.dtype and torch.equal(b, v.half().to(v.dtype))
    # a run without a discriminator, or of another shape, is refused
    save_checkpoint(tmp_path / "none.pt", c)
    res = subprocess.run([sys.executable, str(script), str(tmp_path / "none.pt"), "--out", str(out)],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "no discriminator" in res.stderr
    save_checkpoint(tmp_path / "wide.pt", c, ContextDiscriminator(arms="both", width=0.125, global_size=64, local_size=32))
    res = subprocess.run([sys.executable, str(script), str(tmp_path / "wide.pt"), "--out", str(out)],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "not the demo's shape" in res.stderr


def test_run_notebooks_reports_time_errors_and_claims(tmp_path):
    """tools/run_notebooks.py on two tiny notebooks: one with claims, one that fails."""
    import importlib.util

    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    spec = importlib.util.spec_from_file_location("run_notebooks", REPO / "tools" / "run_notebooks.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("from glcic_lib.notebook import claim\n"
                                                     "claim('one is one', 1 == 1)\nclaim('two is three', 2 == 3)")],
                                metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}), str(good))
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("raise ValueError('boom')")],
                                metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}), str(bad))
    r = tool.run_one(good, smoke=True, ckpt=tmp_path / "runs", timeout=60, out=tmp_path / "out")
    assert r["error"] is None and r["mode"] == "smoke" and r["seconds"] > 0
    assert r["claims"] == [{"cell": 1, "ok": True, "text": "one is one"}, {"cell": 1, "ok": False, "text": "two is three"}]
    assert (tmp_path / "out" / "good.smoke.ipynb").is_file()
    r = tool.run_one(bad, smoke=True, ckpt=tmp_path / "runs", timeout=60, out=None)
    assert r["error"]["cell"] == 2 and "boom" in r["error"]["message"]
    # in full mode a failed claim stops the notebook
    r = tool.run_one(good, smoke=False, ckpt=tmp_path / "runs", timeout=60, out=None)
    assert r["error"] is not None and r["error"]["cell"] == 1
