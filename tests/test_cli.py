"""The command line: ``inpaint`` end to end on files, error reporting, the parser."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import random_image
from glcic_lib import cli
from glcic_lib.checkpoint import save_checkpoint
from glcic_lib.imageio import read_image, write_image


@pytest.fixture(scope="module")
def files(tmp_path_factory, small_model):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    image = random_image(rng, 45, 62)  # not multiples of 4
    mask = np.zeros((45, 62), bool)
    mask[10:30, 20:40] = True
    mask[40:, :8] = True  # at the border
    write_image(d / "in.png", image)
    grey_mask = np.where(mask, 255, 0).astype(np.uint8)
    write_image(d / "mask.png", np.dstack([grey_mask] * 3))  # an RGB mask file: white = hole
    ckpt = save_checkpoint(d / "model.pt", small_model)
    return {"dir": d, "image": image, "mask": mask, "ckpt": ckpt}


def _inpaint(files, out, *extra):
    return cli.run(["inpaint", "--image", str(files["dir"] / "in.png"), "--mask", str(files["dir"] / "mask.png"),
                    "--out", str(out), "--checkpoint", str(files["ckpt"]), *extra])


@pytest.mark.parametrize("flag", ["--postprocess", "--no-postprocess"])
def test_inpaint_end_to_end(files, small_model, tmp_path, capsys, flag):
    from glcic_lib import complete

    out = tmp_path / "deep" / "out.png"
    assert _inpaint(files, out, flag, "--device", "cpu") == 0
    assert "wrote" in capsys.readouterr().out
    done = read_image(out)
    image, mask = files["image"], files["mask"]
    assert done.shape == image.shape
    assert np.array_equal(done[~mask], image[~mask])  # PNG is lossless: known pixels exact
    want = complete(small_model, image, mask, postprocess=flag == "--postprocess")
    assert np.array_equal(done, want)


def test_inpaint_reports_bad_input(files, tmp_path, capsys):
    small = tmp_path / "small_mask.png"
    write_image(small, np.zeros((10, 10), np.uint8))
    code = cli.run(["inpaint", "--image", str(files["dir"] / "in.png"), "--mask", str(small),
                    "--out", str(tmp_path / "o.png"), "--checkpoint", str(files["ckpt"])])
    assert code == 2
    assert "glcic inpaint: error: mask" in capsys.readouterr().err
    code = _inpaint({**files, "ckpt": tmp_path / "missing.pt"}, tmp_path / "o.png")
    assert code == 2 and "checkpoint not found" in capsys.readouterr().err
    code = cli.run(["inpaint", "--image", str(tmp_path / "none.png"), "--mask", str(small), "--out", "x.png"])
    assert code == 2 and "image file not found" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_parser_and_help(capsys):
    parser = cli.build_parser()
    args = parser.parse_args(["inpaint", "--image", "a", "--mask", "b", "--out", "c"])
    assert args.postprocess is True and args.checkpoint is None  # post-processing on by default
    assert {"inpaint", "bench"} <= set(cli.COMMANDS)
    with pytest.raises(SystemExit) as e:
        cli.run(["--help"])
    assert e.value.code == 0
    assert "inpaint" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.run(["inpaint", "--image", "a"])  # --mask and --out are required
    assert "required" in capsys.readouterr().err


def test_python_dash_m(files, tmp_path):
    out = tmp_path / "o.png"
    proc = subprocess.run([sys.executable, "-m", "glcic_lib", "inpaint", "--image", str(files["dir"] / "in.png"),
                           "--mask", str(files["dir"] / "mask.png"), "--out", str(out),
                           "--checkpoint", str(files["ckpt"]), "--no-postprocess"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert read_image(out).shape == files["image"].shape


# ------------------------------------------------ issue 15: the output path, the device and the disk, checked early

@pytest.fixture
def no_completion(monkeypatch):
    """Fail the test if the completion runs: these errors must come before it."""
    import glcic_lib.inpaint

    def fail(*a, **k):
        raise AssertionError("the completion ran before the error was reported")

    monkeypatch.setattr(glcic_lib.inpaint, "complete", fail)


def _error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize("name, message", [
    ("out.xyz", "OpenCV has no encoder for '.xyz' files; use one of .jpg"),
    ("out", "has no extension, which chooses the image format"),
    ("existing_dir", "is an existing folder: give a file name"),
    ("a_file.txt/out.png", "a_file.txt is a file, not a folder"),
])
def test_bad_output_paths_fail_before_the_completion(files, tmp_path, capsys, no_completion, name, message):
    (tmp_path / "existing_dir").mkdir()
    (tmp_path / "a_file.txt").write_text("x")
    assert _inpaint(files, tmp_path / name) == 2
    line = _error_line(capsys)
    assert line.startswith("glcic inpaint: error: ") and message in line and str(tmp_path) in line


def test_a_read_only_output_folder_fails_before_the_completion(files, tmp_path, capsys, no_completion, monkeypatch):
    from glcic_lib import imageio

    ro = tmp_path / "ro"
    ro.mkdir()
    real = imageio.os.access  # as root, chmod does not stop writes: os.access decides, so pretend
    monkeypatch.setattr(imageio.os, "access", lambda p, m: False if str(p) == str(ro) else real(p, m))
    assert _inpaint(files, ro / "o.png") == 2
    assert f"the folder {ro} is not writable (read-only or no permission)" in _error_line(capsys)


@pytest.mark.parametrize("device, message", [
    ("cuda", "--device cuda: device 'cuda' was requested but CUDA is not available; use --device cpu"),
    ("gpu", "--device gpu: "),
])
def test_an_unavailable_device_is_one_line(files, tmp_path, capsys, no_completion, monkeypatch, device, message):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _inpaint(files, tmp_path / "o.png", "--device", device) == 2
    line = _error_line(capsys)
    assert message in line and "leave the device out" in line
    assert not (tmp_path / "o.png").exists()


def test_a_full_disk_while_saving_is_one_line_and_leaves_no_file(files, tmp_path, capsys, monkeypatch):
    import errno
    import os

    from glcic_lib import checkpoint

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.os, "fsync", full)  # the image write's flush to disk fails
    out = tmp_path / "o.png"
    assert _inpaint(files, out, "--no-postprocess") == 2
    line = _error_line(capsys)
    assert line.startswith(f"glcic inpaint: error: no space left on device (writing {out}): ")
    assert "free some space or choose another location" in line
    assert list(tmp_path.iterdir()) == []  # no partial image, no temporary file


def test_other_os_errors_are_one_line(files, tmp_path, capsys, monkeypatch):
    import errno

    from glcic_lib import imageio

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "o.png"))

    monkeypatch.setattr(imageio, "write_image", denied)
    assert _inpaint(files, tmp_path / "o.png", "--no-postprocess") == 2
    assert f"error: permission denied: {tmp_path / 'o.png'}; choose a file or folder you can access" in _error_line(capsys)


def test_bad_checkpoints_are_one_line(files, tmp_path, capsys, small_model):
    import torch

    entry = {"state_dict": small_model.state_dict()}  # the completion entry has no config
    torch.save({"format": "glcic", "version": 1, "completion": entry}, tmp_path / "noconfig.pt")
    assert _inpaint({**files, "ckpt": tmp_path / "noconfig.pt"}, tmp_path / "o.png") == 2
    assert "the completion network entry has no 'config'" in _error_line(capsys)
    sd = {k: v.clone() for k, v in small_model.state_dict().items()}
    sd["body.0.conv.weight"][0] = float("nan")
    torch.save({"format": "glcic", "version": 1, "completion": {"config": small_model.config(), "state_dict": sd}},
               tmp_path / "nan.pt")
    assert _inpaint({**files, "ckpt": tmp_path / "nan.pt"}, tmp_path / "o.png") == 2
    assert "weights contain NaN or infinite values" in _error_line(capsys)
    assert not (tmp_path / "o.png").exists()


def test_a_nan_float_tiff_is_one_line(files, tmp_path, capsys):
    import cv2

    img = np.full((45, 62, 3), 0.25, np.float32)
    img[5, 6, 0] = np.nan
    cv2.imwrite(str(tmp_path / "in.tif"), img)
    code = cli.run(["inpaint", "--image", str(tmp_path / "in.tif"), "--mask", str(files["dir"] / "mask.png"),
                    "--out", str(tmp_path / "o.png"), "--checkpoint", str(files["ckpt"])])
    assert code == 2
    assert "in.tif: the float image holds 1 NaN sample value(s) (the first at x=6, y=5)" in _error_line(capsys)


def test_python_dash_m_reports_a_bad_output_without_traceback(files, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "glcic_lib", "inpaint", "--image", str(files["dir"] / "in.png"),
                           "--mask", str(files["dir"] / "mask.png"), "--out", str(tmp_path / "o.nope"),
                           "--checkpoint", str(files["ckpt"])], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"glcic inpaint: error: cannot write {tmp_path / 'o.nope'}: OpenCV has no encoder "
                                   f"for '.nope' files; use one of .jpg, .jpeg, .png, .webp, .bmp, .tif, .tiff")
