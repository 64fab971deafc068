"""Checkpoints: round trips, atomic writes, and named errors for missing / corrupt / foreign files."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import make_model
from glcic_lib.checkpoint import (CheckpointError, atomic_save, load_completion, load_discriminator,
                                  read_checkpoint, save_checkpoint)
from glcic_lib.models import CompletionNetwork, ContextDiscriminator
from glcic_lib.pretrained import load_pretrained


def _perturb_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def test_round_trip(tmp_path):
    model = _perturb_bn(make_model(0.125, seed=1))
    model.mean_pixel.copy_(torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1))
    disc = ContextDiscriminator(arms="local", width=0.125, local_size=64)
    path = save_checkpoint(tmp_path / "sub" / "run.pt", model, disc, train_state={"iteration": 7},
                           meta={"note": "test"})
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    ckpt = read_checkpoint(path)
    assert (ckpt["format"], ckpt["version"], ckpt["train_state"], ckpt["meta"]) == ("glcic", 1, {"iteration": 7}, {"note": "test"})
    loaded = load_completion(path)
    assert isinstance(loaded, CompletionNetwork) and not loaded.training and loaded.width == 0.125
    img, mask = torch.rand(1, 3, 16, 16), (torch.rand(1, 1, 16, 16) > 0.5).float()
    with torch.no_grad():
        assert torch.equal(loaded(img, mask), model(img, mask))
    assert torch.equal(loaded.mean_pixel, model.mean_pixel)
    d = load_discriminator(path)
    assert d.config() == disc.config()
    assert all(torch.equal(a, b) for a, b in zip(d.state_dict().values(), disc.state_dict().values()))
    # the same file through load_pretrained (the CLI's --checkpoint)
    assert torch.equal(load_pretrained(str(path)).body[0].conv.weight, model.body[0].conv.weight)


def test_subtract_mode_and_no_discriminator(tmp_path):
    model = CompletionNetwork(width=0.125, input_mode="subtract")
    path = save_checkpoint(tmp_path / "m.pt", torch.nn.DataParallel(model))  # wrappers are unwrapped
    assert load_completion(path).input_mode == "subtract"
    assert load_discriminator(path) is None


def test_missing_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*nope.pt"):
        read_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="checkpoint path is a folder, not a file"):
        load_completion(tmp_path)
    assert issubclass(CheckpointError, ValueError)


def test_corrupt_files(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", make_model(0.125))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all" * 10)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for p in (truncated, garbage, empty):
        with pytest.raises(CheckpointError, match=f"cannot read checkpoint .*{p.name}: the file is corrupt"):
            load_completion(p)


def test_foreign_files(tmp_path):
    plain = tmp_path / "state_dict.pt"
    torch.save(make_model(0.125).state_dict(), plain)  # a bare state dict, not our format
    with pytest.raises(CheckpointError, match="is not a glcic_lib checkpoint"):
        load_completion(plain)
    newer = tmp_path / "newer.pt"
    torch.save({"format": "glcic", "version": 99, "completion": {}}, newer)
    with pytest.raises(CheckpointError, match="has checkpoint version 99, newer than"):
        read_checkpoint(newer)
    empty = tmp_path / "nocompletion.pt"
    torch.save({"format": "glcic", "version": 1, "completion": None}, empty)
    with pytest.raises(CheckpointError, match="holds no completion network"):
        read_checkpoint(empty)


def test_other_architectures(tmp_path):
    # weights of a wider network under a narrower network's config
    ckpt = {"format": "glcic", "version": 1, "meta": {},
            "completion": {"config": CompletionNetwork(width=0.125).config(),
                           "state_dict": CompletionNetwork(width=0.25).state_dict()}}
    torch.save(ckpt, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match=r"the completion network weights do not fit the architecture "
                                              r"\{'arch': 'CompletionNetwork', 'width': 0.125"):
        load_completion(tmp_path / "mismatch.pt")
    # a discriminator stored where the completion network belongs
    disc = ContextDiscriminator(arms="global", width=0.125, global_size=64)
    torch.save({"format": "glcic", "version": 1, "completion": {"config": disc.config(), "state_dict": disc.state_dict()}},
               tmp_path / "disc.pt")
    with pytest.raises(CheckpointError, match="expected a CompletionNetwork, the checkpoint holds 'ContextDiscriminator'"):
        load_completion(tmp_path / "disc.pt")


def test_atomic_save_keeps_the_old_file_on_failure(tmp_path):
    path = atomic_save({"a": 1}, tmp_path / "x.pt")
    with pytest.raises(Exception):
        atomic_save({"bad": lambda: 0}, path)  # lambdas cannot be pickled
    assert torch.load(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]  # no temporary file left behind


# ------------------------------------------------ issue 15: stale temporary files, .prev fallback, NaN weights

def _iteration(path):
    return torch.load(path, weights_only=False)["train_state"]["iteration"]


def test_the_previous_checkpoint_is_kept_and_the_file_never_goes_missing(tmp_path, monkeypatch):
    import glcic_lib.checkpoint as C

    path = tmp_path / "checkpoint.pt"
    model = make_model(0.125)
    save_checkpoint(path, model, train_state={"iteration": 1})
    assert not C.previous_path(path).exists()  # nothing to keep yet
    real_replace = C.os.replace
    seen = []

    def replace(src, dst):  # the checkpoint must exist before and after every rename of a save
        seen.append(Path(dst).name)
        assert path.is_file()
        real_replace(src, dst)
        assert path.is_file()

    monkeypatch.setattr(C.os, "replace", replace)
    save_checkpoint(path, model, train_state={"iteration": 2})
    save_checkpoint(path, model, train_state={"iteration": 3})
    assert seen == ["checkpoint.pt.prev", "checkpoint.pt"] * 2
    assert C.previous_path(path) == tmp_path / "checkpoint.pt.prev"
    assert (_iteration(path), _iteration(C.previous_path(path))) == (3, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "checkpoint.pt.prev"]
    save_checkpoint(path, model, train_state={"iteration": 4}, keep_previous=False)
    assert _iteration(C.previous_path(path)) == 2  # left alone


def test_previous_checkpoint_without_hard_links(tmp_path, monkeypatch):
    import errno

    import glcic_lib.checkpoint as C

    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted", str(src))

    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, make_model(0.125), train_state={"iteration": 1})
    monkeypatch.setattr(C.os, "link", no_links)  # e.g. a FAT or some network file systems: copied
    save_checkpoint(path, make_model(0.125), train_state={"iteration": 2})
    assert (_iteration(path), _iteration(C.previous_path(path))) == (2, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "checkpoint.pt.prev"]


def test_a_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    import glcic_lib.checkpoint as C

    path = tmp_path / "checkpoint.pt"
    model = make_model(0.125, seed=3)
    save_checkpoint(path, model, train_state={"iteration": 10})
    save_checkpoint(path, make_model(0.125, seed=4), train_state={"iteration": 20})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # e.g. a disk error or a half-finished copy
    ckpt = read_checkpoint(path)
    assert ckpt["train_state"]["iteration"] == 10
    err = capsys.readouterr().err
    assert f"warning: cannot read checkpoint {path}: the file is corrupt" in err
    assert f"warning: using the previous checkpoint {C.previous_path(path)} instead, saved " in err
    assert "(iteration 10): newer progress is lost" in err
    assert torch.equal(load_completion(path).body[0].conv.weight, model.body[0].conv.weight)
    with pytest.raises(CheckpointError, match="the file is corrupt"):
        read_checkpoint(path, fallback=False)
    # both damaged: one error naming both files
    C.previous_path(path).write_bytes(b"garbage" * 20)
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*checkpoint.pt: the file is corrupt.*; its "
                                              r"previous version .*checkpoint.pt.prev cannot be used either: "
                                              r"cannot read checkpoint .*checkpoint.pt.prev"):
        read_checkpoint(path)
    # the main file gone: no silent fallback, but the error says where the previous one is
    path.unlink()
    save_checkpoint(tmp_path / "x.pt", model)
    os.replace(tmp_path / "x.pt", C.previous_path(path))
    with pytest.raises(CheckpointError, match=r"checkpoint not found: .*checkpoint.pt \(its previous version "
                                              r".*checkpoint.pt.prev exists: rename it to checkpoint.pt to use it\)"):
        read_checkpoint(path)


def test_stale_temporary_files_of_killed_saves_are_removed(tmp_path):
    import glcic_lib.checkpoint as C

    path = tmp_path / "checkpoint.pt"
    old = time.time() - 2 * C.STALE_TMP_AGE_S

    def touch(name, mtime=old):
        p = tmp_path / name
        p.write_bytes(b"half a checkpoint")
        os.utime(p, (mtime, mtime))
        return p

    stale = [touch("checkpoint.pt.ab_cd12x.tmp"), touch("checkpoint.pt.00000000.tmp")]
    fresh = touch("checkpoint.pt.live1234.tmp", mtime=time.time())  # a save in progress
    others = [touch("other.pt.ab_cd12x.tmp"), touch("checkpoint.pt.notes.tmp"), touch("checkpoint.pt.ab_cd12x.part"),
              touch("checkpoint.pt.x.ab_cd12x.tmp"), touch("xcheckpoint.pt.ab_cd12x.tmp")]
    save_checkpoint(path, make_model(0.125))
    assert not any(p.exists() for p in stale)
    assert fresh.exists() and all(p.exists() for p in others)
    # reading (e.g. resuming after a kill) cleans as well
    stale2 = touch("checkpoint.pt.zzzz9999.tmp")
    read_checkpoint(path)
    assert not stale2.exists() and fresh.exists()
    assert C.remove_stale_temps(path, older_than_s=0) == [fresh]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["checkpoint.pt"] + [p.name for p in others])


def test_a_killed_save_leaves_a_temporary_file_that_the_next_save_removes(tmp_path):
    import glcic_lib.checkpoint as C

    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, make_model(0.125), train_state={"iteration": 1})
    code = (f"import os, torch\nfrom glcic_lib.checkpoint import atomic_write\n"
            f"with atomic_write({str(path)!r}, keep_previous=True) as f:\n"
            f"    f.write(b'partial'); f.flush(); os._exit(9)\n")  # dies mid-save, like SIGKILL
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 9
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and _iteration(path) == 1  # the old checkpoint is intact
    os.utime(leftovers[0], (time.time() - 2 * C.STALE_TMP_AGE_S,) * 2)
    save_checkpoint(path, make_model(0.125), train_state={"iteration": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "checkpoint.pt.prev"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_weights_are_refused(tmp_path, bad):
    import glcic_lib.checkpoint as C

    path = tmp_path / "checkpoint.pt"
    good = make_model(0.125)
    save_checkpoint(path, good, train_state={"iteration": 1})
    with pytest.raises(CheckpointError) as e:  # no previous checkpoint yet: no hint
        diverged = make_model(0.125)
        with torch.no_grad():
            diverged.body[3].conv.weight[0, 0, 0, 0] = bad
        save_checkpoint(tmp_path / "alone.pt", diverged)
        load_completion(tmp_path / "alone.pt")
    msg = str(e.value)
    assert "alone.pt: the completion network weights contain NaN or infinite values (1 of " in msg
    assert "'body.3.conv.weight'" in msg and "would fill holes with black; refused" in msg
    assert "previous checkpoint" not in msg
    save_checkpoint(path, diverged, train_state={"iteration": 2})
    with pytest.raises(CheckpointError, match=r"refused; the previous checkpoint .*checkpoint.pt.prev is kept: try it"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_pretrained(str(path))
    assert not torch.isfinite(torch.load(path, weights_only=False)["completion"]["state_dict"]["body.3.conv.weight"]).all()
    assert read_checkpoint(C.previous_path(path))["train_state"]["iteration"] == 1
    # a diverged discriminator is refused too
    disc = ContextDiscriminator(arms="local", width=0.125, local_size=64)
    with torch.no_grad():
        next(disc.parameters()).fill_(bad)
    save_checkpoint(tmp_path / "d.pt", good, disc)
    with pytest.raises(CheckpointError, match="d.pt: the discriminator weights contain NaN or infinite values"):
        read_checkpoint(tmp_path / "d.pt")


def test_entries_without_config_or_state_dict_are_clear_errors(tmp_path):
    model = make_model(0.125)
    cases = {
        "noconfig": {"completion": {"state_dict": model.state_dict()}},
        "nostate": {"completion": {"config": model.config()}},
        "notadict": {"completion": ["weights"]},
    }
    for name, entry in cases.items():
        torch.save({"format": "glcic", "version": 1, **entry}, tmp_path / f"{name}.pt")
    with pytest.raises(CheckpointError, match=r"noconfig.pt: the completion network entry has no 'config' \(the "
                                              r"architecture\), so the network cannot be rebuilt; re-save"):
        load_completion(tmp_path / "noconfig.pt")
    with pytest.raises(CheckpointError, match=r"nostate.pt: the completion network entry has no 'state_dict' \(the weights\)"):
        load_completion(tmp_path / "nostate.pt")
    with pytest.raises(CheckpointError, match=r"notadict.pt: the completion network entry is a list, not a dict"):
        load_completion(tmp_path / "notadict.pt")
    disc = ContextDiscriminator(arms="local", width=0.125, local_size=64)
    torch.save({"format": "glcic", "version": 1, "completion": {"config": model.config(), "state_dict": model.state_dict()},
                "discriminator": {"config": {"arch": "ContextDiscriminator", "width": 0.125},
                                  "state_dict": disc.state_dict()}}, tmp_path / "disc.pt")
    with pytest.raises(CheckpointError, match=r"lacks arms, global_size, local_size: it cannot be rebuilt"):
        load_discriminator(tmp_path / "disc.pt")


def test_resume_falls_back_to_the_previous_checkpoint(tmp_path, capsys):
    import cv2
    import numpy as np

    from glcic_lib.train import preset, train

    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        cv2.imwrite(str(images / f"{i}.png"), np.random.default_rng(i).integers(0, 256, (72, 72, 3), dtype=np.uint8))
    cfg = dict(crop_size=64, batch_size=2, width=0.25, num_workers=0, amp=False, device="cpu", log_every=1,
               sample_every=1000, checkpoint_every=1, n_samples=2, mean_pixel=(0.5, 0.5, 0.5),
               t_d=0, t_joint=0, discriminator="none")
    run = lambda t_c: preset("smoke", data_dir=str(images), out_dir=str(tmp_path / "run"), t_c=t_c, **cfg)
    result = train(run(3), progress=False)
    ckpt = result.checkpoint
    assert _iteration(ckpt) == 3 and ckpt.with_name(ckpt.name + ".prev").is_file()
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # damaged after the run
    capsys.readouterr()
    resumed = train(run(4), resume=True, progress=False)
    assert f"using the previous checkpoint {ckpt}.prev instead" in capsys.readouterr().err
    assert _iteration(resumed.checkpoint) == 4
    assert [h["iteration"] for h in resumed.history][-1] == 4
