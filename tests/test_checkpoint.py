"""Checkpoints: round trips, atomic writes, and named errors for missing / corrupt / foreign files."""
from __future__ import annotations

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
