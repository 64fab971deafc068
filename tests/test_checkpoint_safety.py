"""Issue 22: opening a checkpoint never runs code (weights_only everywhere), what a checkpoint may
hold (tensors and plain types), and converting a trusted checkpoint of an older glcic_lib."""
from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_model
from glcic_lib import cli
from glcic_lib.checkpoint import (CheckpointError, UnsafeCheckpointError, convert_checkpoint, load_completion,
                                  read_checkpoint, save_checkpoint, to_plain)
from glcic_lib.pretrained import load_pretrained
from glcic_lib.run_state import numpy_rng_state, set_numpy_rng_state

DATA = Path(__file__).resolve().parent.parent / "data"


class Payload:
    """Unpickling this runs a shell command that creates ``target``."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return os.system, (f"touch '{self.target}'",)


def payload_checkpoint(path: Path, target: Path, **extra) -> Path:
    """A checkpoint that is valid in every way, but whose meta runs a command when unpickled."""
    model = make_model(0.125)
    ckpt = {"format": "glcic", "version": 1,
            "completion": {"config": model.config(), "state_dict": model.state_dict()},
            "discriminator": None, "train_state": None, "meta": {"note": Payload(target)}, **extra}
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def images(gradient_images):
    return gradient_images


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"glcic {command}: error: refused to open "), lines[0]
    assert "could run code" in lines[0] and "glcic convert-checkpoint" in lines[0] and "--trust" in lines[0]
    return lines[0]


def test_the_payload_does_run_code_when_loaded_the_unsafe_way(tmp_path):
    """The control: without weights_only, this file creates its target (so the tests below mean something)."""
    target = tmp_path / "ran"
    path = payload_checkpoint(tmp_path / "evil.pt", target)
    torch.load(path, weights_only=False)
    assert target.exists()


@pytest.mark.parametrize("loader", ["read_checkpoint", "load_completion", "load_pretrained"])
def test_the_library_loaders_refuse_the_payload_without_running_it(tmp_path, loader):
    target = tmp_path / "ran"
    path = payload_checkpoint(tmp_path / "evil.pt", target)
    fn = {"read_checkpoint": read_checkpoint, "load_completion": load_completion,
          "load_pretrained": lambda p: load_pretrained(str(p))}[loader]
    with pytest.raises(UnsafeCheckpointError) as info:
        fn(path)
    assert not target.exists()
    msg = str(info.value)
    assert "\n" not in msg and f"refused to open {path}" in msg and "(it needs posix.system)" in msg
    assert f"glcic convert-checkpoint {path} NEW.pt --trust" in msg
    assert isinstance(info.value, CheckpointError) and isinstance(info.value, ValueError)


def test_a_payload_in_the_previous_checkpoint_is_refused_too(tmp_path):
    """A damaged checkpoint.pt falls back to checkpoint.pt.prev, which is read just as safely."""
    target = tmp_path / "ran"
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"garbage" * 20)
    payload_checkpoint(tmp_path / "checkpoint.pt.prev", target)
    with pytest.raises(CheckpointError, match="cannot be used either: refused to open"):
        read_checkpoint(path)
    assert not target.exists()


def test_cli_inpaint_and_evaluate_refuse_the_payload(tmp_path, capsys):
    from glcic_lib.imageio import write_image

    target = tmp_path / "ran"
    path = payload_checkpoint(tmp_path / "evil.pt", target)
    write_image(tmp_path / "in.png", np.full((32, 32, 3), 128, np.uint8))
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 8:20] = 255
    write_image(tmp_path / "mask.png", mask)
    rc = cli.run(["inpaint", "--image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"),
                  "--out", str(tmp_path / "out.png"), "--checkpoint", str(path)])
    assert rc == 2 and not target.exists() and not (tmp_path / "out.png").exists()
    _one_line_error(capsys, "inpaint")
    rc = cli.run(["evaluate", "--checkpoint", str(path), "--out", str(tmp_path / "ev")])
    assert rc == 2 and not target.exists()
    _one_line_error(capsys, "evaluate")


def test_cli_train_refuses_the_payload_as_init_from_and_as_a_run_to_resume(images, tmp_path, capsys):
    target = tmp_path / "ran"
    path = payload_checkpoint(tmp_path / "evil.pt", target)
    common = ["train", "--preset", "smoke", "--data", str(images), "--iterations", "1", "0", "0", "--no-progress",
              "--device", "cpu"]
    rc = cli.run([*common, "--out", str(tmp_path / "a"), "--init-from", str(path)])
    assert rc == 2 and not target.exists()
    _one_line_error(capsys, "train")
    run = tmp_path / "b"
    run.mkdir()
    payload_checkpoint(run / "checkpoint.pt", target)
    rc = cli.run([*common, "--out", str(run), "--resume"])
    assert rc == 2 and not target.exists()
    _one_line_error(capsys, "train")


def test_every_shipped_checkpoint_loads_without_running_code():
    paths = sorted(DATA.rglob("*.pt"))
    assert len(paths) >= 7
    for path in paths:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)   # plain torch, no allow-list
        assert ckpt["format"] == "glcic", path
        load_completion(path)


# ------------------------------------------------------------------ what a checkpoint may hold

@dataclasses.dataclass
class _Config:
    name: str
    sizes: tuple
    where: Path


def test_to_plain_turns_numpy_paths_and_dataclasses_into_plain_types():
    obj = {"a": np.float32(1.5), "b": np.int64(3), "c": np.arange(4, dtype=np.uint32), "d": Path("x/y"),
           "e": _Config("n", (1, 2), Path("z")), "f": [np.bool_(True), {1, 2}], "g": torch.ones(2)}
    plain = to_plain(obj)
    assert plain["a"] == 1.5 and type(plain["a"]) is float and type(plain["b"]) is int
    assert isinstance(plain["c"], torch.Tensor) and plain["c"].tolist() == [0, 1, 2, 3]
    assert plain["d"] == "x/y" and plain["e"] == {"name": "n", "sizes": (1, 2), "where": "z"}
    assert plain["f"] == [True, [1, 2]] and type(plain["f"][0]) is bool
    with pytest.raises(TypeError, match=r"checkpoint\['x'\]: a .*object cannot be stored in a checkpoint"):
        to_plain({"x": object()})


def test_save_checkpoint_refuses_other_objects_before_writing(tmp_path):
    model = make_model(0.125)
    path = save_checkpoint(tmp_path / "m.pt", model, meta={"n": 1})
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"checkpoint\['meta'\]\['bad'\]"):
        save_checkpoint(path, model, meta={"bad": Payload(tmp_path / "ran")})
    assert path.read_bytes() == before and not (tmp_path / "ran").exists()
    save_checkpoint(path, model, meta={"where": Path("runs/x"), "loss": np.float64(0.5)})
    meta = torch.load(path, weights_only=True)["meta"]
    assert meta == {"where": "runs/x", "loss": 0.5}


def test_the_numpy_random_state_round_trips_through_a_checkpoint(tmp_path):
    np.random.seed(7)
    np.random.standard_normal()   # a cached gaussian in the state
    state = numpy_rng_state()
    want = np.random.random(5)
    path = save_checkpoint(tmp_path / "r.pt", make_model(0.125), train_state={"rng": {"numpy": state}})
    np.random.seed(99)
    set_numpy_rng_state(torch.load(path, weights_only=True)["train_state"]["rng"]["numpy"])
    assert np.array_equal(np.random.random(5), want)
    # the tuple older versions stored (with its uint32 array) is still read, and still restores
    np.random.seed(7)
    legacy = np.random.get_state()
    want = np.random.random(5)
    torch.save({"format": "glcic", "version": 1, "completion": {"config": make_model(0.125).config(),
                "state_dict": make_model(0.125).state_dict()},
                "train_state": {"rng": {"numpy": legacy, "python": random.getstate()}}}, tmp_path / "old.pt")
    np.random.seed(99)
    set_numpy_rng_state(read_checkpoint(tmp_path / "old.pt")["train_state"]["rng"]["numpy"])
    assert np.array_equal(np.random.random(5), want)


# ------------------------------------------------------------------ older checkpoints: refused, convertible

def _old_checkpoint(path: Path) -> Path:
    """A checkpoint as an older version might have written it: numpy scalars and a Path in its meta."""
    model = make_model(0.125, seed=5)
    torch.save({"format": "glcic", "version": 1,
                "completion": {"config": model.config(), "state_dict": model.state_dict()},
                "discriminator": None, "train_state": None,
                "meta": {"loss": np.float64(0.25), "data_dir": Path("data/train")}}, path)
    return path


def test_an_older_checkpoint_is_refused_with_how_to_convert_it(tmp_path, capsys):
    old = _old_checkpoint(tmp_path / "old.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"convert it once with `glcic convert-checkpoint .*old.pt "
                                                    r"NEW.pt --trust`"):
        load_completion(old)
    # converting needs --trust, and then gives a file that loads the safe way, with the same weights
    assert cli.run(["convert-checkpoint", str(old), str(tmp_path / "new.pt")]) == 2
    assert "add --trust if you trust where it comes from" in capsys.readouterr().err
    assert not (tmp_path / "new.pt").exists()
    assert cli.run(["convert-checkpoint", str(old), str(tmp_path / "new.pt"), "--trust"]) == 0
    assert "loads without running code" in capsys.readouterr().out
    new = torch.load(tmp_path / "new.pt", weights_only=True)
    assert new["meta"] == {"loss": 0.25, "data_dir": "data/train"}
    model = load_completion(tmp_path / "new.pt")
    want = make_model(0.125, seed=5).state_dict()
    assert all(torch.equal(v, want[k]) for k, v in model.state_dict().items())
    with pytest.raises(CheckpointError, match="pass trust=True"):
        convert_checkpoint(old, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="would overwrite the input"):
        convert_checkpoint(old, old, trust=True)


def test_garbage_is_still_reported_as_a_corrupt_file_not_as_unsafe(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage" * 20)
    with pytest.raises(CheckpointError, match=r"the file is corrupt or not a PyTorch checkpoint "
                                              r"\(UnpicklingError: Unsupported operand") as info:
        read_checkpoint(bad)
    assert not isinstance(info.value, UnsafeCheckpointError)
