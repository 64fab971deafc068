"""The discriminator ablation on the smoke preset, with even fewer iterations.

One module-scoped run trains the four arms (1 + 1 + 1 iterations of 2 images each, phase 1
shared) and evaluates them on two hand-made held-out items; the tests then check its rows,
files, resuming and the phase-1 sharing.
"""
import json

import numpy as np
import pytest
import torch

from glcic_lib import ablation
from glcic_lib.checkpoint import CheckpointError, read_checkpoint
from glcic_lib.train import CHECKPOINT

TINY = dict(t_c=1, t_d=1, t_joint=1, batch_size=2)
ALL_ROWS = ["none", "none+post", "global", "global+post", "local", "local+post", "both", "both+post",
            "telea", "ns"]


def _heldout(n=2, size=80):
    """Smooth, slightly noisy images with one fixed rectangular hole each."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:size, 0:size]
    items = []
    for i in range(n):
        img = np.stack([30 + 2 * x, 60 + y + 10 * i, 200 - x - y // 2], 2)
        img = np.clip(img + rng.integers(-4, 5, img.shape), 0, 255).astype(np.uint8)
        mask = np.zeros((size, size), bool)
        mask[20 + 5 * i:44 + 5 * i, 24:52] = True
        items.append((f"item{i}", img, mask))
    return items


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    res = ablation.run_ablation(None, out, "smoke", heldout=_heldout(), progress=False, **TINY)
    return res


def test_every_arm_raw_and_post_plus_the_baselines(run):
    assert run.evaluation.methods == ALL_ROWS
    assert len(run.evaluation.rows) == 2 * len(ALL_ROWS)
    table = run.table().splitlines()
    assert len(table) == 2 + len(ALL_ROWS)
    assert [line.split("|")[1].strip() for line in table[2:]] == ALL_ROWS
    # evaluated at the arms' crop size (64): the 80x80 items were scaled down
    assert run.evaluation.images["item0"]["both"].shape == (64, 64, 3)


def test_arms_share_the_budget_and_differ_only_in_the_discriminator(run):
    for arm in ablation.ARMS:
        state = read_checkpoint(run.checkpoints[arm])["train_state"]
        assert state["iteration"] == 3
        cfg = state["config"]
        assert cfg["discriminator"] == arm and (cfg["t_c"], cfg["t_d"], cfg["t_joint"]) == (1, 1, 1)
        assert cfg["seed"] == 0 and cfg["preset"] == "smoke"
    # MSE-only arm has no discriminator; the others have the one they were named for
    assert read_checkpoint(run.checkpoints["none"]).get("discriminator") in (None, {})
    assert read_checkpoint(run.checkpoints["local"]).get("discriminator")


def test_files_are_written(run):
    for key in ("csv", "json", "table", "grid", "metrics", "costs"):
        assert run.files[key].exists(), key
    rows = run.files["csv"].read_text().splitlines()
    assert len(rows) == 1 + 2 * len(ALL_ROWS)
    costs = json.loads(run.files["costs"].read_text())
    assert costs["status_before"] == {a: "missing" for a in ablation.ARMS}
    assert costs["phase1_s"] > 0 and set(costs["arms_s"]) == set(ablation.ARMS)
    back = ablation.load_results(run.out_dir)
    assert back.methods == ALL_ROWS
    assert back.summary["both"]["psnr_hole"]["mean"] == pytest.approx(run.evaluation.summary["both"]["psnr_hole"]["mean"])


def test_a_second_call_trains_nothing_and_gives_the_same_numbers(run):
    again = ablation.run_ablation(None, run.out_dir, "smoke", heldout=_heldout(), figures=False,
                                  progress=False, **TINY)
    assert again.costs["status_before"] == {a: "finished" for a in ablation.ARMS}
    assert again.costs["arms_s"] == {} and again.costs["phase1_s"] == 0.0
    for m in ALL_ROWS:
        assert np.array_equal(again.evaluation.values(m, "l1_hole"), run.evaluation.values(m, "l1_hole"))


def test_shared_phase1_gives_the_weights_of_a_separate_run(run, tmp_path):
    """Starting an arm from the shared phase-1 checkpoint is the same computation as training
    it from scratch: the weights agree bit for bit on the CPU."""
    ckpts, costs = ablation.train_arms(None, tmp_path, "smoke", arms=["global"], share_phase1=False,
                                       progress=False, **TINY)
    assert costs["phase1_s"] == 0.0 and not (tmp_path / ablation.PHASE1_DIR).exists()
    separate = read_checkpoint(ckpts["global"])
    shared = read_checkpoint(run.checkpoints["global"])
    for part in ("completion", "discriminator"):
        a, b = separate[part]["state_dict"], shared[part]["state_dict"]
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{part}.{k} differs"


def test_a_run_with_another_setup_is_refused(run):
    with pytest.raises(CheckpointError, match="was trained with t_joint=1, but this ablation has t_joint=4"):
        ablation.run_ablation(None, run.out_dir, "smoke", heldout=_heldout(), progress=False,
                              **{**TINY, "t_joint": 4})


def test_an_interrupted_arm_is_resumed(tmp_path):
    from glcic_lib.train import train

    cfg = ablation.arm_config("smoke", "none", None, tmp_path, **TINY)
    assert ablation.run_state(cfg) == ("missing", 0)

    def stop_at_2(event):  # logged: iteration 2 ends phase 2
        if event["iteration"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[stop_at_2], progress=False)
    assert ablation.run_state(cfg) == ("partial", 2)
    ckpts, costs = ablation.train_arms(None, tmp_path, "smoke", arms=["none"], progress=False, **TINY)
    assert costs["status_before"] == {"none": "partial"} and costs["phase1_s"] == 0.0
    assert ablation.run_state(cfg) == ("finished", 3)
    assert read_checkpoint(ckpts["none"])["train_state"]["iteration"] == 3


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown arm 'gan'"):
        ablation.arm_config("smoke", "gan")
    with pytest.raises(ValueError, match="sets discriminator and out_dir itself"):
        ablation.arm_config("smoke", "both", discriminator="local")
    with pytest.raises(ValueError, match="unknown arm 'all'"):
        ablation.train_arms(None, tmp_path, "smoke", arms=["all"])


def test_cli_parses_and_runs(tmp_path, monkeypatch):
    from glcic_lib.cli import run as cli_run

    seen = {}

    def fake(data_dir, out_dir, preset, **kw):
        seen.update(data_dir=data_dir, out_dir=out_dir, preset=preset, **kw)
        raise SystemExit(0)

    monkeypatch.setattr(ablation, "run_ablation", fake)
    with pytest.raises(SystemExit):
        cli_run(["ablate", "--preset", "smoke", "--out", str(tmp_path), "--iterations", "2", "1", "2",
                 "--arms", "none", "both", "--limit", "3"])
    assert seen["preset"] == "smoke" and seen["out_dir"] == str(tmp_path)
    assert (seen["t_c"], seen["t_d"], seen["t_joint"]) == (2, 1, 2)
    assert seen["arms"] == ["none", "both"] and seen["limit"] == 3 and seen["size"] == "crop"


def test_schedule_and_cost_estimate_of_the_colab_preset():
    # phase 1 (8000) once, plus the none arm's 1000 + 3000 MSE-only iterations; three arms
    # with a discriminator train 1000 discriminator-only and 3000 joint iterations each
    assert ablation.schedule("colab") == {"completion": 12000, "discriminator": 3000, "joint": 9000,
                                          "images_per_iteration": 48}
    assert ablation.schedule("colab", share_phase1=False)["completion"] == 4 * 8000 + 4000
    est = ablation.estimate_seconds("colab", {"completion": 60, "discriminator": 100, "joint": 40})
    assert est["completion"] == pytest.approx(12000 * 48 / 60)
    assert est["joint"] == pytest.approx(9000 * 48 / 40)
    assert est["total"] == pytest.approx(9600 + 1440 + 10800)
    assert ablation.estimate_seconds("colab", {"completion": 48}, arms=["none"])["total"] == pytest.approx(12000)
    with pytest.raises(ValueError, match="need a positive images_per_s\\['joint'\\]"):
        ablation.estimate_seconds("colab", {"completion": 60, "discriminator": 100})


def test_load_shipped_evaluates_completion_only_checkpoints_and_reads_histories(run, tmp_path):
    """The shipped layout (<arm>.pt completion networks, <arm>_history.jsonl, costs.json) gives the
    same rows as evaluating the run it came from."""
    from glcic_lib.checkpoint import load_completion, save_checkpoint

    for arm in ablation.ARMS:
        save_checkpoint(tmp_path / f"{arm}.pt", load_completion(run.checkpoints[arm]), None, None, {"arm": arm})
        (tmp_path / f"{arm}_history.jsonl").write_text((run.out_dir / arm / "history.jsonl").read_text())
    (tmp_path / "costs.json").write_text(json.dumps({"arm_train_seconds": {"both": 1.5}}))
    shipped = ablation.load_shipped(tmp_path, _heldout(), progress=False)
    assert shipped.evaluation.methods == ALL_ROWS
    # evaluated at the stored size (80), not the crop size: compare with the run's arms at 80
    again, _ = ablation.evaluate_arms(run.checkpoints, _heldout(), progress=False)
    for m in ALL_ROWS:
        assert np.allclose(shipped.evaluation.values(m, "psnr_hole"), again.values(m, "psnr_hole"))
        assert np.all(np.isfinite(shipped.evaluation.values(m, "detail")))
    assert shipped.costs["arm_train_seconds"] == {"both": 1.5}
    for arm in ablation.ARMS:
        assert ablation.arm_history(tmp_path, arm) == ablation.arm_history(run.out_dir, arm)
    with pytest.raises(FileNotFoundError, match="no history of arm 'both'"):
        ablation.arm_history(tmp_path / "nowhere", "both")
    (tmp_path / "local.pt").unlink()
    with pytest.raises(FileNotFoundError, match="missing local.pt"):
        ablation.load_shipped(tmp_path, _heldout(), progress=False)


def test_the_shipped_run_loads_on_the_bundled_photographs():
    res = ablation.load_shipped(limit=2, progress=False)
    assert res.evaluation.methods == ALL_ROWS
    assert res.evaluation.images[res.evaluation.image_names[0]]["both"].shape == (256, 256, 3)
    for arm in ablation.ARMS:
        assert ablation.arm_history(ablation.shipped_dir(), arm)
