"""Issue 22: training fails cleanly.  A checkpoint that cannot be written (a full disk) stops the
run with one line naming the file and the free space, the previous checkpoint intact, a non-zero
exit and a working ``--resume``; partial files of killed saves are removed at start and resume."""
from __future__ import annotations

import errno

import pytest
import torch

import glcic_lib.checkpoint as C
from glcic_lib import cli
from glcic_lib.checkpoint import read_checkpoint
from glcic_lib.run_state import CheckpointWriteError
from glcic_lib.train import preset, train

TINY = dict(crop_size=64, batch_size=2, width=0.25, num_workers=0, amp=False, device="cpu", log_every=1,
            sample_every=1000, n_samples=2, mean_pixel=(0.5, 0.5, 0.5))

#: What torch raises when the disk fills while it writes a checkpoint (from the issue).
TORCH_FULL_DISK = "[enforce fail at inline_container.cc:672] . unexpected pos 5965632 vs 5965528"


@pytest.fixture(scope="module")
def images(gradient_images):
    return gradient_images


def cfg(images, tmp_path, **kw):
    return preset("smoke", data_dir=str(images), out_dir=str(tmp_path / "run"),
                  **{**TINY, "t_c": 6, "t_d": 0, "t_joint": 0, "checkpoint_every": 2, **kw})


def full_disk_after(monkeypatch, n_ok: int, error: BaseException):
    """Let ``n_ok`` checkpoint writes succeed, then fail every write after a partial one."""
    real = C._write
    calls = {"n": 0}

    def writer(obj, f):
        calls["n"] += 1
        if calls["n"] <= n_ok:
            return real(obj, f)
        f.write(b"PK\x03\x04 half a checkpoint")
        raise error

    monkeypatch.setattr(C, "_write", writer)
    return calls


def _temps(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), RuntimeError(TORCH_FULL_DISK),
                                   OSError(errno.EIO, "Input/output error")], ids=["ENOSPC", "torch", "EIO"])
def test_a_failed_save_stops_the_run_keeps_the_previous_checkpoint_and_resume_works(images, tmp_path, monkeypatch,
                                                                                    error):
    config = cfg(images, tmp_path)
    full_disk_after(monkeypatch, 1, error)   # iteration 2 is saved, iteration 4's save fails
    with pytest.raises(CheckpointWriteError) as info:
        train(config, progress=False)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"cannot save the training checkpoint {ckpt}: ")
    assert f" free on {ckpt.parent})" in msg
    assert f"the previous checkpoint {ckpt} (iteration 2) is intact: free some space and continue with --resume" in msg
    if isinstance(error, OSError):
        assert error.strerror in msg
    else:
        assert "unexpected pos" in msg and "usually a full disk" in msg
    assert read_checkpoint(ckpt, fallback=False)["train_state"]["iteration"] == 2   # intact, not the partial write
    assert _temps(ckpt.parent) == []                                                 # the partial file is gone
    monkeypatch.undo()                                                               # space freed
    result = train(config, resume=True, progress=False)
    assert result.history[-1]["iteration"] == 6
    assert read_checkpoint(ckpt)["train_state"]["iteration"] == 6


def test_the_first_save_failing_says_there_is_nothing_to_resume(images, tmp_path, monkeypatch):
    full_disk_after(monkeypatch, 0, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(CheckpointWriteError, match="no earlier checkpoint of this run exists: free some space and "
                                                   "start again"):
        train(cfg(images, tmp_path), progress=False)


def test_other_runtime_errors_are_not_mistaken_for_a_full_disk(images, tmp_path, monkeypatch):
    full_disk_after(monkeypatch, 0, RuntimeError("something else entirely"))
    with pytest.raises(RuntimeError, match="something else entirely") as info:
        train(cfg(images, tmp_path), progress=False)
    assert not isinstance(info.value, CheckpointWriteError)


def test_the_command_line_prints_one_line_exits_non_zero_and_resumes(images, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cli"
    args = ["train", "--preset", "smoke", "--data", str(images), "--out", str(out), "--iterations", "6", "0", "0",
            "--checkpoint-every", "2", "--batch-size", "2", "--no-progress", "--device", "cpu"]
    full_disk_after(monkeypatch, 1, RuntimeError(TORCH_FULL_DISK))
    assert cli.run(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"glcic train: error: cannot save the training checkpoint "
                                                   f"{out / 'checkpoint.pt'}: "), err
    assert " free on " in lines[0] and "continue with --resume" in lines[0]
    monkeypatch.undo()
    assert cli.run([*args, "--resume"]) == 0
    assert "done: 6 iterations" in capsys.readouterr().out


def test_partial_files_of_killed_saves_are_removed_when_a_run_starts_or_resumes(images, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    killed = run / "checkpoint.pt.k1ll3d00.tmp"        # a save killed a moment ago: fresh, not 5 minutes old
    killed.write_bytes(b"PK partial")
    other = run / "notes.pt.abcdefgh.tmp"              # not this checkpoint's: left alone
    other.write_bytes(b"x")
    config = cfg(images, tmp_path, t_c=2, checkpoint_every=1)
    train(config, progress=False)
    assert not killed.exists() and other.exists()
    assert "removed 1 partial checkpoint file of killed saves" in capsys.readouterr().out
    # killed saves before a resume (SIGKILL leaves their temporary files): gone when it resumes
    for name in ("checkpoint.pt.aaaa1111.tmp", "checkpoint.pt.bbbb2222.tmp"):
        (run / name).write_bytes(b"PK partial")
    train(preset("smoke", **{**config.to_dict(), "t_c": 3}), resume=True, progress=False)
    assert _temps(run) == ["notes.pt.abcdefgh.tmp"]   # this checkpoint's are gone, the other file stays
    assert read_checkpoint(run / "checkpoint.pt")["train_state"]["iteration"] == 3


def test_only_the_final_checkpoint_carries_the_precision_measurement(images, tmp_path):
    def stop_at_2(event):
        if event["iteration"] == 2:
            raise KeyboardInterrupt

    config = cfg(images, tmp_path, t_c=3)
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[stop_at_2], progress=False)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    assert "reduced_precision" not in read_checkpoint(ckpt)["meta"]
    train(config, resume=True, progress=False)
    final = torch.load(ckpt, weights_only=True)      # the run's checkpoint loads without running code
    stored = final["meta"]["reduced_precision"]["bfloat16"]
    assert stored["device"] == "cpu" and stored["images"] == 2 and not stored["overflowed"]   # smoke: 2 images
    assert 0 <= stored["mean"] <= stored["p999"] <= stored["max"] <= 255
    assert C.load_completion(ckpt).reduced_precision == final["meta"]["reduced_precision"]


def test_without_the_held_out_photographs_the_run_still_finishes_unmeasured(images, tmp_path, monkeypatch, capsys):
    import glcic_lib.precision_check as P

    def missing(*args, **kwargs):
        raise FileNotFoundError("a held-out set needs data/heldout_photos/images and data/heldout_photos/masks")

    monkeypatch.setattr(P, "measure_precision", missing)
    result = train(cfg(images, tmp_path, t_c=2), progress=False)
    assert "reduced_precision" not in read_checkpoint(result.checkpoint)["meta"]
    assert "warning: the reduced-precision error of this network was not measured" in capsys.readouterr().err
    assert C.load_completion(result.checkpoint).reduced_precision is None
